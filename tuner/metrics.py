"""Metric names: a task's headline metric, which way each metric is better, and trials ranked by it.

One definition for every stage: the study's objective directions, the report's sentences, the honest
gap's sign and every ranking of trials by their first objective (the summary, the report, the winner kept,
the top K retrained, refine's top fraction) all ask here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = ["HIGHER_IS_BETTER", "headline_metric", "direction", "maximize", "maximizes", "ranked", "base_name"]

_T = TypeVar("_T")

HIGHER_IS_BETTER = {
    "accuracy": True,
    "mae": False,
    "mse": False,
    "rmse": False,
    "loss": False,
    # Keras's own metrics a user's compile may name (their default names)
    "acc": True,
    "binary_accuracy": True,
    "categorical_accuracy": True,
    "sparse_categorical_accuracy": True,
    "top_k_categorical_accuracy": True,
    "sparse_top_k_categorical_accuracy": True,
    "auc": True,
    "precision": True,
    "recall": True,
    "f1_score": True,
    "fbeta_score": True,
    "r2_score": True,
    "true_positives": True,
    "true_negatives": True,
    "false_positives": False,
    "false_negatives": False,
    "mean_squared_error": False,
    "mean_absolute_error": False,
    "root_mean_squared_error": False,
    "mean_absolute_percentage_error": False,
    "crossentropy": False,
}


def headline_metric(task: str) -> str:
    """The metric a task is judged by besides its loss: ``accuracy`` (classification) or ``mae`` (regression)."""
    return "mae" if task == "regression" else "accuracy"


def base_name(metric: str) -> str:
    """``val_accuracy`` -> ``accuracy``; ``gap_loss`` -> ``loss``; other names are returned unchanged."""
    for prefix in ("val_", "train_", "gap_", "test_", "best_", "final_"):
        if metric.startswith(prefix):
            return metric[len(prefix) :]
    return metric


def direction(metric: str) -> str:
    """``maximize`` for accuracy-like metrics, ``minimize`` for losses, errors and every gap."""
    if metric.startswith("gap_"):
        return "minimize"
    return "maximize" if HIGHER_IS_BETTER.get(base_name(metric), False) else "minimize"


def maximize(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better."""
    return direction(metric) == "maximize"


def maximizes(study_direction: Any) -> bool:
    """Whether a direction means larger is better, in any of its spellings: ``"maximize"`` (tuner's),
    ``"MAXIMIZE"`` or an ``optuna.study.StudyDirection`` (Optuna's)."""
    return str(getattr(study_direction, "name", study_direction)).lower() == "maximize"


def ranked(trials: Iterable[_T], study_direction: Any, *, objective: int = 0) -> list[_T]:
    """Trials (anything with ``values`` and ``number``: Optuna's frozen trials, tuner's trial reports) best first
    by objective ``objective`` (the first by default) in ``study_direction``; ties go to the earlier trial."""
    sign = -1.0 if maximizes(study_direction) else 1.0
    return sorted(trials, key=lambda t: (sign * t.values[objective], t.number))  # type: ignore[attr-defined]
