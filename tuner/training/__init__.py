"""The training stage: one run compiled and fitted from resolved parameters, its honest gap and its verdict."""

from __future__ import annotations

from tuner.training._cv import (
    CV_AUTO_FOLDS,
    CV_AUTO_ROWS,
    auto_folds,
    check_folds,
    cross_validate,
    cv_folds,
    pool,
    refit,
)
from tuner.training._diagnosis import VERDICTS, Diagnosis, DiagnosisRules, baseline_score, diagnose
from tuner.training._gap import HonestGap, evaluate_split, metric_functions
from tuner.training._programs import PROGRAM_WORDS, programs_so_far
from tuner.training._reuse import clear_after_trial
from tuner.training._train import (
    ModelBuilder,
    TrainResult,
    average_results,
    check_user_model,
    evaluate_test,
    prepare_data,
    train_model,
    user_compiled,
)

__all__ = [
    "CV_AUTO_FOLDS",
    "CV_AUTO_ROWS",
    "Diagnosis",
    "DiagnosisRules",
    "HonestGap",
    "PROGRAM_WORDS",
    "ModelBuilder",
    "TrainResult",
    "VERDICTS",
    "auto_folds",
    "average_results",
    "baseline_score",
    "check_folds",
    "check_user_model",
    "clear_after_trial",
    "cross_validate",
    "cv_folds",
    "diagnose",
    "evaluate_split",
    "evaluate_test",
    "metric_functions",
    "pool",
    "prepare_data",
    "programs_so_far",
    "refit",
    "train_model",
    "user_compiled",
]
