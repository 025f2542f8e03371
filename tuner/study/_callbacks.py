"""What runs around a trial: the stop request, the per-epoch stop and pruning callbacks, and the handler
for a trial whose worker died.

Keras and Optuna are imported inside the callbacks, so that importing tuner stays light.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from tuner._logging import get_logger
from tuner.study._record import StudyRecord, read_trial

__all__ = ["deferring_interrupts", "interrupt", "request_stop", "stop_requested"]

_logger = get_logger(__name__)

_STOP = threading.Event()
_DEFERRING = [0]  # depth of open deferring_interrupts() blocks (signal handlers run in the main thread)


def request_stop() -> None:
    """Ask running studies to stop: the running trial is failed as ``interrupted`` at its next epoch end.

    The CLI calls this from its SIGINT handler, so an interrupt swallowed somewhere inside a library
    still stops the study.
    """
    _STOP.set()


def clear_stop() -> None:
    """Forget an earlier :func:`request_stop`: a new run starts (:func:`tuner.study._loop.optimize`)."""
    _STOP.clear()


def stop_requested() -> bool:
    """Whether :func:`request_stop` was called in this process."""
    return _STOP.is_set()


def check_stop() -> None:
    """Raise ``KeyboardInterrupt`` once :func:`request_stop` was called."""
    if _STOP.is_set():
        raise KeyboardInterrupt


def interrupt() -> None:
    """What Ctrl-C does (the CLI's SIGINT handler calls it): request a stop and raise ``KeyboardInterrupt`` now,
    or, inside :func:`deferring_interrupts`, once that block has ended."""
    request_stop()
    if not _DEFERRING[0]:
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferring_interrupts(*, raise_after: bool = True) -> Iterator[None]:
    """Hold a Ctrl-C back until the block ends: a tracking run opened or closed halfway would stay RUNNING.

    Args:
        raise_after: raise the held ``KeyboardInterrupt`` when the block ends. `False` in cleanup code,
            where the stop is left to the next :func:`check_stop`. Defaults to `True`.
    """
    _DEFERRING[0] += 1
    try:
        yield
    finally:
        _DEFERRING[0] -= 1
    if raise_after and not _DEFERRING[0]:
        check_stop()


@contextlib.contextmanager
def interrupts_deferrable() -> Iterator[None]:
    """While a study runs in a script or notebook (Python's own SIGINT handler), route Ctrl-C through
    :func:`interrupt`, as the CLI does, so that :func:`deferring_interrupts` holds it back there too."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop_requested():  # a second Ctrl-C is not held back
            raise KeyboardInterrupt
        interrupt()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def stop_callback() -> Any:
    """A Keras callback that raises ``KeyboardInterrupt`` before a batch (or a ``steps_per_execution`` group) and
    after an epoch once a stop was requested. It checks at batch *begin*: a callback with ``on_train_batch_end``
    would make Keras wait for every batch's results, which stops JAX from dispatching the next batch asynchronously."""
    import keras

    return keras.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: check_stop(),
                                          on_epoch_end=lambda epoch, logs: check_stop())


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
            def on_epoch_end(cb_self, epoch: int, logs: dict | None = None) -> None:  # noqa: N805
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
