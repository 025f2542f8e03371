"""Choosing one trade-off of a multi-objective study: a trial on its Pareto front, by a rule.

:func:`select_trial` picks it (the knee point, or the best validation figure with the gap under a bound)
and stores it in the study's record, so that :meth:`tuner.study.StudyResults.best` returns it from then
on; :func:`clear_selection` forgets it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from tuner.errors import ConfigError, NoCompleteTrial, Problem
from tuner.metrics import maximizes
from tuner.report._trials import objective_value, trial_value
from tuner.study import StudyRecord, StudyResults, TrialReport

__all__ = ["SELECTION_RULES", "pareto_front", "select_trial", "clear_selection"]

SELECTION_RULES = ("knee", "gap_bound")


def pareto_front(results: StudyResults) -> list[int]:
    """Trial numbers on the Pareto front (``study.best_trials``) of a multi-objective study."""
    return sorted(t.number for t in results.study.best_trials)


def _tradeoff(results: StudyResults) -> tuple[str, bool, Any, str, Any]:
    """(validation name, maximize?, value getter, gap name, gap getter) for selecting on the front."""
    names = list(results.objective)
    dirs = results.study.directions
    val_i = next((i for i, n in enumerate(names) if not n.startswith("gap_")), None)
    gap_i = next((i for i, n in enumerate(names) if n.startswith("gap_")), None)
    val: tuple[str, bool, Callable[[Any], float | None]]
    gap: tuple[str, Callable[[Any], float | None]]
    if val_i is not None:
        val = (names[val_i], maximizes(dirs[val_i]), objective_value(val_i))
    else:
        val = ("val_loss", False, lambda t: trial_value(t, "val_loss"))
    if gap_i is not None:
        gap = (names[gap_i], objective_value(gap_i))
    else:
        gap = ("gap_loss", lambda t: trial_value(t, "gap_loss"))
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
        The selected :class:`~tuner.study.TrialReport`; ``results.best()`` returns it from then on.

    Raises:
        ConfigError: for a single-objective study, an unknown rule, a missing or misplaced bound, a study
            with no complete trial, or a bound no front trial meets.
    """
    study = results.study
    where = f"study {study.study_name!r}"
    if not results.multi_objective:
        raise ConfigError(
            [
                Problem(
                    where,
                    "select",
                    "applies to multi-objective studies only; this study has one objective",
                    value=results.objective,
                )
            ]
        )
    if rule not in SELECTION_RULES:
        raise ConfigError([Problem("--rule", "rule", f"must be one of {list(SELECTION_RULES)}", value=rule)])
    if rule == "gap_bound" and (gap_bound is None or not math.isfinite(gap_bound)):
        raise ConfigError(
            [Problem("--gap-bound", "gap_bound", "must be a finite number for the gap_bound rule", value=gap_bound)]
        )
    if rule != "gap_bound" and gap_bound is not None:
        raise ConfigError(
            [Problem("--gap-bound", "gap_bound", f"applies to the gap_bound rule only, not {rule!r}", value=gap_bound)]
        )
    front = sorted(study.best_trials, key=lambda t: t.number)
    if not front:
        raise NoCompleteTrial([Problem(where, "", "has no complete trial to select", value=results.counts())])
    val_name, maximize, val_of, gap_name, gap_of = _tradeoff(results)
    points = [(t, val_of(t), gap_of(t)) for t in front]
    points = [p for p in points if p[1] is not None and p[2] is not None]
    if not points:
        raise ConfigError(
            [Problem(where, "", f"no front trial has both {val_name} and {gap_name}", value=[t.number for t in front])]
        )
    if rule == "gap_bound":
        ok = [p for p in points if p[2] <= gap_bound]
        if not ok:
            smallest = min(points, key=lambda p: p[2])
            raise ConfigError(
                [
                    Problem(
                        "--gap-bound",
                        "gap_bound",
                        f"no trial on the Pareto front has {gap_name} <= {gap_bound}; the smallest "
                        f"there is {smallest[2]:.4g} (trial {smallest[0].number})",
                        value=gap_bound,
                    )
                ]
            )
        sign = -1.0 if maximize else 1.0  # (maximize: maximizes() of the first direction, above)
        chosen = min(ok, key=lambda p: (sign * p[1], p[2], p[0].number))[0]
    else:
        chosen = _knee([(p[0], -p[1] if maximize else p[1], p[2]) for p in points])
    StudyRecord(study).set_selection(
        chosen.number,
        {
            "trial": chosen.number,
            "rule": rule,
            "gap_bound": gap_bound,
            "validation": val_name,
            "gap": gap_name,
            "front": [p[0].number for p in points],
        },
    )
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
            dist = [
                (abs((y2 - y1) * x - (x2 - x1) * y + x2 * y1 - y2 * x1) / length, -t.number, t) for t, x, y in pts[1:-1]
            ]
            best = max(dist, key=lambda d: (d[0], d[1]))
            if best[0] > 1e-12:
                return best[2]
    return min(pts, key=lambda p: (math.hypot(p[1], p[2]), p[0].number))[0]


def clear_selection(results: StudyResults) -> None:
    """Forget a stored selection: ``best()`` goes back to the front trial with the best first objective."""
    StudyRecord(results.study).set_selection(None, None)
