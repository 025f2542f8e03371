"""Tracking: where a study's records go (MLflow)."""

from __future__ import annotations

from tuner.tracking._mlflow import EpochLogger, MlflowTracker, save_model_tmp

__all__ = ["EpochLogger", "MlflowTracker", "save_model_tmp"]
