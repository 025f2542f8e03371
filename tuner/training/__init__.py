"""The training stage: one run compiled and fitted from resolved parameters, its honest gap and its verdict."""

from __future__ import annotations

from tuner.training._diagnosis import VERDICTS, Diagnosis, DiagnosisRules, baseline_score, diagnose
from tuner.training._gap import HonestGap, evaluate_split, metric_functions
from tuner.training._train import (ModelBuilder, TrainResult, average_results, check_user_model, evaluate_test, prepare_data, train_model,
                                   user_compiled)

__all__ = [
    "Diagnosis",
    "DiagnosisRules",
    "HonestGap",
    "ModelBuilder",
    "TrainResult",
    "VERDICTS",
    "average_results",
    "baseline_score",
    "check_user_model",
    "diagnose",
    "evaluate_split",
    "evaluate_test",
    "metric_functions",
    "prepare_data",
    "train_model",
    "user_compiled",
]
