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

__all__ = [
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "EXIT_BROKEN_PIPE",
    "Command",
    "add_store_options",
    "fmt",
    "print_json",
    "quiet_backends",
    "table",
    "add_bind_options",
    "is_loopback",
    "check_bind",
]

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
        return None  # an optional hook: a subcommand with no options need not override it

    def session(self, args: argparse.Namespace, verbosity: int) -> contextlib.AbstractContextManager[Any]:
        """What must be set up before Keras starts, and torn down after :meth:`take_action` (nothing by default)."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def take_action(self, args: argparse.Namespace) -> int:
        """Run the subcommand and return its exit code."""


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage URL (default: $TUNER_STORAGE, else "
        "sqlite:///mlruns/optuna.db); a password is better kept in $TUNER_STORAGE or ~/.pgpass.",
    )


def add_bind_options(parser: argparse.ArgumentParser, *, port: int, what: str) -> None:
    """``--host``, ``--port`` and ``--allow-unauthenticated`` of a command that serves ``what`` on a port."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1, this machine "
        "only); any other needs a credential, or --allow-unauthenticated.",
    )
    parser.add_argument("--port", type=int, default=port, help=f"port (default: {port}).")
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help=f"serve {what} on a --host beyond "
        "loopback without a password: only when something in front of it asks for one (a reverse "
        "proxy with authentication) or the network is yours alone.",
    )


def is_loopback(host: str) -> bool:
    """``host`` reaches this machine only: ``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``)."""
    import ipaddress

    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost, or an interface's address: the network sees it


def check_bind(
    args: argparse.Namespace, *, what: str, exposes: str, credential: str | None, authenticated: bool = False
) -> None:
    """Refuse to serve ``what`` on a non-loopback ``args.host`` that no credential guards.

    Args:
        args: the parsed options (``host``, ``port``, ``allow_unauthenticated``).
        what: the server, e.g. ``"the MLflow UI"``.
        exposes: what whoever reaches the port can do.
        credential: how this command asks for one (an option to add), or None when it cannot.
        authenticated: the server asks every caller for a credential already. Defaults to `False`.

    Raises:
        ConfigError: naming ``--host`` and the value, what would be exposed, and the ways out.
    """
    from tuner.errors import ConfigError, Problem

    if authenticated or is_loopback(args.host) or args.allow_unauthenticated:
        return
    ways = ([credential] if credential else []) + [
        f"keep the default 127.0.0.1 and reach it with ssh -L {args.port}:127.0.0.1:{args.port} THIS-HOST",
        "or pass --allow-unauthenticated when something in front of it asks for a password",
    ]
    raise ConfigError(
        [
            Problem(
                "--host",
                "",
                f"serving {what} beyond this machine without a password lets whoever "
                f"reaches port {args.port} {exposes}; " + ", ".join(ways),
                value=args.host,
            )
        ]
    )


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
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
