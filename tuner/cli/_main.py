"""The command line: ``python -m tuner <command>`` (or ``tuner <command>``).

:data:`COMMANDS` is the registry: a subcommand is one :class:`~tuner.cli._base.Command` class, listed
there. :func:`main` parses the arguments, sets up logging, runs the command and turns its errors into a
message and an exit code (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections.abc import Sequence
from typing import Any

from tuner import __version__
from tuner._logging import configure, library_logs
from tuner._store import default_storage, mask_secrets, storage_trouble
from tuner.cli._base import EXIT_BROKEN_PIPE, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, Command, quiet_backends
from tuner.cli._browse import BestCommand, DatasetsCommand, SpacesCommand, UiCommand
from tuner.cli._explain import ExplainCommand, RefineCommand
from tuner.cli._predict import DashboardCommand, PredictCommand
from tuner.cli._report import ReportCommand, SelectCommand
from tuner.cli._study import StudyCommand, WorkerCommand
from tuner.cli._sync import SyncCommand
from tuner.errors import ConfigError, NoCompleteTrial, did_you_mean

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: dict[str, type[Command]] = {
    c.name: c
    for c in (
        StudyCommand,
        WorkerCommand,
        BestCommand,
        SpacesCommand,
        DatasetsCommand,
        UiCommand,
        ReportCommand,
        SelectCommand,
        ExplainCommand,
        RefineCommand,
        PredictCommand,
        DashboardCommand,
        SyncCommand,
    )
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log output.")
    common.add_argument("-q", "--quiet", action="store_true", help="errors only.")
    common.add_argument("--debug", action="store_true", help="show tracebacks.")
    parser = argparse.ArgumentParser(
        prog="tuner", parents=[common], description="Hyperparameter tuning for Keras with an honest generalization gap."
    )
    parser.add_argument("--version", action="version", version=f"tuner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, cls in COMMANDS.items():
        doc = (cls.__doc__ or "").strip()
        p = sub.add_parser(
            name,
            parents=[common],
            help=doc.splitlines()[0] if doc else None,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cls().add_arguments(p)
        p.set_defaults(command_parser=p)  # an unknown option is reported under its subcommand (main)
    return parser


def _install_interrupt_handler() -> None:
    """First Ctrl-C: stop after marking the running trial; a second one exits at once."""
    state = {"count": 0}

    def handler(signum: int, frame: Any) -> None:
        state["count"] += 1
        if state["count"] > 1:
            os._exit(EXIT_INTERRUPTED)
        print("\ninterrupt: finishing up (press Ctrl-C again to exit at once)", file=sys.stderr)
        from tuner.study import interrupt

        interrupt()  # raises KeyboardInterrupt, unless a tracking run is being opened or closed right now

    signal.signal(signal.SIGINT, handler)


def _refuse_unknown(parser: argparse.ArgumentParser, unknown: list[str]) -> None:
    """Exit 2 under the subcommand's usage, with a "did you mean" for an option it has (``--n_trials``)."""
    options = sorted(set(re.findall(r"--[A-Za-z][\w-]*", parser.format_help())))
    first = next((u.split("=")[0] for u in unknown if u.startswith("-")), unknown[0])
    hint = did_you_mean(first.replace("_", "-"), options) or did_you_mean(first, options)
    parser.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:
        _refuse_unknown(args.command_parser, unknown)
    verbosity = -1 if args.quiet else args.verbose
    configure(verbosity)
    quiet_backends(verbosity)
    from tuner.study import keep_process_changes

    keep_process_changes()  # the CLI owns its process: what a study sets (environment, log levels) stays set
    command = COMMANDS[args.command]()
    if command.interruptible:
        _install_interrupt_handler()
    return _run(command, args, verbosity)


def _session(command: Command, args: argparse.Namespace, verbosity: int) -> int:
    # Optuna's and MLflow's own INFO lines ("A new study created in RDB ...") follow -v/-q: hidden by default
    with command.session(args, verbosity), library_logs(verbosity):
        if command.needs_keras:
            from tuner._backend import import_keras_quietly

            import_keras_quietly(show=verbosity > 0)
        return command.take_action(args)


def _run(command: Command, args: argparse.Namespace, verbosity: int) -> int:
    try:
        code = _session(command, args, verbosity)
        sys.stdout.flush()  # a reader that went away shows here, not as a message when Python exits
        return code
    except BrokenPipeError:
        # `tuner predict ... | head`: the rest of the output has no reader; stop quietly, as a Unix tool does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except ConfigError as err:
        if args.debug:
            raise
        print(mask_secrets(f"error: {err}").replace("\n", "\nerror: "), file=sys.stderr)
        return EXIT_FAILURE if isinstance(err, NoCompleteTrial) else EXIT_USAGE  # no complete trial is no bad input
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as err:
        if args.debug:
            raise
        trouble = storage_trouble(err, getattr(args, "storage", None) or default_storage())
        if trouble is not None:
            print(f"error: {trouble}", file=sys.stderr)
            return EXIT_FAILURE
        print(mask_secrets(f"error: {type(err).__name__}: {err} (run with --debug for the traceback)"), file=sys.stderr)
        return EXIT_FAILURE
