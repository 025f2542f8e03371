"""tuner: hyperparameter tuning for Keras with an honest generalization gap.

Declare a search space, run an Optuna study that trains real Keras models, inspect every trial in
MLflow, and read each trial's generalization gap and over/underfitting verdict.

The public API is imported lazily, so ``import tuner`` (and ``python -m tuner --help``) does not
import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "SearchSpace": "tuner.space._spaces",
    "load_space": "tuner.space._spaces",
    "shipped_spaces": "tuner.space._spaces",
    "build_model": "tuner.model._builders",
    "Dataset": "tuner.data._datasets",
    "load_dataset": "tuner.data._datasets",
    "list_datasets": "tuner.data._datasets",
    "train_model": "tuner.training._train",
    "evaluate_test": "tuner.training._train",
    "TrainResult": "tuner.training._train",
    "HonestGap": "tuner.training._gap",
    "diagnose": "tuner.training._diagnosis",
    "Diagnosis": "tuner.training._diagnosis",
    "DiagnosisRules": "tuner.training._diagnosis",
    "Study": "tuner.study._study",
    "create_study": "tuner.study._study",
    "run_study": "tuner.study._study",
    "StudySettings": "tuner.study._study",
    "StudyResults": "tuner.study._results",
    "TrialReport": "tuner.study._results",
    "load_study_results": "tuner.study._results",
    "build_report": "tuner.report._analysis",
    "select_trial": "tuner.report._analysis",
    "gap_analysis": "tuner.report._analysis",
    "param_importances": "tuner.report._analysis",
    "plot_learning_curves": "tuner.report._plots",
    "ConfigError": "tuner.errors",
    "SpaceError": "tuner.errors",
    "DataError": "tuner.errors",
    "TrialFailed": "tuner.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tuner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
