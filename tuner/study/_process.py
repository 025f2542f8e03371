"""Process-wide state that the Python API changes for a while and puts back as it found it.

A study needs some of it while it runs: ``KERAS_BACKEND`` (read when Keras is imported, and by the worker
processes it starts), MLflow's HTTP retry limits (``MLFLOW_HTTP_REQUEST_*``, read at each request, by
workers too), the workers' thread shares (``OMP_NUM_THREADS``, ...), a quiet Optuna logger, and a SIGINT
handler that holds a Ctrl-C back while a tracking run opens or closes. In a notebook or a user's program
none of it may leak into what comes after: :func:`restoring_process_state` snapshots the environment, the
levels of the loggers and the SIGINT handler, and puts back whatever changed. Only the CLI, which owns its
process, keeps them for good (:func:`keep_process_changes`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator

__all__ = ["keep_process_changes", "restoring_process_state"]

# loggers whose level tuner sets, made to exist before the snapshot (Optuna's own is set to INFO on import)
_TOUCHED_LOGGERS = ("optuna", "mlflow", "mlflow.store.db.utils", "alembic", "absl", "tuner")
_KEEP = threading.Event()


def keep_process_changes() -> None:
    """The CLI owns its process: what the study stage sets (environment, log levels, handlers) stays set."""
    _KEEP.set()


@contextlib.contextmanager
def restoring_process_state() -> Iterator[None]:
    """Put ``os.environ``, the level of every logger and the SIGINT handler back as they were when the block
    (or the decorated function) began; nothing is put back after :func:`keep_process_changes`."""
    if _KEEP.is_set():
        yield
        return
    with contextlib.suppress(ImportError):
        import optuna  # noqa: F401  (its logger gets its import-time level before the snapshot)
    env = dict(os.environ)
    for name in _TOUCHED_LOGGERS:
        logging.getLogger(name)
    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    levels = [(logger, logger.level) for logger in loggers]
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main else None
    try:
        yield
    finally:
        for key in [k for k in os.environ if k not in env]:
            del os.environ[key]
        for key, value in env.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
        for logger, level in levels:
            if logger.level != level:
                logger.setLevel(level)
        if main and handler is not None and signal.getsignal(signal.SIGINT) is not handler:
            signal.signal(signal.SIGINT, handler)
