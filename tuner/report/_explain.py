"""What each regularizer of the winner bought (an ablation), and whether the winner is luck (a confirmation).

:func:`ablate` retrains the best configuration over a few seeds as it was found and with each active
regularizer switched off in turn (:func:`tuner.study.ablation_variants`), and reports per regularizer
the change in validation metric and in honest gap, paired by seed: "dropout 0.28: +0.6 pts validation
accuracy (sd 0.3), gap 4.1 -> 2.2 pts". :func:`confirm` retrains the top K configurations over several
seeds and says whether the ranking holds: means, spreads, Welch's t-test and a paired t-test on the
shared seeds (``scipy.stats``). :func:`explain` runs the one and, on request, the other. Each lesson is
stored on the study and logged on its parent MLflow run (:func:`tuner.report._lessons.record_lesson`);
:func:`lesson_sections` turns stored lessons into the HTML report's sections.

Keras is reached through :mod:`tuner.study` (retraining), imported by it inside functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from tuner.errors import ConfigError, Problem
from tuner.metrics import headline_metric, maximizes
from tuner.report._lessons import Section, figure_png, new_figure, paired, record_lesson, spread, welch
from tuner.report._refine import refinement_section
from tuner.study import (
    StudyRecord,
    ablation_variants,
    declared_off,
    open_for_retraining,
    resolved_params,
    retrain,
    retrain_seeds,
    top_trials,
)

__all__ = ["ablate", "ablation_table", "confirm", "confirmation_table", "explain", "lesson_sections"]


def _keys(metric: str) -> tuple[str, str, str, str]:
    return f"val_{metric}", "val_loss", f"gap_{metric}", "gap_loss"


def _ok(run: Mapping[str, Any]) -> bool:
    return "failed" not in run


def _figure(value: float | None, metric: str, *, signed: bool = False) -> str:
    if value is None:
        return "?"
    if metric == "accuracy":
        points = round(value * 100, 1) + 0.0  # + 0.0: a change of -0.02 pts reads +0.0, not -0.0
        return f"{points:+.1f}" if signed else f"{points:.1f}"
    return f"{value:+.3g}" if signed else f"{value:.3g}"


def _row_sentence(label: str, row: Mapping[str, Any], baseline: Mapping[str, Any], metric: str) -> str:
    val, _, gap, gap_loss = _keys(metric)
    delta = row["delta"][val]
    if delta["mean"] is None:
        return f"{label}: could not be measured ({row['failed']} of {len(row['runs'])} runs failed)"
    unit = " pts" if metric == "accuracy" else ""
    name = "validation accuracy" if metric == "accuracy" else f"validation {metric}"
    return (
        f"{label}: {_figure(delta['mean'], metric, signed=True)}{unit} {name} (sd {_figure(delta['sd'], metric)}), "
        f"gap {_figure(row['off'][gap]['mean'], metric)} -> {_figure(baseline[gap]['mean'], metric)}{unit}, "
        f"gap_loss {_figure(row['off'][gap_loss]['mean'], 'loss')} -> {_figure(baseline[gap_loss]['mean'], 'loss')}"
    )


def ablate(
    study: Any,
    *,
    storage: str | None = None,
    seeds: int = 3,
    trial: int | None = None,
    off: Mapping[str, Any] | None = None,
    builder: Callable[..., Any] | None = None,
    tracking_uri: str | None = None,
    log: bool = True,
) -> dict[str, Any]:
    """Retrain the best configuration with each active regularizer switched off in turn, over ``seeds`` seeds.

    Args:
        study: a study name (rebuilt from its storage) or a :class:`~tuner.study.Study`.
        storage: the Optuna storage of a named study. Defaults to tuner's default storage.
        seeds: seeds per configuration (the configuration as found is retrained on the same ones).
            Defaults to `3`.
        trial: the trial to explain. Defaults to the study's best (or selected) trial.
        off: ``{parameter: value that switches it off}`` for a user model's own parameters; added to
            the space's ``regularizer_off`` declarations and the built-in knobs. Defaults to `None`.
        builder: the study's model builder, for a named study made with one. Defaults to `None`.
        tracking_uri: the MLflow store to log to; `None`: the study's own; ``"none"``: nowhere.
        log: log the table and plot to the study's parent MLflow run. Defaults to `True`.

    Returns:
        The ablation as stored on the study (``StudyRecord.lessons()["ablation"]``): ``rows`` (one per
        regularizer: ``label``, ``changes``, per-seed ``runs``, ``off`` and paired ``delta`` spreads,
        ``sentence``), the ``baseline``, ``seeds``, ``summary``, ``wall_time`` and ``mlflow``.

    Raises:
        ConfigError: when the study does not exist or has no complete trial, or ``off`` names a parameter
            the configuration does not have.
    """
    s = open_for_retraining(study, storage, builder=builder)
    opt = s.optuna_study
    seed_list = retrain_seeds(s, seeds)  # a bad option is refused before the study's state is read
    number = s.best_trial().number if trial is None else int(trial)
    params = resolved_params(opt, number)
    declared = {**declared_off(StudyRecord(opt).recipe.space), **declared_off(s.space.to_dict()), **(off or {})}
    variants = ablation_variants(params, off=declared)
    metric = headline_metric(s.dataset.task)
    keys = _keys(metric)
    start = time.perf_counter()
    base_runs = retrain(s, params, seed_list) if variants else []
    baseline = {k: spread([r[k] for r in base_runs if _ok(r)]) for k in keys}
    rows = []
    for variant in variants:
        runs = retrain(s, variant.apply(params), seed_list)
        both = [(b, r) for b, r in zip(base_runs, runs, strict=True) if _ok(b) and _ok(r)]
        row: dict[str, Any] = {
            "name": variant.name,
            "label": variant.label,
            "changes": variant.changes,
            "runs": runs,
            "failed": sum(not _ok(r) for r in runs),
            "off": {k: spread([r[k] for r in runs if _ok(r)]) for k in keys},
            "delta": {k: spread([b[k] - r[k] for b, r in both]) for k in keys},
        }
        row["sentence"] = _row_sentence(variant.label, row, baseline, metric)
        rows.append(row)
    if rows:
        summary = (
            f"What each regularizer of trial {number} bought, over {len(seed_list)} seeds: the change from "
            "switching it off to the configuration as found (paired by seed), and the gap off -> as found."
        )
    else:
        summary = f"Trial {number} has no active regularizer to switch off: nothing to ablate."
    data = {
        "trial": number,
        "metric": metric,
        "seeds": seed_list,
        "params": params,
        "baseline": baseline,
        "baseline_runs": base_runs,
        "rows": rows,
        "summary": summary,
        "wall_time": round(time.perf_counter() - start, 1),
    }
    headers, table = ablation_table(data)
    return record_lesson(
        opt,
        "ablation",
        data,
        storage=s.settings.storage,
        headers=headers,
        rows=table,
        figure=ablation_figure,
        tracking_uri=tracking_uri or s.settings.tracking_uri,
        log=log,
    )


def ablation_table(data: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The ablation as a table: per regularizer, its figures switched off and as found, and the paired change."""
    metric = data["metric"]
    val, val_loss, gap, gap_loss = _keys(metric)
    scale = 100.0 if metric == "accuracy" else 1.0
    unit = " (pts)" if metric == "accuracy" else ""
    headers = [
        "regularizer",
        f"Δ{val}{unit}",
        "sd",
        f"{gap} off{unit}",
        f"{gap} as found{unit}",
        "gap_loss off",
        "gap_loss as found",
        "Δval_loss",
        "seeds",
    ]
    b = data["baseline"]

    def scaled(x: Any) -> Any:
        return None if x is None else round(x * scale, 3) + 0.0  # + 0.0: no -0.0

    rows = [
        [
            r["label"],
            scaled(r["delta"][val]["mean"]),
            scaled(r["delta"][val]["sd"]),
            scaled(r["off"][gap]["mean"]),
            scaled(b[gap]["mean"]),
            r["off"][gap_loss]["mean"],
            b[gap_loss]["mean"],
            r["delta"][val_loss]["mean"],
            r["delta"][val]["n"],
        ]
        for r in data["rows"]
    ]
    return headers, rows


def ablation_figure(data: Mapping[str, Any]) -> Any:
    """Left: the change in validation metric each regularizer bought (mean ± sd over seeds); right: the gap
    switched off and as found."""
    metric = data["metric"]
    val, _, gap, _ = _keys(metric)
    scale = 100.0 if metric == "accuracy" else 1.0
    rows = data["rows"]
    fig = new_figure(figsize=(11, 1.2 + 0.55 * max(1, len(rows))))
    left, right = fig.subplots(1, 2)
    labels = [r["label"] for r in rows]
    ys = list(range(len(rows)))
    means = [(r["delta"][val]["mean"] or 0.0) * scale for r in rows]
    sds = [(r["delta"][val]["sd"] or 0.0) * scale for r in rows]
    left.barh(
        ys,
        means,
        xerr=sds,
        color=["#2ca02c" if (m >= 0) == (metric == "accuracy") else "#d62728" for m in means],
        capsize=3,
    )
    left.axvline(0, color="#555", lw=0.8)
    left.set_yticks(ys, labels)
    left.set_xlabel(f"Δ {val}{' (pts)' if metric == 'accuracy' else ''}: as found − switched off")
    left.set_title(f"What each regularizer bought (trial {data['trial']}, {len(data['seeds'])} seeds)")
    off = [(r["off"][gap]["mean"] or 0.0) * scale for r in rows]
    found = (data["baseline"][gap]["mean"] or 0.0) * scale
    right.barh([y + 0.2 for y in ys], off, height=0.4, color="#d62728", label="switched off")
    right.barh([y - 0.2 for y in ys], [found] * len(rows), height=0.4, color="#2ca02c", label="as found")
    right.set_yticks(ys, [""] * len(rows))
    right.set_xlabel(f"{gap}{' (pts)' if metric == 'accuracy' else ''}")
    right.set_title("Honest gap")
    right.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


# -- is the winner luck? -----------------------------------------------------------------------------------


def confirm(
    study: Any,
    *,
    k: int = 3,
    seeds: int = 3,
    storage: str | None = None,
    builder: Callable[..., Any] | None = None,
    tracking_uri: str | None = None,
    log: bool = True,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Retrain the top ``k`` configurations over ``seeds`` shared seeds and say whether the ranking holds.

    The winner's retrained objective is compared with each other configuration's by Welch's t-test
    (``scipy.stats.ttest_ind(equal_var=False)``) and by a paired t-test on the shared seeds
    (``scipy.stats.ttest_rel``). The ranking *holds* when the winner still has the best mean.

    Args:
        study: a study name (rebuilt from its storage) or a :class:`~tuner.study.Study`.
        k: how many of the best complete trials to retrain (at least 2). Defaults to `3`.
        seeds: seeds per configuration. Defaults to `3`.
        storage, builder, tracking_uri, log: as for :func:`ablate`.
        alpha: the significance level of the sentence. Defaults to `0.05`.

    Returns:
        The confirmation as stored on the study: ``rows`` (per trial: study ``rank``, ``stored`` value,
        per-seed ``values``, ``mean``, ``sd``, ``retrained_rank``, ``diff`` from the winner, ``welch_p``,
        ``paired_p``), ``holds``, ``sentence``, ``seeds``, ``wall_time`` and ``mlflow``.

    Raises:
        ConfigError: when ``k`` is below 2, or the study has no complete trial.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 2:
        raise ConfigError(
            [Problem("--confirm", "k", "must be an integer of at least 2 (the winner and a rival)", value=k)]
        )
    s = open_for_retraining(study, storage, builder=builder)
    opt = s.optuna_study
    s.best_trial()  # a study without a complete trial says so here
    objective, direction = s.settings.objective[0], s.directions[0]
    sign = 1.0 if maximizes(direction) else -1.0
    seed_list = retrain_seeds(s, seeds)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for rank, number in enumerate(top_trials(opt, k), 1):
        runs = retrain(s, resolved_params(opt, number), seed_list)
        values = [r.get(objective) if "failed" not in r else None for r in runs]
        rows.append(
            {
                "trial": number,
                "rank": rank,
                "stored": opt.trials[number].values[0],
                "values": values,
                **dict(spread(values).items()),
            }
        )
    order = sorted(rows, key=lambda r: (r["mean"] is None, -sign * (r["mean"] or 0.0), r["rank"]))
    for i, r in enumerate(order, 1):
        r["retrained_rank"] = i
    winner = rows[0]
    for r in rows[1:]:
        pairs = [(a, b) for a, b in zip(winner["values"], r["values"], strict=True) if a is not None and b is not None]
        r["diff"] = spread([a - b for a, b in pairs])["mean"]
        r["welch_p"] = welch([v for v in winner["values"] if v is not None], [v for v in r["values"] if v is not None])
        r["paired_p"] = paired([a for a, _ in pairs], [b for _, b in pairs])
    holds = len(rows) > 1 and winner["retrained_rank"] == 1
    data = {
        "objective": objective,
        "direction": direction,
        "k": k,
        "seeds": seed_list,
        "rows": rows,
        "holds": holds,
        "sentence": _confirm_sentence(rows, holds, objective, len(seed_list), alpha),
        "alpha": alpha,
        "wall_time": round(time.perf_counter() - start, 1),
    }
    headers, table = confirmation_table(data)
    return record_lesson(
        opt,
        "confirmation",
        data,
        storage=s.settings.storage,
        headers=headers,
        rows=table,
        figure=confirmation_figure,
        tracking_uri=tracking_uri or s.settings.tracking_uri,
        log=log,
    )


def _mean_sd(r: Mapping[str, Any]) -> str:
    if r["mean"] is None:
        return "no finished run"
    return f"{r['mean']:.4g} ± {r['sd']:.2g}"


def _confirm_sentence(rows: list[dict[str, Any]], holds: bool, objective: str, n_seeds: int, alpha: float) -> str:
    if len(rows) < 2:
        return f"the study has only {len(rows)} complete trial: nothing to compare the winner with."
    winner, runner = rows[0], rows[1]
    p = runner.get("welch_p")
    p_text = "p undefined" if p is None else f"Welch p={p:.2g}"
    if not holds:
        best = min(rows, key=lambda r: r["retrained_rank"])
        return (
            f"The ranking does not hold: over {n_seeds} seeds trial {best['trial']} has the best mean {objective} "
            f"({_mean_sd(best)}), ahead of the winner, trial {winner['trial']} ({_mean_sd(winner)}); the winner's "
            "single run was partly luck of its seed."
        )
    if p is not None and p < alpha:
        return (
            f"The ranking holds: over {n_seeds} seeds trial {winner['trial']} ({_mean_sd(winner)}) beats the "
            f"runner-up, trial {runner['trial']} ({_mean_sd(runner)}), on {objective} ({p_text} < {alpha})."
        )
    return (
        f"Trial {winner['trial']} keeps the best mean {objective} over {n_seeds} seeds ({_mean_sd(winner)} against "
        f"{_mean_sd(runner)} for trial {runner['trial']}), but by less than seed noise ({p_text} ≥ {alpha}): "
        "treat them as tied, or retrain with more seeds."
    )


def confirmation_table(data: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The confirmation as a table: per trial, its stored value, the retrained mean and spread, and the tests."""
    obj = data["objective"]
    headers = [
        "trial",
        "study rank",
        f"stored {obj}",
        "retrained mean",
        "sd",
        "seeds",
        "retrained rank",
        "diff from winner",
        "Welch p",
        "paired p",
    ]
    rows = [
        [
            r["trial"],
            r["rank"],
            r["stored"],
            r["mean"],
            r["sd"],
            r["n"],
            r["retrained_rank"],
            r.get("diff"),
            r.get("welch_p"),
            r.get("paired_p"),
        ]
        for r in data["rows"]
    ]
    return headers, rows


def confirmation_figure(data: Mapping[str, Any]) -> Any:
    """Each configuration's objective over the seeds (dots), its mean ± sd, and the value the study stored (x)."""
    rows = data["rows"]
    fig = new_figure(figsize=(1.6 + 1.1 * len(rows), 4))
    ax = fig.subplots()
    for i, r in enumerate(rows):
        values = [v for v in r["values"] if v is not None]
        ax.scatter([i] * len(values), values, color="#1f77b4", alpha=0.6, s=18)
        if r["mean"] is not None:
            ax.errorbar([i + 0.15], [r["mean"]], yerr=[r["sd"]], fmt="o", color="#000", capsize=4)
        ax.scatter([i - 0.15], [r["stored"]], marker="x", color="#d62728", s=40)
    ax.set_xticks(range(len(rows)), [f"#{r['trial']}\n(rank {r['rank']})" for r in rows])
    ax.set_ylabel(data["objective"])
    ax.set_title(
        f"Top {len(rows)} retrained over {len(data['seeds'])} seeds ({'holds' if data['holds'] else 'does not hold'})"
    )
    fig.tight_layout()
    return fig


def explain(
    study: Any,
    *,
    storage: str | None = None,
    seeds: int = 3,
    trial: int | None = None,
    off: Mapping[str, Any] | None = None,
    confirm_top: int = 0,
    confirm_seeds: int | None = None,
    builder: Callable[..., Any] | None = None,
    tracking_uri: str | None = None,
    log: bool = True,
) -> dict[str, Any]:
    """What the study teaches about its winner: :func:`ablate`, and with ``confirm_top`` K :func:`confirm` too.

    Args:
        study: a study name (rebuilt from its storage) or a :class:`~tuner.study.Study`.
        confirm_top: retrain the top K configurations too (0: no). Defaults to `0`.
        confirm_seeds: seeds of the confirmation. Defaults to ``seeds``.
        storage, seeds, trial, off, builder, tracking_uri, log: as for :func:`ablate`.

    Returns:
        ``{"ablation": ..., "confirmation": ...}`` (the latter only with ``confirm_top``).

    Examples:

        >>> import tuner
        >>> lessons = tuner.explain("regularization-digits", seeds=3)  # doctest: +SKIP
        >>> for row in lessons["ablation"]["rows"]:  # doctest: +SKIP
        ...     print(row["sentence"])
    """
    s = open_for_retraining(study, storage, builder=builder)
    out = {"ablation": ablate(s, seeds=seeds, trial=trial, off=off, tracking_uri=tracking_uri, log=log)}
    if confirm_top:
        out["confirmation"] = confirm(
            s, k=confirm_top, seeds=confirm_seeds or seeds, tracking_uri=tracking_uri, log=log
        )
    return out


def lesson_sections(lessons: Mapping[str, Mapping[str, Any]]) -> list[Section]:
    """The HTML report's sections for the lessons stored on a study (``StudyRecord.lessons()``)."""
    sections = []
    if "ablation" in lessons:
        a = lessons["ablation"]
        headers, rows = ablation_table(a)
        sentences = [a["summary"], *[r["sentence"] for r in a["rows"]], f"Retraining took {a.get('wall_time')} s."]
        sections.append(
            Section(
                "ablation",
                f"What each regularizer of trial {a['trial']} bought",
                sentences,
                headers,
                rows,
                figure_png(ablation_figure(a)) if a["rows"] else None,
            )
        )
    if "confirmation" in lessons:
        c = lessons["confirmation"]
        headers, rows = confirmation_table(c)
        sections.append(
            Section(
                "confirmation",
                f"Is the winner luck? The top {len(c['rows'])} retrained",
                [c["sentence"], f"Retraining took {c.get('wall_time')} s."],
                headers,
                rows,
                figure_png(confirmation_figure(c)),
            )
        )
    if "refinement" in lessons:
        sections.append(refinement_section(lessons["refinement"]))
    return sections
