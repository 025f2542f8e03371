"""Over/underfitting verdicts from honest train and validation figures.

The rules (all thresholds are fields of :class:`DiagnosisRules`):

1. **underfitting** when the model barely beats a trivial baseline *on the data it trained on*: its
   skill on the training split, ``(train_score - baseline) / (perfect - baseline)``, is below
   ``underfit_skill``. The baseline is the majority class (accuracy) for classification and the mean
   predictor for regression (skill is then R² of the training split).
2. **overfitting** when, at the chosen epoch, the metric gap (``train_accuracy - val_accuracy``) exceeds
   ``overfit_gap`` for classification, or the validation loss exceeds the training loss by more than
   ``overfit_loss_ratio`` (relative) for regression; or, when the final epoch is the chosen one, the
   validation loss rose for ``rising_epochs`` epochs in a row while the training loss fell.
3. **good_fit** otherwise.

Each verdict carries a one-sentence reason and a suggestion drawn from the course notes this product
grew from (more regularization or less capacity against overfitting; more capacity, longer training or
less regularization against underfitting).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Diagnosis", "DiagnosisRules", "diagnose", "baseline_score", "VERDICTS"]

VERDICTS = ("overfitting", "underfitting", "good_fit")

SUGGESTIONS = {
    "overfitting": "raise dropout or L2 (or add batch normalization), shrink the layers, stop earlier, "
    "or get more training data",
    "underfitting": "add layers or units, train longer (more epochs or a higher learning rate), "
    "or lower dropout and L1/L2",
    "good_fit": "keep this configuration and confirm it once on the test split",
}


@dataclasses.dataclass(frozen=True)
class DiagnosisRules:
    """Thresholds of the verdict rules.

    Args:
        underfit_skill: training-split skill below which a model underfits. Defaults to `0.5`.
        overfit_gap: classification metric gap (train minus validation accuracy) above which a model
            overfits. Defaults to `0.05`.
        overfit_loss_ratio: for regression, ``(val_loss - train_loss) / val_loss`` above which a model
            overfits. Defaults to `0.3`.
        rising_epochs: epochs of rising validation loss with falling training loss that mark
            overfitting when training ran to the last epoch. Defaults to `3`.
    """

    underfit_skill: float = 0.5
    overfit_gap: float = 0.05
    overfit_loss_ratio: float = 0.3
    rising_epochs: int = 3


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    verdict: str
    reason: str
    suggestion: str
    train_skill: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def baseline_score(y_train: np.ndarray, task: str) -> float:
    """The trivial baseline's score on the training split (majority-class accuracy, or the mean predictor's MAE)."""
    y = np.asarray(y_train)
    if task == "regression":
        y = y.reshape(-1).astype("float64")
        return float(np.mean(np.abs(y - y.mean())))
    labels = y.reshape(-1) if (y.ndim == 1 or y.shape[-1] == 1) else np.argmax(y, axis=-1)
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / counts.sum())


def _rising_tail(val: Sequence[float], train: Sequence[float]) -> int:
    n = 0
    for i in range(len(val) - 1, 0, -1):
        if val[i] > val[i - 1] and train[i] <= train[i - 1]:
            n += 1
        else:
            break
    return n


def diagnose(
    *,
    task: str,
    chosen: Mapping[str, float],
    history: Mapping[str, Sequence[float]],
    chosen_epoch: int,
    y_train: np.ndarray,
    rules: DiagnosisRules | None = None,
) -> Diagnosis:
    """Give a verdict for one trained model.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        chosen: honest metrics at the chosen epoch (``train_loss``, ``val_loss``, ``train_accuracy``, ...).
        history: honest per-epoch metrics.
        chosen_epoch: the 1-based epoch whose weights the model keeps.
        y_train: training targets (for the trivial baseline).
        rules: thresholds. Defaults to `DiagnosisRules()`.
    """
    rules = rules or DiagnosisRules()
    if task == "regression":
        var = float(np.var(np.asarray(y_train, dtype="float64")))
        mse = float(chosen.get("train_rmse", 0.0)) ** 2
        skill = 1.0 - mse / var if var > 0 else 0.0
        baseline_text = "the mean predictor"
        skill_text = f"training R² is {skill:.2f}"
    else:
        base = baseline_score(y_train, task)
        acc = float(chosen["train_accuracy"])
        skill = (acc - base) / (1.0 - base) if base < 1 else 0.0
        baseline_text = f"the majority class ({base:.0%})"
        skill_text = f"training accuracy is {acc:.1%}"

    if skill < rules.underfit_skill:
        reason = (
            f"{skill_text}, too close to {baseline_text}: the model does not fit even the data it "
            f"trained on (skill {skill:.2f} < {rules.underfit_skill})."
        )
        return Diagnosis("underfitting", reason, SUGGESTIONS["underfitting"], skill)

    if task == "regression":
        val_loss, train_loss = float(chosen["val_loss"]), float(chosen["train_loss"])
        ratio = (val_loss - train_loss) / val_loss if val_loss > 0 else 0.0
        over = ratio > rules.overfit_loss_ratio
        gap_text = (
            f"validation loss {val_loss:.4g} is {ratio:.0%} above training loss {train_loss:.4g} "
            f"(threshold {rules.overfit_loss_ratio:.0%})"
        )
    else:
        gap = float(chosen["train_accuracy"]) - float(chosen["val_accuracy"])
        over = gap > rules.overfit_gap
        gap_text = (
            f"training accuracy {chosen['train_accuracy']:.1%} vs validation {chosen['val_accuracy']:.1%}: "
            f"a gap of {gap:.1%} (threshold {rules.overfit_gap:.0%})"
        )
    if over:
        return Diagnosis("overfitting", f"At epoch {chosen_epoch}, {gap_text}.", SUGGESTIONS["overfitting"], skill)

    val_hist, train_hist = list(history.get("val_loss", [])), list(history.get("train_loss", []))
    if chosen_epoch == len(val_hist):
        rising = _rising_tail(val_hist, train_hist)
        if rising >= rules.rising_epochs:
            reason = (
                f"Validation loss rose for the last {rising} epochs while training loss fell "
                f"(threshold {rules.rising_epochs})."
            )
            return Diagnosis("overfitting", reason, SUGGESTIONS["overfitting"], skill)
    return Diagnosis("good_fit", f"At epoch {chosen_epoch}, {gap_text}; {skill_text}.", SUGGESTIONS["good_fit"], skill)
