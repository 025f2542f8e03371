"""One library root logger, ``tuner``, writing to stderr through tqdm so progress bars stay whole.

Also the progress bar itself (drawn only where someone watches: a terminal or a notebook) and the levels
of the libraries' own loggers (Optuna, MLflow, alembic), which follow tuner's verbosity while tuner works.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["get_logger", "configure", "current_verbosity", "library_logs", "progress_bar"]

_ROOT = "tuner"


class _TqdmHandler(logging.StreamHandler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def get_logger(name: str) -> logging.Logger:
    """A logger under the library's root logger."""
    if not name.startswith(_ROOT):
        name = f"{_ROOT}.{name}"
    return logging.getLogger(name)


def configure(verbosity: int = 0) -> None:
    """Set the library's log level: -1 quiet (errors), 0 warnings and info, 1+ debug."""
    root = logging.getLogger(_ROOT)
    if not any(isinstance(h, _TqdmHandler) for h in root.handlers):
        handler = _TqdmHandler()
        handler.setFormatter(logging.Formatter("[tuner] %(levelname)s %(message)s"))
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(logging.ERROR if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG)


def current_verbosity() -> int:
    """tuner's verbosity as :func:`configure` set it (-1, 0 or 1), or as the ``tuner`` logger's level says."""
    level = logging.getLogger(_ROOT).getEffectiveLevel()
    return -1 if level >= logging.ERROR else 1 if level <= logging.DEBUG else 0


# Optuna's "A new study created in RDB with name ...", "Trial 3 finished with value ..." and MLflow's store
# migrations are INFO lines: shown with -v, hidden by default (tuner prints its own line per trial).
_LIBRARIES = ("optuna", "mlflow", "alembic")


def _library_level(name: str, verbosity: int) -> int:
    if verbosity > 0:
        return logging.INFO
    if verbosity < 0 or name != "optuna":  # MLflow warns about much that concerns tuner, not the user
        return logging.ERROR
    return logging.WARNING


@contextlib.contextmanager
def library_logs(verbosity: int) -> Iterator[None]:
    """Optuna's, MLflow's and alembic's own log levels follow tuner's ``verbosity`` until the block ends.

    Optuna sets its logger to INFO when it is first imported, and MLflow reads ``MLFLOW_LOGGING_LEVEL`` when
    it is, so Optuna is imported first and the variable is set for the block; the levels and the variable
    are put back as they were afterwards.
    """
    import optuna  # noqa: F401  (its import sets the "optuna" logger to INFO: ours come after)

    loggers = {name: logging.getLogger(name) for name in _LIBRARIES}
    before = {name: logger.level for name, logger in loggers.items()}
    env_before = os.environ.get("MLFLOW_LOGGING_LEVEL")
    if "mlflow" not in sys.modules and env_before is None:
        os.environ["MLFLOW_LOGGING_LEVEL"] = logging.getLevelName(_library_level("mlflow", verbosity))
    for name, logger in loggers.items():
        logger.setLevel(_library_level(name, verbosity))
    try:
        yield
    finally:
        for name, logger in loggers.items():
            logger.setLevel(before[name])
        if env_before is None:
            os.environ.pop("MLFLOW_LOGGING_LEVEL", None)


def progress_bar(**options: Any) -> Any:
    """A tqdm progress bar on stderr, drawn only where someone watches it: a terminal, or a notebook (as a
    widget); to a file or a pipe it draws nothing, so a log file holds the log lines alone (no ``\\r``)."""
    from tqdm.auto import tqdm

    return tqdm(file=sys.stderr, dynamic_ncols=True, disable=None, **options)
