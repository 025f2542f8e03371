"""A tracker that never stops a study: when its backend fails, trials go on and the runs left unwritten are listed.

A tracking server that goes away during a study must not cost a single Optuna result. :class:`GuardedTracker`
wraps the real tracker: the first call that fails logs one warning, and from then on this process stops
calling the backend (a dead server would make every call wait for MLflow's retries) and only notes which
trials' runs were not written. When the study's tracking closes it lists them, with the command that
writes them later from the Optuna storage (``python -m tuner sync STUDY``, :mod:`tuner.tracking._sync`).
It is also the one place where the settings a study records are masked (:func:`~tuner._store.masked`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tuner._logging import get_logger
from tuner._store import mask_secrets, masked

__all__ = ["GuardedTracker"]

_logger = get_logger(__name__)


class GuardedTracker:
    """Wraps a :class:`~tuner.tracking.Tracker` so that no failure of its backend reaches the study.

    Args:
        inner: the tracker that writes (e.g. :class:`~tuner.tracking.MlflowTracker`).
        uri: its tracking URI, for messages (its password is masked).
        study_name: the study, for the recovery command.

    Attributes:
        down: why the backend stopped answering, or None while it answers.
        unwritten: numbers of the trials (of this process) whose runs were not written or not closed.
    """

    def __init__(self, inner: Any, *, uri: str | None, study_name: str) -> None:
        self.uri = mask_secrets(uri or "the default tracking store")
        self.study_name = study_name
        self.down: str | None = None
        self.unwritten: list[int] = []
        self._numbers: dict[str, int] = {}
        self._joined: str | None = None
        self.inner = inner

    @classmethod
    def joining(cls, make: Callable[[], Any], *, uri: str | None, study_name: str) -> GuardedTracker:
        """A guard whose tracker is made under it (making it reaches the backend): a worker that joins a running
        study while its server is away runs with tracking off, and its trials go on."""
        guard = cls(None, uri=uri, study_name=study_name)
        guard.inner = guard._guard(make)
        return guard

    @property
    def experiment_id(self) -> str | None:
        return None if self.inner is None else self.inner.experiment_id

    @property
    def parent_run_id(self) -> str | None:
        return self._joined if self.inner is None else self.inner.parent_run_id

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``inner.method(*args, **kwargs)``, or None once the backend failed (the first failure is logged)."""
        if self.down is not None:
            return None
        return self._guard(getattr(self.inner, method), *args, **kwargs)

    def _guard(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except Exception as err:
            self.down = mask_secrets(f"{type(err).__name__}: {err}".splitlines()[0][:300])
            _logger.warning(
                "tracking at %s failed (%s): trials go on, their results are kept in the Optuna "
                "storage, and tracking is off for the rest of this run",
                self.uri,
                self.down,
            )
            return None

    def _missed(self, number: int | None) -> None:
        if number is not None and number not in self.unwritten:
            self.unwritten.append(number)

    # -- the Tracker protocol -------------------------------------------------------------------
    def start_study(
        self, *, study_name: str, settings: Mapping[str, Any], space_yaml: str, dataset: Mapping[str, Any]
    ) -> str | None:
        return self._call(
            "start_study",
            study_name=study_name,
            settings=masked(settings),
            space_yaml=space_yaml,
            dataset=masked(dataset),
        )

    def join_study(self, parent_run_id: str) -> None:
        self._joined = parent_run_id
        if self.inner is not None:
            self.inner.join_study(parent_run_id)  # no call to the backend

    def end_study(self, *, status: str, best: Mapping[str, Any] | None = None) -> None:
        self._call("end_study", status=status, best=best)
        if self.unwritten:
            numbers = ", ".join(str(n) for n in sorted(self.unwritten))
            _logger.warning(
                "the tracking runs of %d trials (%s) were not written to %s (%s); every result is in "
                "the Optuna storage: write them with `python -m tuner sync %s` (with this study's "
                "--storage) once tracking answers again",
                len(self.unwritten),
                numbers,
                self.uri,
                self.down,
                self.study_name,
            )

    def start_trial(self, number: int, params: Mapping[str, Any], *, study_name: str) -> str | None:
        run_id = self._call("start_trial", number, params, study_name=study_name)
        if run_id is None:
            self._missed(number)
        else:
            self._numbers[run_id] = number
        return run_id

    def trial_callbacks(self, run_id: str | None) -> list[Any]:
        callbacks = self._call("trial_callbacks", run_id) or []
        for callback in callbacks:  # an epoch logger flushes through this guard, so a dead server fails no trial
            if hasattr(callback, "tracker"):
                callback.tracker = self
        return callbacks

    def log_metrics(self, run_id: str, rows: Sequence[tuple[str, float, int]]) -> None:
        self._call("log_metrics", run_id, rows)

    def end_trial(
        self,
        run_id: str | None,
        *,
        state: str,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if run_id is None:
            return
        if self.down is None:
            self._call("end_trial", run_id, state=state, metrics=metrics, tags=tags, params=params)
        if self.down is not None:
            self._missed(self._numbers.get(run_id))
        self._numbers.pop(run_id, None)

    def log_model(self, run_id: str, model: Any, *, example: Any = None) -> dict[str, str] | None:
        return self._call("log_model", run_id, model, example=example)

    def fail_dead_trial(self, run_id: str, reason: str) -> None:
        self._call("fail_dead_trial", run_id, reason)
