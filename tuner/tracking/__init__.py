"""Tracking: where a study's records go, behind one small :class:`Tracker` protocol.

:func:`make_tracker` gives MLflow's tracker or, for ``tracking_uri="none"``, a :class:`NullTracker`.
Importing this package stays light: MLflow is imported inside the tracker's methods, and Keras (for
:class:`EpochLogger`) only when that name is first used.
"""

from __future__ import annotations

from typing import Any

from tuner.tracking._base import TRACKING_OFF, NullTracker, Tracker, make_tracker
from tuner.tracking._curves import VERDICT_COLORS, plot_learning_curves, verdict_color
from tuner.tracking._mlflow import MlflowTracker, load_logged_model, register_model
from tuner.tracking._probe import probe_tracking
from tuner.tracking._reading import (
    delete_study_runs,
    find_experiment,
    log_file,
    metric_history,
    open_reader,
    study_run_ids,
)
from tuner.tracking._sync import sync_trials

__all__ = [
    "EpochLogger",
    "MlflowTracker",
    "NullTracker",
    "TRACKING_OFF",
    "Tracker",
    "VERDICT_COLORS",
    "delete_study_runs",
    "find_experiment",
    "load_logged_model",
    "log_file",
    "make_tracker",
    "metric_history",
    "open_reader",
    "plot_learning_curves",
    "probe_tracking",
    "register_model",
    "study_run_ids",
    "sync_trials",
    "verdict_color",
]


def __getattr__(name: str) -> Any:
    if name == "EpochLogger":  # a keras.callbacks.Callback: importing it imports Keras
        from tuner.tracking._epochs import EpochLogger

        return EpochLogger
    raise AttributeError(f"module 'tuner.tracking' has no attribute {name!r}")
