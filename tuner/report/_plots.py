"""Plots of a study and of its trials, written as PNG (and interactive HTML where Optuna has a plotly plot).

Per trial: the learning curves (honest train and validation loss and metric per epoch, the chosen epoch
marked, the verdict in the title), drawn with matplotlib from a history dict, so the study engine can
call :func:`log_trial_plots` at the end of a trial and the report can redraw them later from the MLflow
metric histories (:func:`metric_history`).

Per study: Optuna's own optimization history, parameter importances, parallel coordinates and slice
plots (``optuna.visualization.matplotlib`` for the PNG, ``optuna.visualization`` for the HTML), the gap
against each regularization knob with verdict colours, and for multi-objective studies Optuna's Pareto
front with the selected trade-off marked. :func:`log_plots` attaches the files to MLflow runs with
:func:`tuner.tracking.log_file`: study plots on the study's parent run, learning curves on the trial's
child run, under ``plots/``.

Nothing here imports Keras or TensorFlow. Matplotlib draws with the ``Agg`` backend unless pyplot was
already set up by the caller. Matplotlib, Optuna, Plotly and :mod:`tuner.tracking` are imported inside
the functions that use them, so importing this module stays light.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tuner.tracking import metric_history  # re-exported: report's readers use it

from tuner._logging import get_logger
from tuner.report._trials import complete_trials, study_metric, trial_value, varying_params
from tuner.study import read_trial

__all__ = ["PlotFile", "PlotSet", "VERDICT_COLORS", "plot_learning_curves", "metric_history", "log_trial_plots",
           "trial_plots", "study_plots", "log_plots", "plot_gap_vs_knobs", "regularization_knobs"]

_logger = get_logger(__name__)

VERDICT_COLORS = {"overfitting": "#d62728", "underfitting": "#1f77b4", "good_fit": "#2ca02c"}
_OTHER_COLOR = "#7f7f7f"
ARTIFACT_DIR = "plots"


@dataclasses.dataclass
class PlotFile:
    """One plot written to disk, and where it was logged in MLflow.

    Attributes:
        name: the plot's file stem (``optimization_history``, ``learning_curves``, ...).
        title: a human title.
        png: the PNG file.
        html: the interactive HTML file, for Optuna's plotly plots; else `None`.
        trial: the trial number for a per-trial plot; `None` for a study plot.
        run_id: the MLflow run the plot belongs to (the trial's child run, or the study's parent run).
        artifacts: artifact paths on ``run_id`` once logged.
        figure: the plotly figure (not serialized), for the HTML report.
    """

    name: str
    title: str
    png: Path
    html: Path | None = None
    trial: int | None = None
    run_id: str | None = None
    artifacts: list[str] = dataclasses.field(default_factory=list)
    figure: Any = dataclasses.field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "png": str(self.png),
                "html": None if self.html is None else str(self.html), "trial": self.trial, "run_id": self.run_id,
                "artifacts": list(self.artifacts)}


@dataclasses.dataclass
class PlotSet:
    """Plots written, and the plots left out with the reason (too few trials, nothing varies, ...)."""

    files: list[PlotFile] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    def extend(self, other: PlotSet) -> None:
        self.files.extend(other.files)
        self.skipped.update(other.skipped)


# -- matplotlib ------------------------------------------------------------------------------------

def _pyplot() -> Any:
    """pyplot on the Agg backend, unless the caller already chose a backend by importing pyplot."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _new_figure(**kwargs: Any) -> Any:
    """A matplotlib Figure that pyplot does not track (no global state, any backend)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save_png(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, bbox_inches="tight")
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close(fig)
    return path


def _write_html(fig: Any, path: Path, plotlyjs: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True if plotlyjs == "inline" else "cdn", full_html=True)
    return path


def _verdict_color(verdict: str | None) -> str:
    return VERDICT_COLORS.get(verdict or "", _OTHER_COLOR)


# -- per trial -------------------------------------------------------------------------------------

def plot_learning_curves(history: Mapping[str, Sequence[float]], *, best_epoch: int | None = None,
                         verdict: str | None = None, metric: str | None = None, title: str | None = None) -> Any:
    """Honest train and validation loss (and metric) per epoch, the chosen epoch marked.

    Args:
        history: per-epoch values by name: ``train_loss``, ``val_loss`` and, for the metric,
            ``train_<metric>`` and ``val_<metric>``; an optional ``epoch`` list gives the x values
            (else ``1..n``). Missing or non-finite values are left as gaps.
        best_epoch: the epoch whose weights were kept (1-based); drawn as a vertical line. Defaults to `None`.
        verdict: the trial's verdict, shown in the title and setting its colour. Defaults to `None`.
        metric: the metric panel's name (``accuracy``, ``mae``, ...); `None` picks the first
            ``val_<name>`` in ``history`` other than the loss. Defaults to `None`.
        title: the title's first part, e.g. ``"trial 3"``. Defaults to `None`.

    Returns:
        A ``matplotlib.figure.Figure`` with one panel for the loss and one for the metric (when present).

    Examples:
        >>> fig = plot_learning_curves({"train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7]},
        ...                            best_epoch=3, verdict="good_fit", title="trial 0")
        >>> [ax.get_title() for ax in fig.axes]
        ['loss']
    """
    if metric is None:
        metric = next((k[4:] for k in history if k.startswith("val_") and k != "val_loss"
                       and not k.startswith("val_keras")), None)
    panels = ["loss"] + ([metric] if metric and (f"train_{metric}" in history or f"val_{metric}" in history) else [])
    fig = _new_figure(figsize=(5.2 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    n = max((len(v) for k, v in history.items() if k != "epoch"), default=0)
    epochs = list(history.get("epoch") or range(1, n + 1))
    for ax, name in zip(axes, panels):
        for split, style in (("train", "-"), ("val", "--")):
            values = history.get(f"{split}_{name}")
            if not values:
                continue
            ys = [float(v) if v is not None and math.isfinite(float(v)) else math.nan for v in values]
            label = "train (honest)" if split == "train" else "validation"
            ax.plot(epochs[:len(ys)], ys, style, marker="o", markersize=3, label=label,
                    color="#1f77b4" if split == "train" else "#ff7f0e")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="#555555", linestyle=":", linewidth=1.2, label=f"chosen epoch {best_epoch}")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if epochs and len(epochs) <= 12:
            ax.set_xticks(epochs)
        ax.legend(fontsize=8)
    head = title or "learning curves"
    fig.suptitle(f"{head}: {verdict}" if verdict else head, color=_verdict_color(verdict) if verdict else "black")
    return fig


def log_trial_plots(client: Any, run_id: str, history: Mapping[str, Sequence[float]], *,
                    best_epoch: int | None = None, verdict: str | None = None, metric: str | None = None,
                    title: str | None = None, out_dir: str | Path | None = None) -> list[str]:
    """Draw a trial's learning curves and log them to its MLflow run as ``plots/learning_curves.png``.

    ``report`` logs these, with the best epoch and the verdict, beside the quick ``learning_curves.png`` that
    a study's tracker draws at the end of every trial.

    Args:
        client: a reader from :func:`tuner.tracking.open_reader` (an ``mlflow.MlflowClient``).
        run_id: the trial's (child) run.
        history, best_epoch, verdict, metric, title: as :func:`plot_learning_curves`.
        out_dir: keep the PNG in this folder; `None` writes it to a temporary folder removed afterwards.
            Defaults to `None`.

    Returns:
        The artifact paths logged on the run.
    """
    from tuner.tracking import log_file

    fig = plot_learning_curves(history, best_epoch=best_epoch, verdict=verdict, metric=metric, title=title)
    if out_dir is not None:
        path = _save_png(fig, Path(out_dir) / "learning_curves.png")
        return [log_file(client, run_id, path, artifact_path=ARTIFACT_DIR)]
    with tempfile.TemporaryDirectory(prefix="tuner-plots-") as tmp:
        path = _save_png(fig, Path(tmp) / "learning_curves.png")
        return [log_file(client, run_id, path, artifact_path=ARTIFACT_DIR)]


def trial_plots(results: Any, client: Any, out_dir: str | Path, *, trials: Sequence[int] | None = None,
                metric: str | None = None) -> PlotSet:
    """Redraw the learning curves of trials from their MLflow metric histories.

    Args:
        results: a :class:`~tuner.study.StudyResults`.
        client: a reader from :func:`tuner.tracking.open_reader` on the study's tracking store.
        out_dir: folder of the plots; each trial's PNG goes to ``trial-<n>/learning_curves.png``.
        trials: trial numbers to draw; `None` draws every trial with an MLflow run. Defaults to `None`.
        metric: the metric panel (``accuracy``, ``mae``); `None` infers it from the trials. Defaults to `None`.
    """
    out = PlotSet()
    wanted = None if trials is None else set(trials)
    metric = metric or study_metric(results)
    keys = ["train_loss", "val_loss"] + ([f"train_{metric}", f"val_{metric}"] if metric else [])
    for t in results.trials():
        if wanted is not None and t.number not in wanted:
            continue
        if not t.mlflow_run_id:
            out.skipped[f"trial-{t.number}"] = "no MLflow run"
            continue
        try:
            history = metric_history(client, t.mlflow_run_id, keys)
        except Exception as err:  # a run deleted from the store
            out.skipped[f"trial-{t.number}"] = f"no MLflow metric history ({type(err).__name__}: {err})"
            continue
        if not any(v == v for k, vals in history.items() if k != "epoch" for v in vals):
            out.skipped[f"trial-{t.number}"] = "no finite per-epoch values in MLflow"
            continue
        state = t.verdict or t.state
        fig = plot_learning_curves(history, best_epoch=t.best_epoch, verdict=state, metric=metric,
                                   title=f"trial {t.number}")
        png = _save_png(fig, Path(out_dir) / f"trial-{t.number}" / "learning_curves.png")
        out.files.append(PlotFile("learning_curves", f"Learning curves of trial {t.number}", png, trial=t.number,
                                  run_id=t.mlflow_run_id))
    return out


# -- per study -------------------------------------------------------------------------------------

def regularization_knobs(names: Sequence[str]) -> list[str]:
    """The parameter names among ``names`` whose knob is a regularization knob (``dropout_2`` counts)."""
    from tuner.space import KNOBS, knob_of

    out = []
    for name in names:
        knob = KNOBS.get(name) or KNOBS.get(knob_of(name))
        if knob is not None and knob.group == "regularization":
            out.append(name)
    return out


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
    fig = _new_figure(figsize=(4.6 * cols, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    rng = np.random.default_rng(0)
    seen: set[str] = set()
    for ax, knob in zip(axes, knobs):
        points = [(t.params[knob], trial_value(t, gap), read_trial(t).verdict, t.distributions[knob])
                  for t in trials if t.state.name == "COMPLETE" and knob in t.params]
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
            ax.scatter([xs[i] for i in sel], [points[i][1] for i in sel], s=36, alpha=0.85,
                       color=_verdict_color(verdict), edgecolors="white", linewidths=0.5,
                       label=verdict if verdict not in seen else None)
            seen.add(verdict)
        ax.axhline(0.0, color="#999999", linewidth=0.8)
        ax.set_xlabel(knob)
        ax.set_ylabel(gap)
        ax.set_title(f"{gap} vs {knob} ({len(points)} trials)", fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[len(knobs):]:
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


def study_plots(results: Any, out_dir: str | Path, *, evaluator: Any = None, evaluator_name: str | None = None,
                selected: int | None = None, selected_label: str | None = None, gap: str = "gap_loss",
                plotlyjs: str = "inline") -> PlotSet:
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
    plt = _pyplot()
    study = results.study
    out_dir = Path(out_dir)
    out = PlotSet()
    complete = complete_trials(study)
    names = list(results.objective)
    if evaluator_name is None:
        evaluator_name = type(evaluator).__name__ if evaluator is not None else "FanovaImportanceEvaluator"
    first = {"target": (lambda t: t.values[0]), "target_name": names[0]} if results.multi_objective else \
        {"target_name": names[0]}

    def optuna_plot(name: str, title: str, make_png: Any, make_html: Any, *, min_trials: int = 1,
                    size: tuple[float, float] | None = None) -> None:
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
                png = _save_png(fig, out_dir / f"{name}.png")
                figure = make_html()
                html = _write_html(figure, out_dir / f"{name}.html", plotlyjs)
        except Exception as err:
            out.skipped[name] = f"{type(err).__name__}: {err}"
            _logger.warning("plot %s skipped: %s", name, err)
            return
        out.files.append(PlotFile(name, title, png, html, figure=figure))

    optuna_plot("optimization_history", f"Optimization history ({names[0]})",
                lambda: om.plot_optimization_history(study, **first),
                lambda: ov.plot_optimization_history(study, **first))
    params = varying_params(complete)
    if not params:
        for name in ("param_importances", "parallel_coordinate", "slice"):
            out.skipped[name] = "no parameter varies across the complete trials"
    else:
        imp_kwargs: dict[str, Any] = {} if results.multi_objective else {"target_name": names[0]}
        optuna_plot("param_importances", f"Parameter importances for {', '.join(names)} ({evaluator_name})",
                    lambda: _mpl_importances(study, evaluator, names, om),
                    lambda: _name_objectives(ov.plot_param_importances(study, evaluator=evaluator, **imp_kwargs),
                                             names), min_trials=2)
        if gap not in names and all(trial_value(t, gap) is not None for t in complete):
            target = {"target": (lambda t: trial_value(t, gap)), "target_name": gap}
            optuna_plot("param_importances_gap", f"Parameter importances for {gap} ({evaluator_name})",
                        lambda: om.plot_param_importances(study, evaluator=evaluator, **target),
                        lambda: ov.plot_param_importances(study, evaluator=evaluator, **target), min_trials=2)
        optuna_plot("parallel_coordinate", f"Parallel coordinates ({names[0]})",
                    lambda: om.plot_parallel_coordinate(study, **first),
                    lambda: ov.plot_parallel_coordinate(study, **first), size=(11.0, 5.5))
        optuna_plot("slice", f"Slice plots ({names[0]})",
                    lambda: om.plot_slice(study, **first), lambda: ov.plot_slice(study, **first))
    knobs = regularization_knobs(params)
    if not knobs:
        out.skipped["gap_vs_regularization"] = "no regularization knob (dropout, L1, L2, BN momentum, ...) varies"
    elif not complete:
        out.skipped["gap_vs_regularization"] = "no complete trial"
    else:
        fig = plot_gap_vs_knobs(complete, knobs, gap=gap)
        png = _save_png(fig, out_dir / "gap_vs_regularization.png")
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

    values = {name: optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                            target=lambda t, i=i: t.values[i])
              for i, name in enumerate(names)}
    params = sorted({p for v in values.values() for p in v}, key=lambda p: values[names[0]].get(p, 0.0))
    fig = _new_figure(figsize=(7.5, 1.0 + 0.55 * len(params) * len(names)), layout="constrained")
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


def _pareto_plot(results: Any, out_dir: Path, out: PlotSet, *, selected: int | None, selected_label: str | None,
                 plotlyjs: str) -> None:
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
        with warnings.catch_warnings(), _pyplot().rc_context():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ax = om.plot_pareto_front(study, **kwargs)
            figure = ov.plot_pareto_front(study, **kwargs)
            if selected is not None:
                import plotly.graph_objects as go

                x, y = study.trials[selected].values[:2]
                ax.scatter([x], [y], marker="*", s=320, color="black", zorder=6, label=label)
                ax.legend(fontsize=8)
                figure.add_trace(go.Scatter(x=[x], y=[y], mode="markers", name=label,
                                            marker={"symbol": "star", "size": 18, "color": "black"}))
                figure.update_layout(showlegend=True, legend={"orientation": "h", "yanchor": "top", "y": -0.18})
            ax.set_title(f"Pareto front: {names[0]} vs {names[1]}")
            png = _save_png(ax.figure, out_dir / "pareto_front.png")
        html = _write_html(figure, out_dir / "pareto_front.html", plotlyjs)
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
