"""``python -m tuner explain`` (what each regularizer of the winner bought; ``--confirm K``: is the winner luck?)
and ``python -m tuner refine`` (where to search next, as a space file).

The report stage is imported inside the actions, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from tuner._store import default_storage
from tuner.cli._base import EXIT_OK, Command, add_store_options, print_json, table

__all__ = ["ExplainCommand", "RefineCommand", "print_confirmation"]

_TRACKING_HELP = "MLflow store to log the table and plot to (default: the study's own); 'none' logs nothing."


def _rows(headers: list[str], rows: list[list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(headers, row, strict=True)) for row in rows]


def print_confirmation(data: Mapping[str, Any]) -> None:
    """Print a confirmation (``--confirm K``) as a table and its sentence."""
    from tuner.report import confirmation_table

    headers, rows = confirmation_table(data)
    print(f"\nis the winner luck? top {len(rows)} retrained over {len(data['seeds'])} seeds ({data['wall_time']} s)")
    print(table(_rows(headers, rows), headers))
    print(data["sentence"])


class ExplainCommand(Command):
    """Explain a study's winner: retrain it with each active regularizer switched off in turn.

    Over --seeds seeds, prints per regularizer the change in validation metric and in honest gap
    (switched off -> as found, paired by seed), e.g. "dropout 0.28: +0.6 pts validation accuracy
    (sd 0.3), gap 4.1 -> 2.2 pts". Built-in knobs are known (dropout-like knobs, kernel/bias/activity
    penalties, batch normalization, weight decay, augmentation, early stopping); for a model's own
    parameters say which value switches them off with --off NAME=VALUE. --confirm K also retrains the
    top K configurations and says whether the ranking holds. Both are stored on the study, logged to
    its MLflow study run (lessons/) and shown by `report --html`.

    Exit codes: 0 done; 1 a retraining error or no complete trial; 2 no such study, or a bad option.
    """

    name = "explain"
    needs_keras = True
    interruptible = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", metavar="STUDY", help="study name.")
        add_store_options(parser)
        parser.add_argument("--tracking-uri", metavar="URI", help=_TRACKING_HELP)
        parser.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds per configuration (default: 3).")
        parser.add_argument("--trial", type=int, metavar="NUMBER", help="trial to explain (default: the best).")
        parser.add_argument(
            "--off",
            metavar="PARAM=VALUE",
            action="append",
            default=[],
            help="the value that switches a parameter of your model off (repeatable).",
        )
        parser.add_argument(
            "--confirm",
            type=int,
            default=0,
            metavar="K",
            help="also retrain the top K configurations over the seeds: is the winner luck?",
        )
        parser.add_argument("--no-log", action="store_true", help="do not log to MLflow.")
        parser.add_argument("--json", action="store_true", help="print JSON.")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.report import ablation_table, explain
        from tuner.space import parse_override

        off = dict(parse_override(o) for o in args.off)
        found = explain(
            args.study,
            storage=args.storage or default_storage(),
            seeds=args.seeds,
            trial=args.trial,
            off=off,
            confirm_top=args.confirm,
            tracking_uri=args.tracking_uri,
            log=not args.no_log,
        )
        if args.json:
            print_json(found)
            return EXIT_OK
        a = found["ablation"]
        print(f"study {args.study!r}, trial {a['trial']}: {a['summary']} ({a['wall_time']} s)")
        if a["rows"]:
            headers, rows = ablation_table(a)
            print(table(_rows(headers, rows), headers))
            print()
            for row in a["rows"]:
                print(row["sentence"])
        if "confirmation" in found:
            print_confirmation(found["confirmation"])
        note = a["mlflow"].get("note")
        print(
            f"MLflow: {note}" if note else f"logged to MLflow run {a['mlflow']['run_id']} under lessons/",
            file=sys.stderr,
        )
        return EXIT_OK


class RefineCommand(Command):
    """Where to search next: write the study's space refined by where its best trials lie.

    A numeric range whose best trials crowd a bound moves that way; a log range too wide for where the
    best trials lie is narrowed around them; a categorical choice that never wins is dropped. Each
    change's reason is a YAML comment above it; the file loads as a space for the next study
    (`python -m tuner study --space next.yaml`). Without -o the file is printed.

    Exit codes: 0 done; 2 no such study, or a bad option.
    """

    name = "refine"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", metavar="STUDY", help="study name.")
        add_store_options(parser)
        parser.add_argument("-o", "--output", metavar="FILE", help="the refined space file to write.")
        parser.add_argument(
            "--top-fraction",
            type=float,
            default=0.25,
            metavar="F",
            help="share of complete trials counted as the best (at least 3; default: 0.25).",
        )
        parser.add_argument("--tracking-uri", metavar="URI", help=_TRACKING_HELP)
        parser.add_argument("--no-log", action="store_true", help="do not log to MLflow.")
        parser.add_argument("--json", action="store_true", help="print JSON.")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.report import refine

        found = refine(
            args.study,
            storage=args.storage or default_storage(),
            output=args.output,
            top_fraction=args.top_fraction,
            tracking_uri=args.tracking_uri,
            log=not args.no_log,
        )
        if args.json:
            print_json({k: v for k, v in found.items() if k not in ("trials", "space")})
            return EXIT_OK
        if not args.output:
            print(found["yaml"], end="")
            return EXIT_OK
        print(f"study {args.study!r}: {found['note']}; {len(found['changes'])} change(s)")
        for change in found["changes"]:
            print(f"  {change['param']}: {change['reason']}")
        print(f"wrote {args.output}", file=sys.stderr)
        return EXIT_OK
