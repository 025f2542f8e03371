"""``python -m tuner report`` and ``python -m tuner select``.

Exit codes, as the rest of the CLI: 0 success; 1 the study has no complete trial (the report still shows
the counts and the reasons trials failed or were pruned); 2 bad input (no such store or study, a bad
option, ``select`` on a single-objective study, a gap bound no Pareto-front trial meets).

The report stage is imported inside the methods; it imports Optuna, MLflow and Matplotlib only when a
report is built, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuner._store import default_storage
from tuner.cli._base import EXIT_FAILURE, EXIT_OK, Command, add_store_options, fmt, print_json

__all__ = ["ReportCommand", "SelectCommand"]


class ReportCommand(Command):
    """Report on a study: top trials, failures, best trial and test score, importances, gap analysis, plots.

    Reads only the Optuna storage and the MLflow store, so it works on any study, at any time. By
    default it prints tables; --json prints the same as data; --html FILE writes a self-contained page
    with the plots. --html or --plots DIR also writes the plots as PNG (and interactive HTML for
    Optuna's plots) and logs them to MLflow: study plots on the study run, learning curves on each
    trial's run, under plots/.

    Exit codes: 0 report written; 1 the study has no complete trial; 2 no such study or store, or a
    bad option.
    """

    name = "report"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from tuner.report import IMPORTANCE_EVALUATORS

        parser.add_argument("study", metavar="STUDY", help="study name.")
        add_store_options(parser)
        parser.add_argument(
            "--tracking-uri",
            metavar="URI",
            help="MLflow store (default: the one the study ran with, else $MLFLOW_TRACKING_URI, else "
            "the mlflow.db beside a SQLite --storage, else sqlite:///mlruns/mlflow.db); 'none' "
            "leaves MLflow out.",
        )
        parser.add_argument("--top", type=int, default=10, metavar="N", help="trials in the table (default: 10).")
        parser.add_argument(
            "--evaluator",
            choices=list(IMPORTANCE_EVALUATORS),
            default="fanova",
            help="Optuna importance evaluator: fanova (FanovaImportanceEvaluator, Optuna's default), "
            "ped_anova (PedAnovaImportanceEvaluator) or mean_decrease_impurity.",
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the importance evaluator (default: 0).")
        parser.add_argument(
            "--gap",
            default="gap_loss",
            metavar="GAP",
            help="gap analysed against the knobs (default: gap_loss; or gap_accuracy, gap_mae).",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON.")
        parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with the plots.")
        parser.add_argument(
            "--plots",
            metavar="DIR",
            help="folder of the plot files (default with --html: <FILE stem>_plots beside it).",
        )
        parser.add_argument("--no-log", action="store_true", help="do not log the plots to MLflow.")
        parser.add_argument(
            "--plotlyjs",
            choices=("inline", "cdn"),
            default="inline",
            help="inline (default: HTML works offline) or cdn (smaller files).",
        )

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.report import build_report, make_plots, print_report, report_json, write_html
        from tuner.study import load_study_results

        storage = args.storage or default_storage()
        results = load_study_results(args.study, storage=storage)
        report = build_report(
            results,
            storage=storage,
            tracking_uri=args.tracking_uri,
            top=args.top,
            evaluator=args.evaluator,
            seed=args.seed,
            gap=args.gap,
        )
        if not report.ok:
            if args.json:
                print(report_json(report))
            else:
                print_report(report)
            print(f"error: {report.message}", file=sys.stderr)
            return EXIT_FAILURE
        if args.html or args.plots:
            out_dir = Path(args.plots) if args.plots else Path(args.html).with_name(Path(args.html).stem + "_plots")
            make_plots(
                report,
                results,
                out_dir,
                log=not args.no_log,
                evaluator=args.evaluator,
                seed=args.seed,
                plotlyjs=args.plotlyjs,
            )
        if args.html:
            write_html(report, args.html, plotlyjs=args.plotlyjs)
        if args.json:
            print(report_json(report))
        else:
            print_report(report)
        if args.html:
            print(f"wrote {args.html}", file=sys.stderr)
        return EXIT_OK


class SelectCommand(Command):
    """Choose the trade-off of a multi-objective study: one trial on its Pareto front, by a rule.

    --rule knee (default) takes the front's knee point; --rule gap_bound --gap-bound X takes the best
    validation figure among front trials whose gap is at most X. The choice is stored in the study
    (user attribute selected_trial): `best` and `report` return it from then on. --clear forgets it.

    Exit codes: 0 selected; 1 the study has no complete trial; 2 no such study, a single-objective
    study, or a bound no front trial meets.
    """

    name = "select"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from tuner.report import SELECTION_RULES

        parser.add_argument("study", metavar="STUDY", help="study name.")
        add_store_options(parser)
        parser.add_argument("--rule", choices=SELECTION_RULES, default="knee", help="knee (default) or gap_bound.")
        parser.add_argument("--gap-bound", type=float, metavar="X", help="largest gap allowed (gap_bound rule).")
        parser.add_argument("--clear", action="store_true", help="forget the stored selection.")
        parser.add_argument("--json", action="store_true", help="print JSON.")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.report import clear_selection, select_trial
        from tuner.study import StudyRecord, load_study_results

        results = load_study_results(args.study, storage=args.storage)
        if results.counts()["complete"] == 0 and results.multi_objective:
            counts = {k: v for k, v in results.counts().items() if v}
            print(
                f"error: study {args.study!r} has no complete trial to select ({counts or 'no trials'}).",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        if args.clear:
            clear_selection(results)
            print(f"study {args.study!r}: selection cleared; best is trial {results.best().number} again.")
            return EXIT_OK
        chosen = select_trial(results, args.rule, gap_bound=args.gap_bound)
        selection = StudyRecord(results.study).selection or {}
        if args.json:
            print_json({"study": args.study, "selection": selection, "trial": chosen.to_dict()})
            return EXIT_OK
        values = ", ".join(f"{k}={fmt(v)}" for k, v in zip(results.objective, chosen.values or [], strict=False))
        print(
            f"study {args.study!r}: selected trial {chosen.number} by the {args.rule} rule "
            f"(front: {selection.get('front')}): {values}, verdict {chosen.verdict}"
        )
        return EXIT_OK
