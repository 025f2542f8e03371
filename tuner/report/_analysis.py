"""Reports on a study, read back from its Optuna storage and its MLflow store alone.

:func:`build_report` gathers a :class:`StudyReport`: the top trials (the parameters that vary, the
objective, honest train and validation metrics, the gap, verdict and state), the counts of complete,
pruned and failed trials with their reasons, the best trial and its test-split score, parameter
importances from an Optuna importance evaluator, and a gap analysis (:func:`gap_analysis`: per knob, a
Spearman rank correlation with the gap and with validation performance, phrased as one sentence).
:func:`make_plots` draws the plots of :mod:`tuner.plots` and logs them to MLflow; :func:`print_report`,
:meth:`StudyReport.to_dict` and :func:`write_html` render the report for a terminal, a script and a
browser (a self-contained page: images inline, plotly.js inline, no network needed).

For multi-objective studies, :func:`select_trial` picks one trial on the Pareto front by a rule (the knee
point, or the best validation figure with the gap under a bound) and stores it as the study's
``selected_trial``, which :meth:`tuner.results.StudyResults.best` returns from then on.

Nothing here imports Keras or TensorFlow.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuner._store import sqlite_path, tracking_beside
from tuner.errors import ConfigError, Problem
from tuner.metrics import maximize
from tuner.report._plots import PlotSet, regularization_knobs
from tuner.study import StudyResults, TrialReport

__all__ = ["StudyReport", "Importances", "KnobEffect", "GapAnalysis", "build_report", "param_importances",
           "gap_analysis", "select_trial", "clear_selection", "pareto_front", "make_plots", "print_report",
           "write_html", "report_json", "resolve_tracking_uri", "IMPORTANCE_EVALUATORS", "SELECTION_RULES"]

IMPORTANCE_EVALUATORS = {
    "fanova": "FanovaImportanceEvaluator",
    "ped_anova": "PedAnovaImportanceEvaluator",
    "mean_decrease_impurity": "MeanDecreaseImpurityImportanceEvaluator",
}
SELECTION_RULES = ("knee", "gap_bound")
_CLEAR_EFFECT = 0.2   # |rho| below this is "no clear effect"
_ALPHA = 0.05         # p-value below this is a clear (not just a tendency) effect


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
        return {"gap": self.gap, "validation": self.validation, "method": self.method, "note": self.note,
                "effects": [e.to_dict() for e in self.effects]}


@dataclasses.dataclass
class StudyReport:
    """Everything a report shows, read from the stores. ``to_dict()`` is the ``--json`` output."""

    study: str
    storage: str
    objective: list[str]
    directions: list[str]
    dataset: dict[str, Any]
    metric: str | None
    counts: dict[str, int]
    problems: list[dict[str, Any]]
    varying: list[str]
    top: list[dict[str, Any]]
    best: dict[str, Any] | None
    test: dict[str, float] | None
    test_note: str | None
    importances: Importances
    gap_analysis: GapAnalysis
    pareto: dict[str, Any] | None
    mlflow: dict[str, Any]
    message: str | None = None
    plots: PlotSet = dataclasses.field(default_factory=PlotSet)

    @property
    def ok(self) -> bool:
        """Whether the study has a complete trial to report on."""
        return self.best is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study, "storage": self.storage, "objective": self.objective,
            "directions": self.directions, "dataset": self.dataset, "metric": self.metric,
            "counts": self.counts, "problems": self.problems, "varying_params": self.varying, "top": self.top,
            "best": self.best, "test": self.test, "test_note": self.test_note,
            "importances": self.importances.to_dict(), "gap_analysis": self.gap_analysis.to_dict(),
            "pareto": self.pareto, "mlflow": self.mlflow, "message": self.message,
            "plots": {"files": [f.to_dict() for f in self.plots.files], "skipped": self.plots.skipped},
        }


# -- helpers ---------------------------------------------------------------------------------------

def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _complete(study: Any) -> list[Any]:
    return [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]


def _varying(trials: Sequence[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for t in trials:
        for name, dist in t.distributions.items():
            if not dist.single():
                seen.setdefault(name, None)
    return list(seen)


def _metric_of(results: StudyResults) -> str | None:
    from tuner.report._plots import _study_metric

    return _study_metric(results)


def _human(name: str) -> str:
    """``val_accuracy`` -> ``validation accuracy``; ``val_mae`` -> ``validation MAE``."""
    split, _, metric = name.partition("_")
    words = {"val": "validation", "train": "training", "gap": "gap in"}.get(split, split)
    metric = metric.upper() if metric in ("mae", "rmse", "mse") else metric
    return f"{words} {metric}" if metric else name


def _metric_value(trial: Any, key: str) -> float | None:
    value = (trial.user_attrs.get("metrics") or {}).get(key)
    if value is None:
        value = trial.user_attrs.get(key)
    return _finite(value)


def resolve_tracking_uri(storage: str, tracking_uri: str | None = None) -> str | None:
    """The MLflow store of a study: the one given, else ``MLFLOW_TRACKING_URI``, else the ``mlflow.db``
    beside a SQLite Optuna storage (the layout ``python -m tuner study`` writes), else
    ``sqlite:///mlruns/mlflow.db`` when it exists. `None` when there is none (or ``"none"`` was given).
    """
    if tracking_uri == "none":
        return None
    if tracking_uri:
        return tracking_uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return tracking_beside(storage)


def _mlflow_context(results: StudyResults, tracking_uri: str | None) -> dict[str, Any]:
    """What the MLflow store holds about the study: its experiment and its study (parent) runs."""
    info: dict[str, Any] = {"tracking_uri": tracking_uri, "experiment_id": None, "parent_run_id": None,
                            "parent_run_ids": [], "note": None}
    if tracking_uri is None:
        info["note"] = "no MLflow store found (pass --tracking-uri): learning curves and artifacts are left out"
        return info
    if sqlite_path(tracking_uri) is not None and not sqlite_path(tracking_uri).exists():
        info["note"] = f"no MLflow store at {tracking_uri}: learning curves and artifacts are left out"
        return info
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    name = results.study.study_name
    exp = None
    exp_id = results.study.user_attrs.get("mlflow_experiment_id")
    if exp_id is not None:
        try:
            exp = client.get_experiment(str(exp_id))
        except Exception:
            exp = None
        if exp is not None and exp.name != name:
            exp = None
    if exp is None:
        exp = client.get_experiment_by_name(name)
    if exp is None:
        info["note"] = f"the MLflow store {tracking_uri} has no experiment {name!r}"
        return info
    info["experiment_id"] = exp.experiment_id
    parents = client.search_runs([exp.experiment_id], filter_string="tags.`tuner.kind` = 'study'",
                                 order_by=["attributes.start_time DESC"])
    info["parent_run_ids"] = [r.info.run_id for r in parents]
    info["parent_run_id"] = parents[0].info.run_id if parents else None
    if not parents:
        info["note"] = f"experiment {name!r} has no study run tagged tuner.kind=study"
    return info


# -- importances -----------------------------------------------------------------------------------

def _evaluator(name: str, *, seed: int = 0) -> Any:
    import optuna

    if name not in IMPORTANCE_EVALUATORS:
        raise ConfigError([Problem("--evaluator", "evaluator", f"must be one of {list(IMPORTANCE_EVALUATORS)}",
                                   value=name)])
    cls = getattr(optuna.importance, IMPORTANCE_EVALUATORS[name])
    return cls() if name == "ped_anova" else cls(seed=seed)


def param_importances(results: StudyResults, *, evaluator: str = "fanova", seed: int = 0,
                      gap: str = "gap_loss") -> Importances:
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

    _evaluator(evaluator)  # validates the name
    cls_name = IMPORTANCE_EVALUATORS[evaluator]
    complete = _complete(results.study)
    out = Importances(evaluator=cls_name, values={}, n_trials=len(complete))
    if len(complete) < 2:
        out.note = f"importances need at least 2 complete trials; the study has {len(complete)}"
        return out
    if not _varying(complete):
        out.note = "no parameter varies across the complete trials"
        return out
    targets: dict[str, Any] = {}
    for i, name in enumerate(results.objective):
        targets[name] = (lambda t, i=i: t.values[i]) if results.multi_objective or i else None
    if gap not in targets and all(_metric_value(t, gap) is not None for t in complete):
        targets[gap] = lambda t: _metric_value(t, gap)
    notes = []
    for name, target in targets.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                values = optuna.importance.get_param_importances(
                    results.study, evaluator=_evaluator(evaluator, seed=seed), target=target)
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
    return _finite(res.statistic), _finite(res.pvalue)


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
        past, base = (("narrowed", "narrow") if down else ("widened", "widen")) if gap_positive else \
            (("lowered", "lower") if down else ("raised", "raise"))
        if g == "clear":
            part = f"higher {e.knob} {past} the gap (ρ = {e.rho_gap:.2f}, {e.n_trials} trials)"
        elif g == "tendency":
            part = (f"higher {e.knob} tended to {base} the gap (ρ = {e.rho_gap:.2f}, p = {e.p_gap:.2f}, "
                    f"{e.n_trials} trials)")
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
    text = (f"{e.knob}: the gap was smallest with {lo['value']!r} (median {lo['median_gap']:.3g}, {lo['n']} trials) "
            f"and largest with {hi['value']!r} (median {hi['median_gap']:.3g}, {hi['n']} trials)")
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

    metric = _metric_of(results)
    validation = validation or _validation_key(results, metric)
    val_name = _human(validation)
    higher_better = maximize(validation)
    method = (f"Spearman rank correlation over complete trials (numeric knobs); median per choice with a "
              f"Kruskal-Wallis test (categorical knobs). Gap = {gap}; validation = {validation}.")
    complete = _complete(results.study)
    out = GapAnalysis(gap=gap, validation=validation, method=method, effects=[])
    if not complete:
        out.note = "no complete trial"
        return out
    knobs = _varying(complete)
    if not knobs:
        out.note = "no parameter varies across the complete trials"
        return out
    reg = set(regularization_knobs(knobs))
    for knob in knobs:
        rows = [(t.params[knob], _metric_value(t, gap), _metric_value(t, validation), t.distributions[knob])
                for t in complete if knob in t.params]
        rows = [r for r in rows if r[1] is not None]
        categorical = type(rows[-1][3]).__name__ == "CategoricalDistribution" if rows else False
        e = KnobEffect(knob=knob, kind="categorical" if categorical else "numeric", n_trials=len(rows),
                       regularization=knob in reg)
        if categorical:
            groups: dict[Any, list[tuple[float, float | None]]] = {}
            for value, g, v, _ in rows:
                groups.setdefault(value, []).append((g, v))
            e.groups = []
            for value, items in groups.items():
                vals = [v for _, v in items if v is not None]
                e.groups.append({"value": value, "n": len(items), "median_gap": float(np.median([g for g, _ in items])),
                                 "median_val": float(np.median(vals)) if vals else None})
            samples = [[g for g, _ in items] for items in groups.values()]
            if len(samples) >= 2 and sum(len(s) for s in samples) > len(samples):
                from scipy.stats import kruskal

                try:
                    e.p_groups = _finite(kruskal(*samples).pvalue)
                except ValueError:  # every value identical
                    e.p_groups = None
            e.sentence = _categorical_sentence(e, val_name=val_name, higher_better=higher_better)
        else:
            if len(rows) < 3:
                e.sentence = f"{knob}: too few complete trials ({len(rows)}) for a rank correlation."
            else:
                x = [float(r[0]) for r in rows]
                e.rho_gap, e.p_gap = _rho(x, [r[1] for r in rows])
                paired = [(xi, r[2]) for xi, r in zip(x, rows) if r[2] is not None]
                e.rho_val, e.p_val = _rho([a for a, _ in paired], [b for _, b in paired])
                if len(set(x)) < 2:
                    e.sentence = f"{knob} took a single value in the complete trials: no effect to measure."
                else:
                    gap_positive = float(np.median([r[1] for r in rows])) >= 0
                    e.sentence = _numeric_sentence(e, val_name=val_name, higher_better=higher_better,
                                                   gap_positive=gap_positive)
        out.effects.append(e)
    out.effects.sort(key=lambda e: (not e.regularization, -(abs(e.rho_gap) if e.rho_gap is not None else -1.0)))
    return out


# -- Pareto front and selection --------------------------------------------------------------------

def pareto_front(results: StudyResults) -> list[int]:
    """Trial numbers on the Pareto front (``study.best_trials``) of a multi-objective study."""
    return sorted(t.number for t in results.study.best_trials)


def _tradeoff(results: StudyResults) -> tuple[str, bool, Any, str, Any]:
    """(validation name, maximize?, value getter, gap name, gap getter) for selecting on the front."""
    names = list(results.objective)
    dirs = [d.name for d in results.study.directions]
    val_i = next((i for i, n in enumerate(names) if not n.startswith("gap_")), None)
    gap_i = next((i for i, n in enumerate(names) if n.startswith("gap_")), None)
    if val_i is not None:
        val = (names[val_i], dirs[val_i] == "MAXIMIZE", lambda t, i=val_i: t.values[i])
    else:
        val = ("val_loss", False, lambda t: _metric_value(t, "val_loss"))
    if gap_i is not None:
        gap = (names[gap_i], lambda t, i=gap_i: t.values[i])
    else:
        gap = ("gap_loss", lambda t: _metric_value(t, "gap_loss"))
    return val[0], val[1], val[2], gap[0], gap[1]


def select_trial(results: StudyResults, rule: str = "knee", *, gap_bound: float | None = None) -> TrialReport:
    """Pick one trial on the Pareto front of a multi-objective study and store it as ``selected_trial``.

    The two axes of the choice are the first objective that is not a gap (``val_loss``,
    ``val_accuracy``, ...; else ``val_loss``) and the first gap objective (else ``gap_loss``).

    Rules:
        ``knee``: normalize both axes to [0, 1] over the front (oriented so lower is better) and take the
        front point farthest from the straight line joining the two extremes; with fewer than three
        points (or all on one line) the point closest to the ideal corner.
        ``gap_bound``: among front trials whose gap is at most ``gap_bound``, the best validation figure.

    Args:
        results: the study's results.
        rule: ``knee`` or ``gap_bound``. Defaults to `"knee"`.
        gap_bound: the largest gap allowed (``gap_bound`` rule only). Defaults to `None`.

    Returns:
        The selected :class:`~tuner.results.TrialReport`; ``results.best()`` returns it from then on.

    Raises:
        ConfigError: for a single-objective study, an unknown rule, a missing or misplaced bound, a study
            with no complete trial, or a bound no front trial meets.
    """
    study = results.study
    where = f"study {study.study_name!r}"
    if not results.multi_objective:
        raise ConfigError([Problem(where, "select", "applies to multi-objective studies only; this study has one "
                                   "objective", value=results.objective)])
    if rule not in SELECTION_RULES:
        raise ConfigError([Problem("--rule", "rule", f"must be one of {list(SELECTION_RULES)}", value=rule)])
    if rule == "gap_bound" and (gap_bound is None or not math.isfinite(gap_bound)):
        raise ConfigError([Problem("--gap-bound", "gap_bound", "must be a finite number for the gap_bound rule",
                                   value=gap_bound)])
    if rule != "gap_bound" and gap_bound is not None:
        raise ConfigError([Problem("--gap-bound", "gap_bound", f"applies to the gap_bound rule only, not {rule!r}",
                                   value=gap_bound)])
    front = sorted(study.best_trials, key=lambda t: t.number)
    if not front:
        raise ConfigError([Problem(where, "", "has no complete trial to select", value=results.counts())])
    val_name, maximize, val_of, gap_name, gap_of = _tradeoff(results)
    points = [(t, val_of(t), gap_of(t)) for t in front]
    points = [p for p in points if p[1] is not None and p[2] is not None]
    if not points:
        raise ConfigError([Problem(where, "", f"no front trial has both {val_name} and {gap_name}",
                                   value=[t.number for t in front])])
    if rule == "gap_bound":
        ok = [p for p in points if p[2] <= gap_bound]
        if not ok:
            smallest = min(points, key=lambda p: p[2])
            raise ConfigError([Problem("--gap-bound", "gap_bound",
                                       f"no trial on the Pareto front has {gap_name} <= {gap_bound}; the smallest "
                                       f"there is {smallest[2]:.4g} (trial {smallest[0].number})", value=gap_bound)])
        sign = -1.0 if maximize else 1.0
        chosen = min(ok, key=lambda p: (sign * p[1], p[2], p[0].number))[0]
    else:
        chosen = _knee([(p[0], -p[1] if maximize else p[1], p[2]) for p in points])
    study.set_user_attr("selected_trial", chosen.number)
    study.set_user_attr("selection", {"trial": chosen.number, "rule": rule, "gap_bound": gap_bound,
                                      "validation": val_name, "gap": gap_name,
                                      "front": [p[0].number for p in points]})
    return TrialReport.from_frozen(study.trials[chosen.number])


def _knee(points: Sequence[tuple[Any, float, float]]) -> Any:
    """The knee of a 2-D front of (trial, x, y), both to minimize."""
    xs = [p[1] for p in points]
    ys = [p[2] for p in points]

    def norm(v: float, lo: float, hi: float) -> float:
        return 0.0 if hi == lo else (v - lo) / (hi - lo)

    pts = [(p[0], norm(p[1], min(xs), max(xs)), norm(p[2], min(ys), max(ys))) for p in points]
    pts.sort(key=lambda p: (p[1], p[2], p[0].number))
    if len(pts) >= 3:
        (_, x1, y1), (_, x2, y2) = pts[0], pts[-1]
        length = math.hypot(x2 - x1, y2 - y1)
        if length > 0:
            dist = [(abs((y2 - y1) * x - (x2 - x1) * y + x2 * y1 - y2 * x1) / length, -t.number, t)
                    for t, x, y in pts[1:-1]]
            best = max(dist, key=lambda d: (d[0], d[1]))
            if best[0] > 1e-12:
                return best[2]
    return min(pts, key=lambda p: (math.hypot(p[1], p[2]), p[0].number))[0]


def clear_selection(results: StudyResults) -> None:
    """Forget a stored selection: ``best()`` goes back to the front trial with the best first objective."""
    results.study.set_user_attr("selected_trial", None)
    results.study.set_user_attr("selection", None)


# -- building the report ---------------------------------------------------------------------------

def _problems(results: StudyResults) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[int]] = {}
    for t in results.trials():
        if t.state in ("complete", "running", "waiting"):
            continue
        reason = t.fail_reason or "no reason recorded"
        if t.state == "pruned":
            reason = re.sub(r"\s*\(.*\)\s*$", "", reason)  # "pruned at epoch 2 (val_loss=...)" -> by epoch
        reason = reason if len(reason) <= 200 else reason[:197] + "..."
        groups.setdefault((t.state, reason), []).append(t.number)
    return [{"state": state, "reason": reason, "count": len(nums), "trials": nums}
            for (state, reason), nums in sorted(groups.items(), key=lambda kv: (kv[0][0], -len(kv[1])))]


def _no_complete_message(name: str, counts: dict[str, int], problems: list[dict[str, Any]]) -> str:
    total = sum(counts.values())
    if total == 0:
        return (f"study {name!r} has no trials yet: run `python -m tuner study --study {name}` to add some.")
    states = ", ".join(f"{n} {'failed' if s == 'fail' else s}" for s, n in counts.items() if n)
    reasons = "; ".join(f"{p['count']}x {p['reason']}" for p in problems[:5])
    text = f"study {name!r} has no complete trial ({states})"
    return text + (f": {reasons}." if reasons else ".")


def _row(t: TrialReport, results: StudyResults, varying: Sequence[str], front: set[int]) -> dict[str, Any]:
    return {"number": t.number, "state": t.state, "params": {k: t.params.get(k) for k in varying},
            "objective": dict(zip(results.objective, t.values or [])), "metrics": dict(t.metrics),
            "verdict": t.verdict, "best_epoch": t.best_epoch, "on_front": t.number in front,
            "mlflow_run_id": t.mlflow_run_id}


def _storage_url(study: Any) -> str:
    """The URL of an RDB storage (Optuna wraps it in a cache); empty for other storages."""
    storage = getattr(study, "_storage", None)
    for obj in (storage, getattr(storage, "_backend", None)):
        url = getattr(obj, "url", None)
        if isinstance(url, str):
            return url
    return ""


def build_report(results: StudyResults, *, storage: str | None = None, tracking_uri: str | None = None,
                 top: int = 10, evaluator: str = "fanova", seed: int = 0, gap: str = "gap_loss") -> StudyReport:
    """Gather a study's report from its Optuna storage (and MLflow store, for the runs).

    Args:
        results: from :func:`tuner.results.load_study_results`.
        storage: the Optuna storage URL the study was loaded from (shown, and used to find the MLflow
            store beside it). Defaults to the study's own storage URL when it has one.
        tracking_uri: the MLflow store; `None` finds it with :func:`resolve_tracking_uri`, ``"none"``
            leaves MLflow out. Defaults to `None`.
        top: how many complete trials the table lists. Defaults to `10`.
        evaluator: the Optuna importance evaluator (see :func:`param_importances`). Defaults to `"fanova"`.
        seed: the evaluator's seed. Defaults to `0`.
        gap: the gap analysed. Defaults to `"gap_loss"`.

    Returns:
        A :class:`StudyReport`. With no complete trial, ``best`` is `None` and ``message`` says why.
    """
    if top < 1:
        raise ConfigError([Problem("--top", "top", "must be a positive integer", value=top)])
    if not re.fullmatch(r"gap_[a-z0-9_]+", gap):
        raise ConfigError([Problem("--gap", "gap", "must name a gap metric such as gap_loss or gap_accuracy",
                                   value=gap)])
    _evaluator(evaluator)  # validates the name before any work
    study = results.study
    storage = storage or _storage_url(study)
    directions = [d.name.lower() for d in study.directions]
    metric = _metric_of(results)
    counts = results.counts()
    problems = _problems(results)
    complete = _complete(study)
    varying = _varying(complete)
    front = set(pareto_front(results)) if results.multi_objective else set()
    mlflow_info = _mlflow_context(results, resolve_tracking_uri(storage, tracking_uri))
    if tracking_uri == "none":
        mlflow_info["note"] = "MLflow left out (tracking URI 'none'): no learning curves or artifacts"
    reports = {t.number: t for t in results.trials()}
    sign = -1.0 if directions[0] == "maximize" else 1.0
    ranked = sorted(complete, key=lambda t: (t.number not in front, sign * t.values[0], t.number))
    rows = [_row(reports[t.number], results, varying, front) for t in ranked[:top]]
    best = test = test_note = message = None
    pareto = None
    if complete:
        b = results.best()
        selected = study.user_attrs.get("selected_trial") if results.multi_objective else None
        selection = study.user_attrs.get("selection") if selected is not None else None
        best = {**_row(b, results, list(b.params), front), "params": dict(b.params), "reason": b.reason,
                "suggestion": b.suggestion, "n_params": b.n_params, "wall_time": b.wall_time,
                "selected_by": (selection or {}).get("rule")}
        test = results.best_test()
        if test is None:
            scored = study.user_attrs.get("best_test_trial")
            test_note = ("the test split was not scored (tracking off, or the best model was not kept)"
                         if scored is None else
                         f"the test split was scored for trial {scored}, not for this trial: the test split is "
                         "scored once, for the trial that was best when the study ran")
        if results.multi_objective:
            note = None
            if selected is None:
                note = ("no trade-off selected: best is the front trial with the best first objective; choose one "
                        f"with `python -m tuner select {study.study_name} --rule knee`")
            pareto = {"front": sorted(front), "selected": selected, "selection": selection, "note": note}
    else:
        message = _no_complete_message(study.study_name, counts, problems)
    return StudyReport(
        study=study.study_name, storage=storage, objective=list(results.objective), directions=directions,
        dataset=dict(study.user_attrs.get("dataset_description") or {}), metric=metric, counts=counts,
        problems=problems, varying=varying, top=rows, best=best, test=test, test_note=test_note,
        importances=param_importances(results, evaluator=evaluator, seed=seed, gap=gap),
        gap_analysis=gap_analysis(results, gap=gap), pareto=pareto, mlflow=mlflow_info, message=message)


def make_plots(report: StudyReport, results: StudyResults, out_dir: str | Path, *, log: bool = True,
               evaluator: str = "fanova", seed: int = 0, plotlyjs: str = "inline") -> PlotSet:
    """Draw the study's plots and every trial's learning curves into ``out_dir`` and log them to MLflow.

    Study plots go to the study's latest parent run, learning curves to each trial's child run, under
    ``plots/``. Without an MLflow store the study plots are still drawn; the learning curves need the
    per-epoch histories kept in MLflow.

    Args:
        report: from :func:`build_report`; its ``plots`` are filled in.
        results: the same study's results.
        out_dir: the folder of the files (study plots at the top, ``trial-<n>/`` per trial).
        log: log the files as MLflow artifacts. Defaults to `True`.
        evaluator, seed: the importance evaluator of the importance plot (as the report's). Defaults to
            `"fanova"` and `0`.
        plotlyjs: ``"inline"`` or ``"cdn"`` for the HTML plots. Defaults to `"inline"`.
    """
    from tuner.report._plots import log_plots, study_plots, trial_plots

    out_dir = Path(out_dir)
    selected = None
    label = None
    if report.pareto is not None and report.best is not None:
        selected = report.best["number"]
        rule = (report.pareto.get("selection") or {}).get("rule")
        label = f"selected trial {selected} ({rule})" if rule else f"best trial {selected} (no trade-off selected)"
    plots = study_plots(results, out_dir, evaluator=_evaluator(evaluator, seed=seed),
                        evaluator_name=report.importances.evaluator, selected=selected, selected_label=label,
                        gap=report.gap_analysis.gap, plotlyjs=plotlyjs)
    uri = report.mlflow.get("tracking_uri")
    client = None
    if uri and report.mlflow.get("experiment_id"):
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        plots.extend(trial_plots(results, client, out_dir, metric=report.metric))
    else:
        plots.skipped["learning_curves"] = report.mlflow.get("note") or "no MLflow store"
    if log and client is not None:
        log_plots(client, plots, parent_run_id=report.mlflow.get("parent_run_id"))
    report.plots = plots
    return plots


# -- terminal --------------------------------------------------------------------------------------

def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table_columns(report: StudyReport) -> list[tuple[str, Any]]:
    """(header, getter) pairs of the top-trials table."""
    m = report.metric
    cols: list[tuple[str, Any]] = [("trial", lambda r: r["number"])]
    if report.pareto is not None:
        cols.append(("front", lambda r: "*" if r["on_front"] else ""))
    cols += [(p, lambda r, p=p: r["params"].get(p)) for p in report.varying]
    cols += [(o, lambda r, o=o: r["objective"].get(o)) for o in report.objective]
    keys = ["train_loss", "val_loss"] + ([f"train_{m}", f"val_{m}"] if m else []) + ["gap_loss"] + \
        ([f"gap_{m}"] if m else [])
    cols += [(k, lambda r, k=k: r["metrics"].get(k)) for k in keys if k not in report.objective]
    cols += [("verdict", lambda r: r["verdict"]), ("epoch", lambda r: r["best_epoch"]),
             ("state", lambda r: r["state"])]
    return cols


def print_report(report: StudyReport, *, file: Any = None) -> None:
    """Print the report as rich tables (plain text when the output is not a terminal)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def cell(value: Any, head: str = "") -> Text:
        style = {"overfitting": "red", "underfitting": "blue", "good_fit": "green"}.get(str(value), "") \
            if head == "verdict" else ""
        return Text(_fmt(value), style=style)

    def heading(text: str) -> None:
        console.print(Text(text, style="bold"))

    out = file or sys.stdout
    console = Console(file=out, width=None if out.isatty() else 200, highlight=False, soft_wrap=False)
    ds = report.dataset
    dataset = f"{ds.get('name')} ({ds.get('task')})" if ds else "unknown dataset"
    objective = ", ".join(f"{o} ({d})" for o, d in zip(report.objective, report.directions))
    heading(f"Study {report.study!r}: {dataset}, objective {objective}")
    c = report.counts
    console.print(Text(f"Trials: {c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, "
                       f"{c.get('fail', 0)} failed" + (f", {c.get('running', 0)} running" if c.get("running") else "")))
    if report.problems:
        heading("Trials that did not complete")
        t = Table()
        for col in ("state", "count", "reason", "trials"):
            t.add_column(col)
        for p in report.problems:
            t.add_row(cell(p["state"]), cell(p["count"]), cell(p["reason"]),
                      cell(", ".join(map(str, p["trials"][:12])) + (" ..." if len(p["trials"]) > 12 else "")))
        console.print(t)
    if not report.ok:
        return
    cols = _table_columns(report)
    heading(f"Top {len(report.top)} complete trials by {report.objective[0]}"
            + (" (Pareto front first)" if report.pareto is not None else ""))
    t = Table()
    for head, _ in cols:
        t.add_column(head, justify="left" if head in ("verdict", "state", "front") else "right")
    for r in report.top:
        t.add_row(*[cell(get(r), head) for head, get in cols])
    console.print(t)
    b = report.best
    sel = f", selected by the {b['selected_by']} rule" if b.get("selected_by") else ""
    heading(f"Best trial {b['number']}{sel}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in b["objective"].items())
            + f"; verdict {b['verdict']}, chosen epoch {b['best_epoch']}")
    lines = []
    if b.get("reason"):
        lines.append(f"  {b['reason']} Suggestion: {b['suggestion']}.")
    lines.append("  params: " + ", ".join(f"{k}={_fmt(v)}" for k, v in b["params"].items()))
    if report.test:
        lines.append("  test split: " + ", ".join(f"{k}={_fmt(v)}" for k, v in report.test.items()))
    else:
        lines.append(f"  test split: {report.test_note}")
    if report.pareto is not None:
        p = report.pareto
        lines.append(f"Pareto front: trials {', '.join(map(str, p['front']))}"
                     + (f"; selected trial {p['selected']} ({p['selection']['rule']})" if p.get("selection")
                        else f"; {p['note']}"))
    for line in lines:
        console.print(Text(line))
    lines = []
    imp = report.importances
    if imp.values:
        targets = list(imp.values)
        params = list(dict.fromkeys(k for v in imp.values.values() for k in v))
        heading(f"Parameter importances ({imp.evaluator}, {imp.n_trials} complete trials)")
        t = Table()
        t.add_column("parameter")
        for name in targets:
            t.add_column(name, justify="right")
        for p in params:
            t.add_row(cell(p), *[Text(_fmt(imp.values[n].get(p), 3)) for n in targets])
        console.print(t)
    if imp.note:
        lines.append(f"Parameter importances ({imp.evaluator}): {imp.note}")
    for line in lines:
        console.print(Text(line))
    lines = []
    ga = report.gap_analysis
    heading(f"Gap analysis ({ga.gap} against each knob; {ga.validation} for validation performance)")
    if ga.note:
        lines.append(f"  {ga.note}")
    lines += [f"  - {e.sentence}" for e in ga.effects]
    mf = report.mlflow
    if mf.get("experiment_id"):
        lines.append(f"MLflow: {mf['tracking_uri']} experiment {mf['experiment_id']}, study run {mf['parent_run_id']}")
    elif mf.get("note"):
        lines.append(f"MLflow: {mf['note']}")
    if report.plots.files:
        folders = sorted({str(f.png.parent if f.trial is None else f.png.parent.parent) for f in report.plots.files})
        logged = sum(1 for f in report.plots.files if f.artifacts)
        lines.append(f"Plots: {len(report.plots.files)} written to {', '.join(folders)}; {logged} logged to MLflow")
    lines += [f"  plot {name} left out: {why}" for name, why in report.plots.skipped.items()
              if not name.startswith("trial-")]
    for line in lines:
        console.print(Text(line))


# -- HTML ------------------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px 32px;color:#222;background:#fff}
h1{margin:0 0 4px 0;font-size:26px} h2{margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px;font-size:20px}
.sub{color:#555;margin:0 0 12px 0} .cards{display:flex;gap:14px;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:160px}
.card b{display:block;font-size:20px} table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f3f3f3}
td.l,th.l{text-align:left} .grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:18px}
figure{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:8px;background:#fff}
figcaption{font-weight:600;margin-bottom:6px} figure img{max-width:100%;height:auto;display:block}
.overfitting{color:#d62728;font-weight:600} .underfitting{color:#1f77b4;font-weight:600}
.good_fit{color:#2ca02c;font-weight:600} li{margin:4px 0} .note{color:#777} figure.wide{grid-column:1/-1}
"""
_WIDE = ("gap_vs_regularization", "parallel_coordinate", "slice")
_ORDER = ("pareto_front", "optimization_history", "param_importances", "param_importances_gap", *_WIDE)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: Sequence[str] = ()) -> str:
    head = "".join(f'<th class="{"l" if h in left else ""}">{html.escape(str(h))}</th>' for h in headers)
    body = []
    for row in rows:
        cells = []
        for h, v in zip(headers, row):
            cls = ["l"] if h in left else []
            if h == "verdict" and v:
                cls.append(str(v))
            cells.append(f'<td class="{" ".join(cls)}">{html.escape(_fmt(v))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_html(report: StudyReport, path: str | Path, *, plotlyjs: str = "inline") -> Path:
    """Write the report as one self-contained HTML page: PNGs embedded, Optuna's plotly plots interactive.

    Args:
        report: a report, with plots from :func:`make_plots` (a report without plots has tables only).
        path: the HTML file.
        plotlyjs: ``"inline"`` embeds plotly.js once (works offline); ``"cdn"`` loads it from the CDN.
            Defaults to `"inline"`.

    Returns:
        The path written.
    """
    import plotly.graph_objects as go
    import plotly.io as pio

    if plotlyjs not in ("inline", "cdn"):
        raise ValueError(f"`plotlyjs` must be 'inline' or 'cdn', but got {plotlyjs=!r}.")
    path = Path(path)
    e = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>tuner report: {e(report.study)}"
             f"</title><style>{_CSS}</style></head><body>"]
    ds = report.dataset
    parts.append(f"<h1>Study {e(report.study)}</h1><p class='sub'>{e(str(ds.get('name', '?')))} "
                 f"({e(str(ds.get('task', '?')))}) &middot; objective "
                 f"{e(', '.join(f'{o} ({d})' for o, d in zip(report.objective, report.directions)))} &middot; "
                 f"storage {e(report.storage)}</p>")
    c = report.counts
    cards = [("complete", c.get("complete", 0)), ("pruned", c.get("pruned", 0)), ("failed", c.get("fail", 0))]
    b = report.best
    if b:
        obj0 = report.objective[0]
        cards.append((f"best trial ({obj0})", f"#{b['number']}: {_fmt(b['objective'].get(obj0))}"))
        if report.test:
            cards += [(k, _fmt(v)) for k, v in report.test.items()]
    parts.append("<div class='cards'>" + "".join(f"<div class='card'>{e(str(k))}<b>{e(str(v))}</b></div>"
                                                for k, v in cards) + "</div>")
    if report.message:
        parts.append(f"<p><b>{e(report.message)}</b></p>")
    if b:
        sel = f", selected by the {b['selected_by']} rule" if b.get("selected_by") else ""
        parts.append(f"<h2>Best trial {b['number']}{e(sel)}</h2><p>Verdict <span class='{e(str(b['verdict']))}'>"
                     f"{e(str(b['verdict']))}</span> at epoch {e(_fmt(b['best_epoch']))}. {e(b.get('reason') or '')} "
                     f"Suggestion: {e(b.get('suggestion') or '-')}.</p>")
        parts.append(_html_table(["parameter", "value"], list(b["params"].items()), left=["parameter", "value"]))
        if not report.test:
            parts.append(f"<p class='note'>Test split: {e(report.test_note or '-')}</p>")
        if report.pareto is not None:
            p = report.pareto
            parts.append(f"<p>Pareto front: trials {e(', '.join(map(str, p['front'])))}. "
                         + (e(f"Selected trial {p['selected']} by the {p['selection']['rule']} rule.")
                            if p.get("selection") else e(p.get("note") or "")) + "</p>")
    ga = report.gap_analysis
    parts.append(f"<h2>Gap analysis</h2><p class='note'>{e(ga.method)}</p>")
    if ga.note:
        parts.append(f"<p class='note'>{e(ga.note)}</p>")
    parts.append("<ul>" + "".join(f"<li>{e(x.sentence)}</li>" for x in ga.effects) + "</ul>")
    study_files = sorted((f for f in report.plots.files if f.trial is None),
                         key=lambda f: (f.name in _WIDE, _ORDER.index(f.name) if f.name in _ORDER else len(_ORDER)))
    narrow = [f.name for f in study_files if f.name not in _WIDE]
    wide_names = set(_WIDE) | ({narrow[-1]} if len(narrow) % 2 else set())  # no hole in the two-column grid
    if study_files:
        parts.append("<h2>Study plots</h2><div class='grid'>")
        first = True
        for f in study_files:
            if f.figure is not None:
                include = (True if plotlyjs == "inline" else "cdn") if first else False
                figure = go.Figure(f.figure).update_layout(width=None, height=None, autosize=True)
                body = pio.to_html(figure, full_html=False, include_plotlyjs=include, default_height="440px",
                                   default_width="100%", config={"displaylogo": False, "responsive": True})
                first = False
            else:
                body = _img(f.png, f.title)
            wide = " class='wide'" if f.name in wide_names else ""
            parts.append(f"<figure id='plot-{e(f.name)}'{wide}><figcaption>{e(f.title)}</figcaption>{body}</figure>")
        parts.append("</div>")
    skipped = {k: v for k, v in report.plots.skipped.items() if not k.startswith("trial-")}
    if skipped:
        parts.append("<p class='note'>" + "<br>".join(e(f"{k} left out: {v}") for k, v in skipped.items()) + "</p>")
    if report.top:
        cols = _table_columns(report)
        parts.append(f"<h2>Top {len(report.top)} complete trials</h2>")
        parts.append(_html_table([h for h, _ in cols], [[get(r) for _, get in cols] for r in report.top],
                                 left=["verdict", "state", "front"]))
    imp = report.importances
    parts.append(f"<h2>Parameter importances ({e(imp.evaluator)})</h2>")
    if imp.values:
        targets = list(imp.values)
        params = list(dict.fromkeys(k for v in imp.values.values() for k in v))
        parts.append(_html_table(["parameter", *targets], [[p, *[imp.values[t].get(p) for t in targets]]
                                                           for p in params], left=["parameter"]))
    if imp.note:
        parts.append(f"<p class='note'>{e(imp.note)}</p>")
    if report.problems:
        parts.append("<h2>Trials that did not complete</h2>")
        parts.append(_html_table(["state", "count", "reason", "trials"],
                                 [[p["state"], p["count"], p["reason"], ", ".join(map(str, p["trials"]))]
                                  for p in report.problems], left=["state", "reason", "trials"]))
    shown = [r["number"] for r in report.top]
    if b and b["number"] not in shown:
        shown.insert(0, b["number"])
    curves = {f.trial: f for f in report.plots.files if f.trial is not None}
    if curves:
        parts.append("<h2>Learning curves</h2><div class='grid'>")
        for n in shown:
            if n in curves:
                parts.append(f"<figure id='curves-{n}'><figcaption>{e(curves[n].title)}</figcaption>"
                             f"{_img(curves[n].png, curves[n].title)}</figure>")
        parts.append("</div>")
    mf = report.mlflow
    if mf.get("experiment_id"):
        parts.append(f"<p class='note'>MLflow: {e(str(mf['tracking_uri']))}, experiment {e(str(mf['experiment_id']))}, "
                     f"study run {e(str(mf['parent_run_id']))}.</p>")
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def report_json(report: StudyReport) -> str:
    """The report as JSON text (what ``--json`` prints)."""
    return json.dumps(report.to_dict(), indent=2, default=str)
