"""The command line: ``python -m tuner <command>``.

One module per group of subcommands (``_study``: study, worker; ``_report``: report, select; ``_browse``:
best, spaces, datasets, ui), a shared base (``_base``: :class:`Command`, exit codes, tables) and the
registry with the parser and :func:`main` (``_main``). Adding a subcommand is one :class:`Command` class,
listed in :data:`COMMANDS`. Nothing outside ``tuner/cli/`` imports this package but ``tuner/__main__.py``.
"""

from __future__ import annotations

from tuner.cli._base import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Command
from tuner.cli._browse import BestCommand, DatasetsCommand, SpacesCommand, UiCommand
from tuner.cli._main import COMMANDS, build_parser, main
from tuner.cli._report import ReportCommand, SelectCommand
from tuner.cli._study import StudyCommand, WorkerCommand

__all__ = [
    "BestCommand",
    "COMMANDS",
    "Command",
    "DatasetsCommand",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "ReportCommand",
    "SelectCommand",
    "SpacesCommand",
    "StudyCommand",
    "UiCommand",
    "WorkerCommand",
    "build_parser",
    "main",
]
