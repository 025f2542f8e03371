"""Reading a study's MLflow records back, and attaching files to its runs: what reports need of MLflow.

Every function takes a *reader*: the ``mlflow.MlflowClient`` that :func:`open_reader` returns, so one
connection serves a whole report. MLflow is imported inside :func:`open_reader` only, so importing this
module stays light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["open_reader", "find_experiment", "study_run_ids", "metric_history", "log_file", "delete_study_runs"]

# the tag MlflowTracker puts on a study's parent run
_STUDY_RUNS = "tags.`tuner.kind` = 'study'"


def open_reader(tracking_uri: str) -> Any:
    """A reader of the MLflow store at ``tracking_uri`` (an ``mlflow.MlflowClient``)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def find_experiment(reader: Any, name: str, *, experiment_id: str | None = None) -> str | None:
    """The id of a study's MLflow experiment, or `None` when the store has none.

    Args:
        reader: from :func:`open_reader`.
        name: the experiment's name (the study's name).
        experiment_id: the id the study recorded; used when that experiment still bears ``name``, else
            the experiment is looked up by name. Defaults to `None`.
    """
    exp = None
    if experiment_id is not None:
        try:
            exp = reader.get_experiment(str(experiment_id))
        except Exception:
            exp = None
        if exp is not None and exp.name != name:
            exp = None
    if exp is None:
        exp = reader.get_experiment_by_name(name)
    return None if exp is None else exp.experiment_id


def study_run_ids(reader: Any, experiment_id: str) -> list[str]:
    """The study (parent) runs of an experiment, one per invocation of the study, newest first."""
    runs = reader.search_runs([experiment_id], filter_string=_STUDY_RUNS, order_by=["attributes.start_time DESC"])
    return [r.info.run_id for r in runs]


def delete_study_runs(tracking_uri: str, name: str) -> int:
    """Mark every run of the study ``name``'s experiment deleted (MLflow's own delete: the UI can restore them
    from its trash until ``mlflow gc``); the experiment stays. Returns how many runs were deleted."""
    from mlflow.entities import ViewType

    reader = open_reader(tracking_uri)
    experiment_id = find_experiment(reader, name)
    if experiment_id is None:
        return 0
    runs = reader.search_runs([experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=50_000)
    for run in runs:
        reader.delete_run(run.info.run_id)
    return len(runs)


def metric_history(reader: Any, run_id: str, keys: Sequence[str]) -> dict[str, list[float]]:
    """Per-epoch values of ``keys`` from an MLflow run (``get_metric_history``), aligned on the epoch.

    Steps below 1 (summary values logged at step 0) are left out; an epoch where a key was not logged
    (a non-finite value is never logged) holds ``nan``.

    Returns:
        ``{"epoch": [1, 2, ...], key: [values...], ...}``; keys with no history are absent.
    """
    series: dict[str, dict[int, float]] = {}
    for key in keys:
        points = {int(m.step): float(m.value) for m in reader.get_metric_history(run_id, key) if m.step >= 1}
        if points:
            series[key] = points
    steps = sorted({s for points in series.values() for s in points})
    out: dict[str, list[float]] = {"epoch": list(steps)}  # int epochs, as list[float] (int is a float to mypy)
    for key, points in series.items():
        out[key] = [points.get(s, math.nan) for s in steps]
    return out


def log_file(reader: Any, run_id: str, path: str | Path, *, artifact_path: str | None = None) -> str:
    """Attach a local file to a run as an artifact and return its artifact path (``<artifact_path>/<name>``)."""
    path = Path(path)
    reader.log_artifact(run_id, str(path), artifact_path=artifact_path)
    return f"{artifact_path}/{path.name}" if artifact_path else path.name
