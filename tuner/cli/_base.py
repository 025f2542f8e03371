"""What every subcommand shares: the :class:`Command` base, exit codes, output helpers and store options.

Exit codes: 0 success, 1 runtime failure (a study with no complete trial included), 2 bad input (usage, space,
dataset or settings), 130 interrupted, 141 the reader of stdout went away (``| head``; 128 + SIGPIPE, as Unix tools).
Results go to stdout, logs to stderr.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from typing import Any

__all__ = ["EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE", "Command", "add_store_options", "fmt",
           "print_json", "quiet_backends", "table"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141


class Command(abc.ABC):
    """A subcommand: its options and its action. The class docstring is its help (the first line in the list).

    Attributes:
        name: the word on the command line.
        needs_keras: import Keras (quietly) before :meth:`take_action`.
        interruptible: the first Ctrl-C stops after marking the running trial; a second one exits at once.
    """

    name = ""
    needs_keras = False
    interruptible = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the subcommand's options to its parser (none by default)."""

    def session(self, args: argparse.Namespace, verbosity: int) -> contextlib.AbstractContextManager[Any]:
        """What must be set up before Keras starts, and torn down after :meth:`take_action` (nothing by default)."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def take_action(self, args: argparse.Namespace) -> int:
        """Run the subcommand and return its exit code."""


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: $TUNER_STORAGE, else "
                        "sqlite:///mlruns/optuna.db); a password is better kept in $TUNER_STORAGE or ~/.pgpass.")


def quiet_backends(verbosity: int) -> None:
    """Silence TensorFlow's C++ start-up chatter unless asked for more."""
    if verbosity <= 0:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING" if verbosity > 0 else "ERROR")
    for name in ("mlflow", "alembic", "absl"):
        logging.getLogger(name).setLevel(logging.WARNING if verbosity > 0 else logging.ERROR)
    if verbosity <= 0:
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*signature.*")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def fmt(value: Any, digits: int = 4) -> str:
    """A value for a person: ``-`` for `None`, floats to ``digits`` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as a plain-text table with a header line."""
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
