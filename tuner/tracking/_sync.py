"""Writing a study's missing tracking runs from its Optuna storage: ``python -m tuner sync STUDY``.

When the tracking server was away during a study (:class:`~tuner.tracking._guard.GuardedTracker`), every
result stayed in the Optuna storage. :func:`sync_trials` compares the study's finished trials with the
trial runs the MLflow experiment holds, and writes what is missing through :class:`MlflowTracker` (the
same writer a study uses): a trial with no run gets one, under the study's latest study run, with its
parameters, metrics, tags and per-epoch objective; a run left open (the server went away before the trial
ended) is completed and closed, and so is a study run that its process ended while the server was away.
Running it twice writes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tuner.tracking._mlflow import MlflowTracker
from tuner.tracking._reading import study_run_ids

__all__ = ["sync_trials"]

_TRIAL_RUNS = "tags.`tuner.kind` = 'trial'"


def sync_trials(
    study_name: str,
    trials: Sequence[Mapping[str, Any]],
    *,
    tracking_uri: str | None,
    study_runs: Mapping[str, str] | None = None,
) -> list[int]:
    """Write the tracking runs that a study's finished trials lack; returns the trial numbers written.

    Args:
        study_name: the study (its MLflow experiment bears this name).
        trials: one mapping per finished trial: ``number``, ``state`` (``complete``, ``pruned``, ``fail``),
            ``params`` (every knob's value), ``metrics`` (final values), ``tags`` and ``curve``
            (``[(key, value, epoch), ...]``).
        tracking_uri: the MLflow tracking URI (``None``: the default store).
        study_runs: study runs that their process ended while the server was away, ``{run_id: status}``: each
            one still RUNNING in MLflow is closed with that status. Defaults to none.
    """
    tracker = MlflowTracker(study_name, tracking_uri=tracking_uri)
    client = tracker.client
    closed: set[int] = set()
    open_runs: dict[int, str] = {}
    logged: dict[str, set[str]] = {}  # the parameters an open run already holds
    for run in client.search_runs([tracker.experiment_id], filter_string=_TRIAL_RUNS, max_results=50000):
        number = run.data.tags.get("optuna_trial_number")
        if number is None or not number.isdigit():
            continue
        if run.info.status == "RUNNING":
            open_runs.setdefault(int(number), run.info.run_id)
            logged[run.info.run_id] = set(run.data.params)
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
        params = dict(trial.get("params") or {})
        run_id = open_runs.get(number)
        if run_id is None:
            run_id = tracker.start_trial(number, params, study_name=study_name)
        curve = list(trial.get("curve") or [])
        if curve:
            tracker.log_metrics(run_id, curve)
        tags = {**(trial.get("tags") or {}), "tuner.synced": "true"}
        missing = {k: v for k, v in params.items() if k not in logged.get(run_id, params)}  # an open run's late ones
        tracker.end_trial(
            run_id,
            state=_STATES.get(trial["state"], trial["state"]),
            metrics=trial.get("metrics"),
            tags=tags,
            params=missing,
        )
        written.append(number)
    for run_id, status in (study_runs or {}).items():
        if run_id in parents and client.get_run(run_id).info.status == "RUNNING":
            client.set_tag(run_id, "tuner.synced", "true")
            client.set_terminated(run_id, status=status)
    return written


_STATES = {"fail": "failed"}  # Optuna's state -> the tracker's
