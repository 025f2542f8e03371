"""Analysis of a study: parameter importances and the gap statistics (how each knob moved the gap).

:func:`param_importances` scores the knobs with an Optuna importance evaluator, for each objective and for
the gap. :func:`gap_analysis` gives, per knob, a Spearman rank correlation with the gap and with validation
performance (medians per choice for categorical knobs), phrased as one sentence.

Optuna and SciPy are imported inside the functions that use them, so importing this module stays light.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

from tuner.errors import ConfigError, Problem
from tuner.metrics import maximize
from tuner.report._trials import complete_trials, finite, study_metric, trial_value, varying_params
from tuner.study import StudyResults, regularization_knobs

__all__ = [
    "Importances",
    "KnobEffect",
    "GapAnalysis",
    "IMPORTANCE_EVALUATORS",
    "evaluator_for",
    "param_importances",
    "gap_analysis",
]

IMPORTANCE_EVALUATORS = {
    "fanova": "FanovaImportanceEvaluator",
    "ped_anova": "PedAnovaImportanceEvaluator",
    "mean_decrease_impurity": "MeanDecreaseImpurityImportanceEvaluator",
}
_CLEAR_EFFECT = 0.2  # |rho| below this is "no clear effect"
_ALPHA = 0.05  # p-value below this is a clear (not just a tendency) effect


# -- data model ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Importances:
    """Parameter importances from one Optuna importance evaluator.

    Attributes:
        evaluator: the evaluator's class name, e.g. ``FanovaImportanceEvaluator``.
        values: per target (each objective, and the gap), ``{param: importance}``, summing to 1.
        n_trials: the complete trials they rest on.
        note: why some or all importances are missing (too few trials, nothing varies), else `None`.
    """

    evaluator: str
    values: dict[str, dict[str, float]]
    n_trials: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class KnobEffect:
    """The effect of one knob on the gap and on validation performance, over complete trials.

    Attributes:
        knob: the parameter name.
        kind: ``numeric`` (Spearman rank correlation) or ``categorical`` (medians per choice).
        n_trials: the complete trials it rests on (those where the knob was sampled).
        rho_gap, p_gap: Spearman's rho and its p-value between the knob and the gap (numeric knobs).
        rho_val, p_val: the same with the validation figure.
        groups: per choice, ``{"value", "n", "median_gap", "median_val"}`` (categorical knobs).
        p_groups: Kruskal-Wallis p-value of the gap across choices (categorical knobs), when defined.
        sentence: the effect in one sentence.
    """

    knob: str
    kind: str
    n_trials: int
    rho_gap: float | None = None
    p_gap: float | None = None
    rho_val: float | None = None
    p_val: float | None = None
    groups: list[dict[str, Any]] | None = None
    p_groups: float | None = None
    regularization: bool = False
    sentence: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class GapAnalysis:
    """How each varying knob moved the gap and validation performance across the study."""

    gap: str
    validation: str
    method: str
    effects: list[KnobEffect]
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "gap": self.gap,
            "validation": self.validation,
            "method": self.method,
            "note": self.note,
            "effects": [e.to_dict() for e in self.effects],
        }


def _human(name: str) -> str:
    """``val_accuracy`` -> ``validation accuracy``; ``val_mae`` -> ``validation MAE``."""
    split, _, metric = name.partition("_")
    words = {"val": "validation", "train": "training", "gap": "gap in"}.get(split, split)
    metric = metric.upper() if metric in ("mae", "rmse", "mse") else metric
    return f"{words} {metric}" if metric else name


# -- importances -----------------------------------------------------------------------------------


def evaluator_for(name: str, *, seed: int = 0) -> Any:
    """The Optuna importance evaluator called ``name`` (a key of :data:`IMPORTANCE_EVALUATORS`), seeded."""
    import optuna

    if name not in IMPORTANCE_EVALUATORS:
        raise ConfigError(
            [Problem("--evaluator", "evaluator", f"must be one of {list(IMPORTANCE_EVALUATORS)}", value=name)]
        )
    cls = getattr(optuna.importance, IMPORTANCE_EVALUATORS[name])
    return cls() if name == "ped_anova" else cls(seed=seed)


def param_importances(
    results: StudyResults, *, evaluator: str = "fanova", seed: int = 0, gap: str = "gap_loss"
) -> Importances:
    """Parameter importances for each objective and for the gap, with ``optuna.importance.get_param_importances``.

    Args:
        results: the study's results.
        evaluator: ``fanova`` (``FanovaImportanceEvaluator``, Optuna's default), ``ped_anova``
            (``PedAnovaImportanceEvaluator``) or ``mean_decrease_impurity``. Defaults to `"fanova"`.
        seed: the evaluator's seed (fanova, mean_decrease_impurity), so reruns agree. Defaults to `0`.
        gap: the gap also scored as a target, when it is not an objective. Defaults to `"gap_loss"`.

    Returns:
        :class:`Importances`; with fewer than 2 complete trials or no varying parameter the values are
        empty and ``note`` says why.
    """
    import optuna

    evaluator_for(evaluator)  # validates the name
    cls_name = IMPORTANCE_EVALUATORS[evaluator]
    complete = complete_trials(results.study)
    out = Importances(evaluator=cls_name, values={}, n_trials=len(complete))
    if len(complete) < 2:
        out.note = f"importances need at least 2 complete trials; the study has {len(complete)}"
        return out
    if not varying_params(complete):
        out.note = "no parameter varies across the complete trials"
        return out
    targets: dict[str, Any] = {}
    for i, name in enumerate(results.objective):
        targets[name] = (lambda t, i=i: t.values[i]) if results.multi_objective or i else None
    if gap not in targets and all(trial_value(t, gap) is not None for t in complete):
        targets[gap] = lambda t: trial_value(t, gap)
    notes = []
    for name, target in targets.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                values = optuna.importance.get_param_importances(
                    results.study, evaluator=evaluator_for(evaluator, seed=seed), target=target
                )
        except Exception as err:
            notes.append(f"{name}: {type(err).__name__}: {err}")
            continue
        out.values[name] = {k: float(v) for k, v in values.items()}
    out.note = "; ".join(notes) or None
    return out


# -- gap analysis ----------------------------------------------------------------------------------


def _validation_key(results: StudyResults, metric: str | None) -> str:
    for name in results.objective:
        if name.startswith("val_"):
            return name
    return f"val_{metric}" if metric else "val_loss"


def _rho(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, float | None]:
    from scipy.stats import spearmanr

    if len(set(x)) < 2 or len(set(y)) < 2:
        return None, None
    res = spearmanr(x, y)
    return finite(res.statistic), finite(res.pvalue)


def _strength(rho: float | None, p: float | None) -> str:
    if rho is None or abs(rho) < _CLEAR_EFFECT:
        return "none"
    return "clear" if p is not None and p < _ALPHA else "tendency"


def _numeric_sentence(e: KnobEffect, *, val_name: str, higher_better: bool, gap_positive: bool) -> str:
    g = _strength(e.rho_gap, e.p_gap)
    if e.rho_gap is None:
        part = f"the gap did not vary with {e.knob} ({e.n_trials} trials)"
        lowered = False
    else:
        down = e.rho_gap < 0
        past, base = (
            (("narrowed", "narrow") if down else ("widened", "widen"))
            if gap_positive
            else (("lowered", "lower") if down else ("raised", "raise"))
        )
        if g == "clear":
            part = f"higher {e.knob} {past} the gap (ρ = {e.rho_gap:.2f}, {e.n_trials} trials)"
        elif g == "tendency":
            part = (
                f"higher {e.knob} tended to {base} the gap (ρ = {e.rho_gap:.2f}, p = {e.p_gap:.2f}, "
                f"{e.n_trials} trials)"
            )
        else:
            part = f"higher {e.knob} had no clear effect on the gap (ρ = {e.rho_gap:.2f}, {e.n_trials} trials)"
        lowered = down and g != "none"
    v = _strength(e.rho_val, e.p_val)
    if e.rho_val is None:
        return f"{part}; {val_name} did not vary."
    better = (e.rho_val > 0) == higher_better
    if v == "clear":
        tail = "and improved" if better else ("but cost" if lowered else "and worsened")
        return f"{part} {tail} {val_name} (ρ = {e.rho_val:.2f})."
    if v == "tendency":
        verb = "improve" if better else "worsen"
        return f"{part} and tended to {verb} {val_name} (ρ = {e.rho_val:.2f}, p = {e.p_val:.2f})."
    if lowered:
        return f"{part} at no clear cost in {val_name} (ρ = {e.rho_val:.2f})."
    return f"{part} and had no clear effect on {val_name} (ρ = {e.rho_val:.2f})."


def _categorical_sentence(e: KnobEffect, *, val_name: str, higher_better: bool) -> str:
    groups = e.groups or []
    if len(groups) < 2:
        only = groups[0]["value"] if groups else None
        return f"{e.knob} took a single value ({only!r}) in the complete trials: no effect to measure."
    by_gap = sorted(groups, key=lambda g: g["median_gap"])
    lo, hi = by_gap[0], by_gap[-1]
    text = (
        f"{e.knob}: the gap was smallest with {lo['value']!r} (median {lo['median_gap']:.3g}, {lo['n']} trials) "
        f"and largest with {hi['value']!r} (median {hi['median_gap']:.3g}, {hi['n']} trials)"
    )
    if e.p_groups is not None:
        text += f", Kruskal-Wallis p = {e.p_groups:.2f}"
    vals = [g for g in groups if g["median_val"] is not None]
    if vals:
        best = (max if higher_better else min)(vals, key=lambda g: g["median_val"])
        text += f"; {val_name} was best with {best['value']!r} (median {best['median_val']:.3g})"
    return text + "."


def gap_analysis(results: StudyResults, *, gap: str = "gap_loss", validation: str | None = None) -> GapAnalysis:
    """For each varying knob, the direction and size of its effect on the gap and on validation performance.

    Numeric knobs: Spearman's rank correlation (``scipy.stats.spearmanr``) between the knob and the gap,
    and between the knob and the validation figure, over the complete trials where the knob was
    sampled. Categorical knobs: the median gap and validation figure per choice, with a Kruskal-Wallis
    p-value of the gap across choices. Regularization knobs come first, then the others by the size of
    their effect on the gap.

    Args:
        results: the study's results.
        gap: the gap analysed (``gap_loss``, ``gap_accuracy``, ...). Defaults to `"gap_loss"`.
        validation: the validation figure; `None` takes the first ``val_`` objective, else the task's
            metric (``val_accuracy``, ``val_mae``). Defaults to `None`.

    Returns:
        :class:`GapAnalysis` with one :class:`KnobEffect` (and its sentence) per knob.
    """
    import numpy as np

    metric = study_metric(results)
    validation = validation or _validation_key(results, metric)
    val_name = _human(validation)
    higher_better = maximize(validation)
    method = (
        f"Spearman rank correlation over complete trials (numeric knobs); median per choice with a "
        f"Kruskal-Wallis test (categorical knobs). Gap = {gap}; validation = {validation}."
    )
    complete = complete_trials(results.study)
    out = GapAnalysis(gap=gap, validation=validation, method=method, effects=[])
    if not complete:
        out.note = "no complete trial"
        return out
    knobs = varying_params(complete)
    if not knobs:
        out.note = "no parameter varies across the complete trials"
        return out
    reg = set(regularization_knobs(knobs))
    for knob in knobs:
        rows = [
            (t.params[knob], gap_value, trial_value(t, validation), t.distributions[knob])
            for t in complete
            if knob in t.params and (gap_value := trial_value(t, gap)) is not None
        ]
        categorical = type(rows[-1][3]).__name__ == "CategoricalDistribution" if rows else False
        e = KnobEffect(
            knob=knob, kind="categorical" if categorical else "numeric", n_trials=len(rows), regularization=knob in reg
        )
        if categorical:
            groups: dict[Any, list[tuple[float, float | None]]] = {}
            for value, g, v, _ in rows:
                groups.setdefault(value, []).append((g, v))
            e.groups = []
            for value, items in groups.items():
                vals = [v for _, v in items if v is not None]
                e.groups.append(
                    {
                        "value": value,
                        "n": len(items),
                        "median_gap": float(np.median([g for g, _ in items])),
                        "median_val": float(np.median(vals)) if vals else None,
                    }
                )
            samples = [[g for g, _ in items] for items in groups.values()]
            if len(samples) >= 2 and sum(len(s) for s in samples) > len(samples):
                from scipy.stats import kruskal

                try:
                    e.p_groups = finite(kruskal(*samples).pvalue)
                except ValueError:  # every value identical
                    e.p_groups = None
            e.sentence = _categorical_sentence(e, val_name=val_name, higher_better=higher_better)
        else:
            if len(rows) < 3:
                e.sentence = f"{knob}: too few complete trials ({len(rows)}) for a rank correlation."
            else:
                x = [float(r[0]) for r in rows]
                e.rho_gap, e.p_gap = _rho(x, [r[1] for r in rows])
                paired = [(xi, r[2]) for xi, r in zip(x, rows, strict=True) if r[2] is not None]
                e.rho_val, e.p_val = _rho([a for a, _ in paired], [b for _, b in paired])
                if len(set(x)) < 2:
                    e.sentence = f"{knob} took a single value in the complete trials: no effect to measure."
                else:
                    gap_positive = float(np.median([r[1] for r in rows])) >= 0
                    e.sentence = _numeric_sentence(
                        e, val_name=val_name, higher_better=higher_better, gap_positive=gap_positive
                    )
        out.effects.append(e)
    out.effects.sort(key=lambda e: (not e.regularization, -(abs(e.rho_gap) if e.rho_gap is not None else -1.0)))
    return out
