"""What the report reads off a study's Optuna trials: the complete ones, the knobs that vary, a trial's figures."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from tuner.metrics import headline_metric
from tuner.study import StudyRecord, read_trial

__all__ = ["finite", "complete_trials", "varying_params", "trial_value", "objective_value", "study_metric"]


def finite(value: Any) -> float | None:
    """``value`` as a finite float, else `None`."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def complete_trials(study: Any) -> list[Any]:
    """The complete ``FrozenTrial`` objects of an Optuna study."""
    return [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]


def varying_params(trials: Sequence[Any]) -> list[str]:
    """Parameters whose distribution is not a single value, in first-seen order."""
    seen: dict[str, None] = {}
    for t in trials:
        for name, dist in t.distributions.items():
            if not dist.single():
                seen.setdefault(name, None)
    return list(seen)


def trial_value(trial: Any, key: str) -> float | None:
    """A figure of a trial (``val_loss``, ``gap_loss``, ...) from its honest metrics; `None` when not finite."""
    value = read_trial(trial).metrics.get(key)
    if value is None:
        value = trial.user_attrs.get(key)  # the gaps also stand at the top level (for Optuna's dashboard)
    return finite(value)


def objective_value(i: int) -> Callable[[Any], float]:
    """A getter of a trial's ``i``-th objective value (``trial.values[i]``), as Optuna's ``target`` takes it."""

    def value(trial: Any) -> float:
        return trial.values[i]

    return value


def study_metric(results: Any) -> str | None:
    """The study's headline metric (``accuracy``, ``mae``, ...): from its dataset's task, else its trials."""
    desc = StudyRecord(results.study).dataset_description
    if desc.get("task"):
        return headline_metric(desc["task"])
    for t in results.study.get_trials(deepcopy=False):
        for k in read_trial(t).metrics:
            if k.startswith("val_") and k != "val_loss":
                return k[4:]
    return None
