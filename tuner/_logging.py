"""One library root logger, ``tuner``, writing to stderr through tqdm so progress bars stay whole."""

from __future__ import annotations

import logging
import sys

__all__ = ["get_logger", "configure"]

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
