"""Plots of a whole study, written as PNG (and interactive HTML where Optuna has a plotly plot), and their
logging to MLflow.

Optuna's own optimization history, parameter importances, parallel coordinates and slice plots
(``optuna.visualization.matplotlib`` for the PNG, ``optuna.visualization`` for the HTML), the gap against each
regularization knob with verdict colours, and for multi-objective studies Optuna's Pareto front with the
selected trade-off marked. :func:`log_plots` attaches the files to MLflow runs with
:func:`tuner.tracking.log_file`: study plots on the study's parent run, learning curves (:mod:`._curves`) on
the trial's child run, under ``plots/``.

Nothing here imports Keras or TensorFlow. Matplotlib, Optuna and Plotly are imported inside the functions
that use them, so importing this module stays light.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuner._logging import get_logger
from tuner.report._figures import ARTIFACT_DIR, PlotFile, PlotSet, new_figure, pyplot, save_png, write_html
from tuner.report._trials import complete_trials, objective_value, trial_value, varying_params
from tuner.study import read_trial, regularization_knobs
from tuner.tracking import verdict_color

__all__ = ["study_plots", "log_plots", "plot_gap_vs_knobs"]

_logger = get_logger(__name__)


# -- per study -------------------------------------------------------------------------------------


def plot_gap_vs_knobs(trials: Sequence[Any], knobs: Sequence[str], *, gap: str = "gap_loss") -> Any:
    """The gap of each complete trial against each knob, coloured by verdict.

    Args:
        trials: Optuna ``FrozenTrial`` objects (complete ones are used).
        knobs: parameter names; numeric ones on a (log) axis, categorical ones as columns.
        gap: the user attribute or ``metrics`` entry plotted. Defaults to `"gap_loss"`.

    Returns:
        A ``matplotlib.figure.Figure`` with one panel per knob.
    """
    import numpy as np

    cols = min(3, max(1, len(knobs)))
    rows = math.ceil(len(knobs) / cols)
    fig = new_figure(figsize=(4.6 * cols, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    rng = np.random.default_rng(0)
    seen: set[str] = set()
    for ax, knob in zip(axes, knobs, strict=False):  # the grid may hold more panels than knobs
        points = [
            (t.params[knob], trial_value(t, gap), read_trial(t).verdict, t.distributions[knob])
            for t in trials
            if t.state.name == "COMPLETE" and knob in t.params
        ]
        points = [p for p in points if p[1] is not None]
        if not points:
            ax.set_visible(False)
            continue
        dist = points[-1][3]
        categorical = type(dist).__name__ == "CategoricalDistribution"
        if categorical:
            choices = list(dist.choices)
            xs = [choices.index(p[0]) + rng.uniform(-0.12, 0.12) if p[0] in choices else math.nan for p in points]
            ax.set_xticks(range(len(choices)), [str(c) for c in choices])
        else:
            xs = [float(p[0]) for p in points]
            if getattr(dist, "log", False):
                ax.set_xscale("log")
        for verdict in sorted({p[2] or "unknown" for p in points}):
            sel = [i for i, p in enumerate(points) if (p[2] or "unknown") == verdict]
            ax.scatter(
                [xs[i] for i in sel],
                [points[i][1] for i in sel],
                s=36,
                alpha=0.85,
                color=verdict_color(verdict),
                edgecolors="white",
                linewidths=0.5,
                label=verdict if verdict not in seen else None,
            )
            seen.add(verdict)
        ax.axhline(0.0, color="#999999", linewidth=0.8)
        ax.set_xlabel(knob)
        ax.set_ylabel(gap)
        ax.set_title(f"{gap} vs {knob} ({len(points)} trials)", fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[len(knobs) :]:
        ax.set_visible(False)
    handles, labels = [], []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), title="verdict")
    fig.suptitle(f"Generalization gap against the regularization knobs ({gap})")
    return fig


def _first_axes(ax: Any) -> Any:
    import numpy as np

    return np.atleast_1d(ax).ravel()[0]


def study_plots(
    results: Any,
    out_dir: str | Path,
    *,
    evaluator: Any = None,
    evaluator_name: str | None = None,
    selected: int | None = None,
    selected_label: str | None = None,
    gap: str = "gap_loss",
    plotlyjs: str = "inline",
) -> PlotSet:
    """Write the study plots (PNG, plus HTML for Optuna's plotly plots) to ``out_dir``.

    Args:
        results: a :class:`~tuner.study.StudyResults`.
        out_dir: the folder of the files (``<name>.png`` and ``<name>.html``).
        evaluator: an ``optuna.importance`` evaluator for the importance plot; `None` is Optuna's default
            (``FanovaImportanceEvaluator``). Pass the instance the report used, so both agree. Defaults to `None`.
        evaluator_name: shown in the importance plot's title. Defaults to the evaluator's class name.
        selected: the trial marked on the Pareto front (multi-objective studies). Defaults to `None`.
        selected_label: its legend text. Defaults to `"selected trial <n>"`.
        gap: the gap plotted against the regularization knobs. Defaults to `"gap_loss"`.
        plotlyjs: ``"inline"`` (self-contained HTML that works offline) or ``"cdn"``. Defaults to `"inline"`.

    Returns:
        A :class:`PlotSet`; plots that cannot be drawn (too few complete trials, no knob varies) are
        in ``skipped`` with the reason.
    """
    import optuna
    import optuna.visualization as ov
    import optuna.visualization.matplotlib as om

    if plotlyjs not in ("inline", "cdn"):
        raise ValueError(f"`plotlyjs` must be 'inline' or 'cdn', but got {plotlyjs=!r}.")
    plt = pyplot()
    study = results.study
    out_dir = Path(out_dir)
    out = PlotSet()
    complete = complete_trials(study)
    names = list(results.objective)
    if evaluator_name is None:
        evaluator_name = type(evaluator).__name__ if evaluator is not None else "FanovaImportanceEvaluator"
    first = (
        {"target": (lambda t: t.values[0]), "target_name": names[0]}
        if results.multi_objective
        else {"target_name": names[0]}
    )

    def optuna_plot(
        name: str,
        title: str,
        make_png: Any,
        make_html: Any,
        *,
        min_trials: int = 1,
        size: tuple[float, float] | None = None,
    ) -> None:
        if len(complete) < min_trials:
            out.skipped[name] = f"needs at least {min_trials} complete trials, the study has {len(complete)}"
            return
        try:
            # Optuna's matplotlib plots set the ggplot style globally: keep it to these figures.
            with warnings.catch_warnings(), plt.rc_context():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.simplefilter("ignore", UserWarning)
                ax = make_png()
                fig = _first_axes(ax).figure
                if size is not None:
                    fig.set_size_inches(*size)
                png = save_png(fig, out_dir / f"{name}.png")
                figure = make_html()
                html = write_html(figure, out_dir / f"{name}.html", plotlyjs)
        except Exception as err:
            out.skipped[name] = f"{type(err).__name__}: {err}"
            _logger.warning("plot %s skipped: %s", name, err)
            return
        out.files.append(PlotFile(name, title, png, html, figure=figure))

    optuna_plot(
        "optimization_history",
        f"Optimization history ({names[0]})",
        lambda: om.plot_optimization_history(study, **first),
        lambda: ov.plot_optimization_history(study, **first),
    )
    params = varying_params(complete)
    if not params:
        for name in ("param_importances", "parallel_coordinate", "slice"):
            out.skipped[name] = "no parameter varies across the complete trials"
    else:
        imp_kwargs: dict[str, Any] = {} if results.multi_objective else {"target_name": names[0]}
        optuna_plot(
            "param_importances",
            f"Parameter importances for {', '.join(names)} ({evaluator_name})",
            lambda: _mpl_importances(study, evaluator, names, om),
            lambda: _name_objectives(ov.plot_param_importances(study, evaluator=evaluator, **imp_kwargs), names),
            min_trials=2,
        )
        if gap not in names and all(trial_value(t, gap) is not None for t in complete):

            def gap_of(t: optuna.trial.FrozenTrial) -> float:
                value = trial_value(t, gap)
                if value is None:  # every complete trial has one (checked above), and Optuna reads only those
                    raise ValueError(f"trial {t.number} has no finite {gap}")
                return value

            optuna_plot(
                "param_importances_gap",
                f"Parameter importances for {gap} ({evaluator_name})",
                lambda: om.plot_param_importances(study, evaluator=evaluator, target=gap_of, target_name=gap),
                lambda: ov.plot_param_importances(study, evaluator=evaluator, target=gap_of, target_name=gap),
                min_trials=2,
            )
        optuna_plot(
            "parallel_coordinate",
            f"Parallel coordinates ({names[0]})",
            lambda: om.plot_parallel_coordinate(study, **first),
            lambda: ov.plot_parallel_coordinate(study, **first),
            size=(11.0, 5.5),
        )
        optuna_plot(
            "slice",
            f"Slice plots ({names[0]})",
            lambda: om.plot_slice(study, **first),
            lambda: ov.plot_slice(study, **first),
        )
    knobs = regularization_knobs(params)
    if not knobs:
        out.skipped["gap_vs_regularization"] = "no regularization knob (dropout, L1, L2, BN momentum, ...) varies"
    elif not complete:
        out.skipped["gap_vs_regularization"] = "no complete trial"
    else:
        fig = plot_gap_vs_knobs(complete, knobs, gap=gap)
        png = save_png(fig, out_dir / "gap_vs_regularization.png")
        out.files.append(PlotFile("gap_vs_regularization", f"{gap} against the regularization knobs", png))
    if results.multi_objective:
        _pareto_plot(results, out_dir, out, selected=selected, selected_label=selected_label, plotlyjs=plotlyjs)
    return out


_OBJECTIVE_LABEL = re.compile(r"Objective Value (\d+)")


def _objective_name(label: str, names: Sequence[str]) -> str:
    """Optuna labels the objectives of a multi-objective plot ``Objective Value <i>``: use their names."""
    m = _OBJECTIVE_LABEL.fullmatch(label or "")
    return names[int(m.group(1))] if m and int(m.group(1)) < len(names) else label


def _name_objectives(figure: Any, names: Sequence[str]) -> Any:
    for trace in figure.data:
        trace.name = _objective_name(trace.name, names)
    return figure


def _mpl_importances(study: Any, evaluator: Any, names: list[str], om: Any) -> Any:
    """Optuna's matplotlib importance plot; for multi-objective studies one bar group per objective."""
    if len(study.directions) == 1:
        return om.plot_param_importances(study, evaluator=evaluator, target_name=names[0])
    # Optuna's matplotlib version places each objective's bars in that objective's own order under the
    # last objective's labels; draw the same numbers (get_param_importances per objective) grouped by name.
    import optuna

    values = {
        name: optuna.importance.get_param_importances(study, evaluator=evaluator, target=objective_value(i))
        for i, name in enumerate(names)
    }
    params = sorted({p for v in values.values() for p in v}, key=lambda p: values[names[0]].get(p, 0.0))
    fig = new_figure(figsize=(7.5, 1.0 + 0.55 * len(params) * len(names)), layout="constrained")
    ax = fig.subplots()
    height = 0.8 / len(names)
    for i, name in enumerate(names):
        xs = [float(values[name].get(p, 0.0)) for p in params]
        pos = [k + (i - (len(names) - 1) / 2) * height for k in range(len(params))]
        bars = ax.barh(pos, xs, height=height, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=2)
    ax.set_yticks(range(len(params)), params)
    ax.set_xlabel("Hyperparameter Importance")
    ax.set_ylabel("Hyperparameter")
    ax.set_title("Hyperparameter Importances", loc="left")
    ax.legend(loc="lower right")
    return ax


def _pareto_plot(
    results: Any, out_dir: Path, out: PlotSet, *, selected: int | None, selected_label: str | None, plotlyjs: str
) -> None:
    import optuna
    import optuna.visualization as ov
    import optuna.visualization.matplotlib as om

    study = results.study
    names = list(results.objective)
    if not study.best_trials:
        out.skipped["pareto_front"] = "no complete trial"
        return
    kwargs: dict[str, Any] = {"target_names": names[:2]}
    if len(names) > 2:
        kwargs["targets"] = lambda t: (t.values[0], t.values[1])
    label = selected_label or (f"selected trial {selected}" if selected is not None else None)
    try:
        with warnings.catch_warnings(), pyplot().rc_context():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ax = om.plot_pareto_front(study, **kwargs)
            figure = ov.plot_pareto_front(study, **kwargs)
            if selected is not None:
                import plotly.graph_objects as go

                x, y = study.trials[selected].values[:2]
                ax.scatter([x], [y], marker="*", s=320, color="black", zorder=6, label=label)
                ax.legend(fontsize=8)
                figure.add_trace(
                    go.Scatter(
                        x=[x],
                        y=[y],
                        mode="markers",
                        name=label,
                        marker={"symbol": "star", "size": 18, "color": "black"},
                    )
                )
                figure.update_layout(showlegend=True, legend={"orientation": "h", "yanchor": "top", "y": -0.18})
            ax.set_title(f"Pareto front: {names[0]} vs {names[1]}")
            png = save_png(ax.figure, out_dir / "pareto_front.png")
        html = write_html(figure, out_dir / "pareto_front.html", plotlyjs)
    except Exception as err:
        out.skipped["pareto_front"] = f"{type(err).__name__}: {err}"
        _logger.warning("plot pareto_front skipped: %s", err)
        return
    out.files.append(PlotFile("pareto_front", f"Pareto front ({names[0]} vs {names[1]})", png, html, figure=figure))


# -- MLflow ------------------------------------------------------------------------------------------


def log_plots(client: Any, plots: PlotSet | Sequence[PlotFile], *, parent_run_id: str | None) -> None:
    """Log plot files as MLflow artifacts under ``plots/``: per-trial plots on their run, the rest on the parent.

    ``client`` is a reader from :func:`tuner.tracking.open_reader`. Each file's ``run_id`` and
    ``artifacts`` are filled in. A plot with no run to go to is left unlogged.
    """
    from tuner.tracking import log_file

    files = plots.files if isinstance(plots, PlotSet) else plots
    for f in files:
        run_id = f.run_id if f.trial is not None else (f.run_id or parent_run_id)
        if run_id is None:
            continue
        f.run_id = run_id
        f.artifacts = []
        for path in (f.png, f.html):
            if path is not None:
                f.artifacts.append(log_file(client, run_id, path, artifact_path=ARTIFACT_DIR))
