"""What runs around a trial: the per-epoch pruning callback, and the handler for a trial whose worker died
(interrupts and the stop callback live in :mod:`tuner.study._interrupts`).

Keras and Optuna are imported inside the callbacks, so that importing tuner stays light.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

from tuner._logging import get_logger
from tuner.study._record import StudyRecord, read_trial

__all__: list[str] = []

_logger = get_logger(__name__)


class _PruningCallback:
    """Reports the first objective each epoch to Optuna and prunes when the pruner says so.

    ``trial.should_prune()`` reads the trial and the study's complete trials from the storage (a few
    milliseconds per epoch on SQLite); it is only asked from ``first_step`` on, the first epoch at which
    the pruner can prune at all (None: never, e.g. ``--pruner none``). See
    :func:`tuner.study._storage.first_prunable_step`.
    """

    def __init__(self, trial: Any, monitor: str, first_step: int | None = 1) -> None:
        import keras

        class _Callback(keras.callbacks.Callback):
            def on_epoch_end(cb_self, epoch: int, logs: dict | None = None) -> None:
                import optuna

                value = (logs or {}).get(monitor)
                if value is None or not math.isfinite(float(value)):
                    return
                step = epoch + 1
                trial.report(float(value), step=step)
                if first_step is not None and step >= first_step and trial.should_prune():
                    cb_self.model.stop_training = True
                    raise optuna.TrialPruned(f"pruned at epoch {step} ({monitor}={float(value):.4g})")

        self.callback = _Callback()


class _StaleTrialHandler:
    """Called for a trial whose worker stopped sending heartbeats: retry it once and close its tracking run.

    Args:
        tracker: returns the study's open :class:`~tuner.tracking.Tracker` (the handler is made with the
            storage, before tracking opens).
        grace_period: seconds without a heartbeat after which a worker counts as dead.
    """

    def __init__(self, tracker: Callable[[], Any], grace_period: int) -> None:
        import optuna

        self.tracker = tracker
        self.grace_period = grace_period
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)

    def __call__(self, study: Any, trial: Any) -> None:
        self.retry(study, trial)
        reason = f"worker died: no heartbeat for more than {self.grace_period} s"
        StudyRecord(study).set_trial_fail_reason(trial.number, reason)
        _logger.warning("trial %d: %s; it is retried with the same parameters", trial.number, reason)
        run_id = read_trial(trial).mlflow_run_id
        if run_id:
            try:
                self.tracker().fail_dead_trial(run_id, reason)
            except Exception as err:  # the Optuna side must not depend on the tracking store being reachable
                _logger.warning("could not close the tracking run of dead trial %d: %s", trial.number, err)
