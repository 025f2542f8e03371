"""Metric names: a task's headline metric and which way each metric is better.

One definition for every stage: the study's objective directions, the report's sentences and the honest
gap's sign all ask here.
"""

from __future__ import annotations

__all__ = ["HIGHER_IS_BETTER", "headline_metric", "direction", "maximize", "base_name"]

HIGHER_IS_BETTER = {"accuracy": True, "mae": False, "mse": False, "rmse": False, "loss": False,
                    # Keras's own metrics a user's compile may name (their default names)
                    "acc": True, "binary_accuracy": True, "categorical_accuracy": True,
                    "sparse_categorical_accuracy": True, "top_k_categorical_accuracy": True,
                    "sparse_top_k_categorical_accuracy": True, "auc": True, "precision": True, "recall": True,
                    "f1_score": True, "fbeta_score": True, "r2_score": True, "true_positives": True,
                    "true_negatives": True, "false_positives": False, "false_negatives": False,
                    "mean_squared_error": False, "mean_absolute_error": False, "root_mean_squared_error": False,
                    "mean_absolute_percentage_error": False, "crossentropy": False}


def headline_metric(task: str) -> str:
    """The metric a task is judged by besides its loss: ``accuracy`` (classification) or ``mae`` (regression)."""
    return "mae" if task == "regression" else "accuracy"


def base_name(metric: str) -> str:
    """``val_accuracy`` -> ``accuracy``; ``gap_loss`` -> ``loss``; other names are returned unchanged."""
    for prefix in ("val_", "train_", "gap_", "test_", "best_", "final_"):
        if metric.startswith(prefix):
            return metric[len(prefix):]
    return metric


def direction(metric: str) -> str:
    """``maximize`` for accuracy-like metrics, ``minimize`` for losses, errors and every gap."""
    if metric.startswith("gap_"):
        return "minimize"
    return "maximize" if HIGHER_IS_BETTER.get(base_name(metric), False) else "minimize"


def maximize(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better."""
    return direction(metric) == "maximize"
