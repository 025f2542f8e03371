"""Writing a study's missing tracking runs from its Optuna storage: ``python -m tuner sync STUDY``.

When the tracking server was away during a study (:class:`~tuner.tracking._guard.GuardedTracker`), every
result stayed in the Optuna storage. :func:`sync_trials` compares the study's finished trials with the
trial runs the MLflow experiment holds, and writes what is missing through :class:`MlflowTracker` (the
same writer a study uses): a trial with no run gets one, under the study's latest study run, with its
parameters, metrics, tags and per-epoch objective; a run left open (the server went away before the trial
ended) is completed and closed, and so is a study run left open once no process runs the study. Running it
twice writes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tuner.tracking._mlflow import MlflowTracker
from tuner.tracking._reading import study_run_ids

__all__ = ["sync_trials"]

_TRIAL_RUNS = "tags.`tuner.kind` = 'trial'"


def sync_trials(study_name: str, trials: Sequence[Mapping[str, Any]], *, tracking_uri: str | None,
                study_status: str | None = None) -> list[int]:
    """Write the tracking runs that a study's finished trials lack; returns the trial numbers written.

    Args:
        study_name: the study (its MLflow experiment bears this name).
        trials: one mapping per finished trial: ``number``, ``state`` (``complete``, ``pruned``, ``fail``),
            ``params``, ``metrics`` (final values), ``tags`` and ``curve`` (``[(key, value, epoch), ...]``).
        tracking_uri: the MLflow tracking URI (``None``: the default store).
        study_status: when no process runs the study any more, the status (``FINISHED``, ``KILLED``) that its
            study runs left RUNNING (their server went away before they ended) are closed with. Defaults to
            `None` (they are left as they are).
    """
    tracker = MlflowTracker(study_name, tracking_uri=tracking_uri)
    client = tracker.client
    closed: set[int] = set()
    open_runs: dict[int, str] = {}
    for run in client.search_runs([tracker.experiment_id], filter_string=_TRIAL_RUNS, max_results=50000):
        number = run.data.tags.get("optuna_trial_number")
        if number is None or not number.isdigit():
            continue
        if run.info.status == "RUNNING":
            open_runs.setdefault(int(number), run.info.run_id)
        else:
            closed.add(int(number))
    parents = study_run_ids(client, tracker.experiment_id)
    if parents:
        tracker.join_study(parents[0])
    written = []
    for trial in sorted(trials, key=lambda t: t["number"]):
        number = int(trial["number"])
        if number in closed:
            continue
        run_id = open_runs.get(number)
        if run_id is None:
            run_id = tracker.start_trial(number, trial.get("params") or {}, study_name=study_name)
        curve = list(trial.get("curve") or [])
        if curve:
            tracker.log_metrics(run_id, curve)
        tags = {**(trial.get("tags") or {}), "tuner.synced": "true"}
        tracker.end_trial(run_id, state=_STATES.get(trial["state"], trial["state"]), metrics=trial.get("metrics"),
                          tags=tags)
        written.append(number)
    if study_status is not None:
        for run_id in parents:
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_tag(run_id, "tuner.synced", "true")
                client.set_terminated(run_id, status=study_status)
    return written


_STATES = {"fail": "failed"}  # Optuna's state -> the tracker's
