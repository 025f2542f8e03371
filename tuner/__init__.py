"""tuner: hyperparameter tuning for Keras with an honest generalization gap.

Declare a search space, run an Optuna study that trains real Keras models, inspect every trial in
MLflow, and read each trial's generalization gap and over/underfitting verdict.

The public API is imported lazily, so ``import tuner`` (and ``python -m tuner --help``) does not
import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_DISTRIBUTION = "honest-tuner"  # the name on the package index; the import name stays ``tuner``


def _version() -> str:
    """The installed distribution's version; a source checkout without metadata reads pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version(_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        import re
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.MULTILINE)
        except OSError:
            found = None
        return found.group(1) if found else "0+unknown"


__version__ = _version()

_EXPORTS = {
    "SearchSpace": "tuner.space",
    "load_space": "tuner.space",
    "shipped_spaces": "tuner.space",
    "build_model": "tuner.model",
    "Dataset": "tuner.data",
    "load_dataset": "tuner.data",
    "list_datasets": "tuner.data",
    "train_model": "tuner.training",
    "evaluate_test": "tuner.training",
    "TrainResult": "tuner.training",
    "HonestGap": "tuner.training",
    "diagnose": "tuner.training",
    "Diagnosis": "tuner.training",
    "DiagnosisRules": "tuner.training",
    "Study": "tuner.study",
    "create_study": "tuner.study",
    "run_study": "tuner.study",
    "StudySettings": "tuner.study",
    "StudyResults": "tuner.study",
    "TrialReport": "tuner.study",
    "load_study_results": "tuner.study",
    "load_best_model": "tuner.study",
    "register_best_model": "tuner.study",
    "ExportedModel": "tuner.model",
    "Preprocessing": "tuner.data",
    "build_report": "tuner.report",
    "explain": "tuner.report",
    "confirm": "tuner.report",
    "refine": "tuner.report",
    "select_trial": "tuner.report",
    "gap_analysis": "tuner.report",
    "param_importances": "tuner.report",
    "plot_learning_curves": "tuner.report",
    "KerasTuner": "tuner.kerastuner",
    "ConfigError": "tuner.errors",
    "SpaceError": "tuner.errors",
    "DataError": "tuner.errors",
    "NoCompleteTrial": "tuner.errors",
    "TrialFailed": "tuner.errors",
}

__all__ = [*sorted(_EXPORTS), "__version__"]
_TRAINS = ("tuner.model", "tuner.training", "tuner.study", "tuner.kerastuner")


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tuner' has no attribute {name!r}")
    if module in _TRAINS:  # these train Keras models: import Keras as quietly as the CLI does
        from tuner._backend import import_keras_for_api

        import_keras_for_api()
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
