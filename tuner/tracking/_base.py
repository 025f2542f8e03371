"""The tracker seam: what a study tells a tracking backend, and the tracker that records nothing.

The study engine talks only to :class:`Tracker`; :func:`make_tracker` picks the backend from the
tracking URI. Adding a backend (e.g. Weights & Biases) is one module here with a class that has these
methods, and one branch in :func:`make_tracker`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["Tracker", "NullTracker", "make_tracker", "TRACKING_OFF"]

TRACKING_OFF = "none"  # the tracking URI that turns tracking off


@runtime_checkable
class Tracker(Protocol):
    """Records one invocation of a study: a study run, and one run per trial under it.

    Attributes:
        experiment_id: the MLflow experiment the runs go to, stored on the study so that reports find
            them; None for a backend without one.
        parent_run_id: the study run that trial runs are recorded under, or None.
    """

    # read-only to the study engine (a backend may keep them as plain attributes or as properties)
    @property
    def experiment_id(self) -> str | None: ...

    @property
    def parent_run_id(self) -> str | None: ...

    def start_study(
        self, *, study_name: str, settings: Mapping[str, Any], space_yaml: str, dataset: Mapping[str, Any]
    ) -> str | None:
        """Start the study run (this process owns it and ends it); returns its id."""

    def join_study(self, parent_run_id: str) -> None:
        """Record trials under a study run that another process started and will end."""

    def end_study(self, *, status: str, best: Mapping[str, Any] | None = None) -> None:
        """End the study run when this tracker started it (``FINISHED``, ``KILLED`` or ``FAILED``), with the best
        trial's ``metrics``, ``params`` and ``tags``; nothing for a joined study run."""

    def start_trial(self, number: int, params: Mapping[str, Any], *, study_name: str) -> str | None:
        """Start a trial's run with its parameters; returns its id (None: nothing is recorded)."""

    def trial_callbacks(self, run_id: str | None) -> list[Any]:
        """Keras callbacks that record a trial's epochs (see :class:`~tuner.tracking.EpochLogger`)."""

    def log_metrics(self, run_id: str, rows: Sequence[tuple[str, float, int]]) -> None:
        """Record ``(key, value, step)`` rows on a run."""

    def end_trial(
        self,
        run_id: str | None,
        *,
        state: str,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """End a trial's run: ``state`` is ``complete``, ``pruned``, ``failed`` or ``interrupted``; ``params`` are
        the ones known only now (asked by a user's ``fit()``)."""

    def log_model(self, run_id: str, model: Any, *, example: Any = None) -> dict[str, str] | None:
        """Log an exported model on a run; returns the URIs it loads back from.

        ``{"model": ...}``: raw rows in, labels out (what is registered and served); ``{"keras_model": ...}``:
        the bare Keras model, which takes the scaled features.
        """

    def fail_dead_trial(self, run_id: str, reason: str) -> None:
        """Close the run of a trial whose worker died (it stopped sending heartbeats) as failed."""


class NullTracker:
    """The tracker when tracking is off (``tracking_uri="none"``): it records nothing."""

    experiment_id: str | None = None
    parent_run_id: str | None = None

    def start_study(
        self, *, study_name: str, settings: Mapping[str, Any], space_yaml: str, dataset: Mapping[str, Any]
    ) -> None:
        return None

    def join_study(self, parent_run_id: str) -> None:
        return None

    def end_study(self, *, status: str, best: Mapping[str, Any] | None = None) -> None:
        return None

    def start_trial(self, number: int, params: Mapping[str, Any], *, study_name: str) -> None:
        return None

    def trial_callbacks(self, run_id: str | None) -> list[Any]:
        return []

    def log_metrics(self, run_id: str, rows: Sequence[tuple[str, float, int]]) -> None:
        return None

    def end_trial(
        self,
        run_id: str | None,
        *,
        state: str,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        return None

    def log_model(self, run_id: str, model: Any, *, example: Any = None) -> dict[str, str] | None:
        return None

    def fail_dead_trial(self, run_id: str, reason: str) -> None:
        return None


def make_tracker(tracking_uri: str | None, experiment: str, *, dataset: Any = None, joining: bool = False) -> Tracker:
    """The tracker for a tracking URI: none for ``"none"``, else MLflow (``None``: MLflow's default store).

    Args:
        tracking_uri: the tracking URI, or ``"none"`` to turn tracking off.
        experiment: the experiment name (one per study).
        dataset: the study's :class:`~tuner.data.Dataset`, recorded as the runs' training data. Defaults to `None`.
        joining: a worker joins a running study's tracking: a backend that fails already at the start turns
            tracking off for this worker (its trials go on) instead of raising. Defaults to `False`.

    Raises:
        ConfigError: when joining, and the server answers but refuses the credentials.
    """
    if tracking_uri == TRACKING_OFF:
        return NullTracker()
    from tuner.tracking._guard import GuardedTracker
    from tuner.tracking._mlflow import MlflowTracker
    from tuner.tracking._probe import bound_mlflow_retries, probe_tracking

    bound_mlflow_retries()  # a server that stops answering costs seconds per call, not minutes
    # asked in seconds, not MLflow's retries; refused credentials stop a joining worker (one line, exit 2)
    trouble = probe_tracking(tracking_uri, credentials_only=True) if joining else None

    def backend() -> MlflowTracker:
        if trouble is not None:
            raise ConnectionError(f"the server {trouble}")
        return MlflowTracker(experiment, tracking_uri=tracking_uri, dataset=dataset)

    # a backend that fails mid-study stops tracking, never the study (its runs are written later by `tuner sync`)
    if joining:
        return GuardedTracker.joining(backend, uri=tracking_uri, study_name=experiment)
    return GuardedTracker(backend(), uri=tracking_uri, study_name=experiment)
