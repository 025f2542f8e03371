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
    "SearchSpace": "tuner.search_space",
    "load_space": "tuner.search_space",
    "shipped_spaces": "tuner.search_space",
    "build_model": "tuner.model_builder",
    "Dataset": "tuner.datasets",
    "load_dataset": "tuner.datasets",
    "list_datasets": "tuner.datasets",
    "train_model": "tuner.training",
    "evaluate_test": "tuner.training",
    "TrainResult": "tuner.training",
    "HonestGap": "tuner.gap",
    "diagnose": "tuner.diagnosis",
    "Diagnosis": "tuner.diagnosis",
    "DiagnosisRules": "tuner.diagnosis",
    "Study": "tuner.study",
    "create_study": "tuner.study",
    "run_study": "tuner.study",
    "StudySettings": "tuner.study",
    "StudyResults": "tuner.results",
    "TrialReport": "tuner.results",
    "load_study_results": "tuner.results",
    "build_report": "tuner.reports",
    "select_trial": "tuner.reports",
    "gap_analysis": "tuner.reports",
    "param_importances": "tuner.reports",
    "plot_learning_curves": "tuner.plots",
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
