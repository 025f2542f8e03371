"""The command line: ``python -m tuner <command>`` (or ``tuner <command>``).

One class per subcommand with ``add_arguments(parser)`` and ``take_action(args) -> int``; help text
from the docstring. Results go to stdout, logs to stderr. Exit codes: 0 success, 1 runtime failure,
2 bad input (usage, space, dataset or settings), 130 interrupted. Nothing heavy (TensorFlow, MLflow,
Optuna) is imported until a command needs it, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from tuner.errors import ConfigError, Problem
from tuner.metrics import headline_metric

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _quiet_backends(verbosity: int) -> None:
    """Silence TensorFlow's C++ start-up chatter unless asked for more."""
    if verbosity <= 0:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING" if verbosity > 0 else "ERROR")
    import logging
    import warnings

    for name in ("mlflow", "alembic", "absl"):
        logging.getLogger(name).setLevel(logging.WARNING if verbosity > 0 else logging.ERROR)
    if verbosity <= 0:
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*signature.*")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


class Command:
    """Base class of subcommands."""

    name = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def take_action(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: sqlite:///mlruns/optuna.db).")


class StudyCommand(Command):
    """Create or resume a study and run it.

    With no arguments: the digits dataset, search_spaces/default.yaml, 12 trials, storage and tracking
    in mlruns/. Running the same command again resumes the study and runs only the missing trials.
    """

    name = "study"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--space", metavar="FILE", default="default",
                            help="search-space YAML file or shipped space name (default: default).")
        parser.add_argument("--dataset", metavar="NAME|PATH", default="digits",
                            help="built-in dataset name or a .csv/.parquet/.npz file (default: digits).")
        parser.add_argument("--target", metavar="COLUMN", help="target column of a CSV/Parquet dataset.")
        parser.add_argument("--task", choices=("auto", "binary", "multiclass", "regression"), default="auto",
                            help="task of the dataset (default: inferred).")
        parser.add_argument("--study", metavar="NAME", help="study name (default: <space>-<dataset>).")
        parser.add_argument("--n-trials", metavar="N", type=int, help="total finished trials wanted (default: 12).")
        parser.add_argument("--timeout", metavar="SECONDS", type=float, help="stop starting trials after this long.")
        parser.add_argument("--sampler", default="tpe", help="tpe (default), random, cmaes, gp, qmc, grid, nsga2.")
        parser.add_argument("--pruner", default="median",
                            help="median (default), hyperband, successive_halving, percentile, none.")
        parser.add_argument("--objective", metavar="METRIC[,METRIC]",
                            help="validation metric(s) to optimize (default: val_accuracy, or val_loss for "
                                 "regression); two give a multi-objective study, e.g. val_loss,gap_loss.")
        _add_store_options(parser)
        parser.add_argument("--tracking-uri", metavar="URI",
                            help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db); "
                                 "'none' turns tracking off.")
        parser.add_argument("--seed", type=int, default=0, help="seed of the sampler and the trials (default: 0).")
        parser.add_argument("--set", metavar="PARAM=VALUE", action="append", default=[], dest="overrides",
                            help="fix a parameter of the space, e.g. --set epochs=3 --set dropout=0.2 (repeatable).")
        parser.add_argument("--workers", type=int, default=1, metavar="N",
                            help="workers on this machine sharing the study: this process and N-1 worker "
                                 "processes (default: 1).")
        parser.add_argument("--recycle-after", type=int, default=50, metavar="TRIALS",
                            help="hand a worker's place to a fresh process after this many trials, to bound "
                                 "memory (default: 50).")
        parser.add_argument("--max-rss-mb", type=float, metavar="MIB",
                            help="hand a worker's place to a fresh process after a trial that leaves it above "
                                 "this memory.")
        parser.add_argument("--json", action="store_true", help="print the final summary as JSON.")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar.")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.space import load_space, parse_override
        from tuner.study import StudySettings

        overrides = dict(parse_override(o) for o in args.overrides)
        space = load_space(args.space)  # validated before TensorFlow or any storage is touched
        if overrides:
            space = space.with_fixed(overrides)
        from tuner.study import Study

        if args.workers < 1:
            raise ConfigError([Problem("--workers", "workers", "must be a positive integer", value=args.workers)])
        settings = StudySettings(study_name=args.study, sampler=args.sampler, pruner=args.pruner,
                                 objective=tuple(x.strip() for x in (args.objective or "").split(",") if x.strip()),
                                 storage=args.storage, tracking_uri=args.tracking_uri, seed=args.seed,
                                 timeout=args.timeout)
        if args.n_trials is not None:
            settings.n_trials = args.n_trials
        study = Study(space, args.dataset, settings,
                      dataset_options={"target": args.target, "task": args.task, "seed": args.seed})
        dataset = study.dataset
        s = study.settings
        from tqdm import tqdm

        print(f"study {s.study_name!r}: {dataset.name} ({dataset.task}, {len(dataset.x_train)} train / "
              f"{len(dataset.x_val)} val / {len(dataset.x_test)} test rows), space {space.name!r}, "
              f"objective {','.join(s.objective)}, {s.sampler} sampler, {s.pruner} pruner", file=sys.stderr)
        metric = s.objective[0]
        gap_key = "gap_mae" if dataset.task == "regression" else "gap_accuracy"

        def on_trial(report: Any) -> None:
            value = report.values[0] if report.values else None
            if report.state == "complete":
                line = (f"trial {report.number:>3}  complete  {metric}={_fmt(value)}  "
                        f"{gap_key}={_fmt(report.metrics.get(gap_key))}  {report.verdict}  "
                        f"epoch {report.best_epoch}  {_fmt(report.wall_time, 3)} s")
            else:
                line = f"trial {report.number:>3}  {report.state}  {report.fail_reason or ''}"
            tqdm.write(line, file=sys.stdout)

        try:
            show = not args.no_progress and not args.json
            from tuner.study import run_workers

            # this process is worker 0; --workers N starts N-1 more; recycling applies to every worker
            run_workers(study, args.workers, recycle_after=args.recycle_after, max_rss_mb=args.max_rss_mb,
                        progress=show, on_trial=None if args.json else on_trial,
                        verbosity=-1 if args.quiet else args.verbose, early=getattr(args, "early_workers", None))
        except KeyboardInterrupt:
            print(f"\ninterrupted: {study.n_finished()} finished trials are kept in {s.storage}; run the same "
                  "command again to resume.", file=sys.stderr)
            return EXIT_INTERRUPTED
        return _print_summary(study, as_json=args.json)


def _print_summary(study: Any, *, as_json: bool) -> int:
    s = study.settings
    trials = study.trials()
    done = [t for t in trials if t.state == "complete"]
    counts = {state: sum(1 for t in trials if t.state == state) for state in ("complete", "pruned", "fail")}
    try:
        best = study.best_trial()
    except ConfigError:
        best = None
    if as_json:
        _print_json({"study": s.study_name, "storage": s.storage, "objective": list(s.objective), "counts": counts,
                     "best": best.to_dict() if best else None, "test": study.best_test})
        return EXIT_OK if best else EXIT_FAILURE
    if best is None:
        print(f"study {s.study_name!r}: no complete trial ({counts}).")
        return EXIT_FAILURE
    sign = -1 if study.directions[0] == "maximize" else 1
    top = sorted(done, key=lambda t: sign * t.values[0])[:5]
    metric = headline_metric(study.dataset.task)
    rows = [{"trial": t.number, s.objective[0]: t.values[0], f"train_{metric}": t.metrics.get(f"train_{metric}"),
             f"val_{metric}": t.metrics.get(f"val_{metric}"), f"gap_{metric}": t.metrics.get(f"gap_{metric}"),
             "gap_loss": t.metrics.get("gap_loss"), "verdict": t.verdict, "epoch": t.best_epoch} for t in top]
    print(f"\nstudy {s.study_name!r}: {counts['complete']} complete, {counts['pruned']} pruned, "
          f"{counts['fail']} failed")
    print(_table(rows, list(rows[0])))
    shown = dict.fromkeys([s.objective[0], f"val_{metric}", f"gap_{metric}", "gap_loss"])
    figures = ", ".join(f"{k}={_fmt(best.metrics.get(k, best.values[0] if k == s.objective[0] else None))}"
                        for k in shown)
    print(f"\nbest trial {best.number}: {figures}, verdict {best.verdict}")
    if best.reason:
        print(f"  {best.reason} Suggestion: {best.suggestion}.")
    print("  params: " + ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items()))
    if study.best_test:
        print("  test split: " + ", ".join(f"{k}={_fmt(v)}" for k, v in study.best_test.items()))
    if best.mlflow_run_id:
        print(f"  MLflow run {best.mlflow_run_id}; open the UI with: python -m tuner ui")
    return EXIT_OK


class WorkerCommand(Command):
    """Join an existing study and run its trials until it holds its total (from any machine).

    The space, dataset and settings are read from the study's storage. For several machines use a
    PostgreSQL (or MySQL) storage URL that every machine reaches.
    """

    name = "worker"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--study", metavar="NAME", help="study name (required).")
        _add_store_options(parser)
        parser.add_argument("--join-file", metavar="PATH", help=argparse.SUPPRESS)  # from `study --workers N`
        parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)  # time.time() of the study's --timeout
        parser.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: the study's).")
        parser.add_argument("--parent-run-id", metavar="ID", help="MLflow parent run to record trials under.")
        parser.add_argument("--recycle-after", type=int, metavar="TRIALS",
                            help="exit with code 3 after this many trials (to be restarted with fresh memory).")
        parser.add_argument("--max-rss-mb", type=float, metavar="MIB",
                            help="exit with code 3 after a trial that leaves this process above this memory.")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.study import Study
        from tuner.study import EXIT_RECYCLE, read_join_file

        if args.join_file:  # started early by `study --workers N`: wait until that study exists
            info = read_join_file(args.join_file)
            if info is None:
                return EXIT_OK  # the study never started; the process that would have run it is gone
            args.study, args.storage = info["study"], info["storage"]
            args.tracking_uri, args.parent_run_id = info["tracking_uri"], info["parent_run_id"]
            args.recycle_after, args.max_rss_mb = info["recycle_after"], info["max_rss_mb"]
            args.deadline = args.deadline or info.get("deadline")
        if not args.study:
            raise ConfigError([Problem("--study", "study", "is required: the name of the study to join", value=None)])
        overrides: dict[str, Any] = {}
        if args.tracking_uri:
            overrides["tracking_uri"] = args.tracking_uri
        if args.parent_run_id:
            overrides["parent_run_id"] = args.parent_run_id
        timeout = None
        if args.deadline is not None:
            timeout = args.deadline - time.time()
            if timeout <= 0:
                return EXIT_OK  # the study's --timeout has passed: start nothing
        study = Study.from_storage(args.study, args.storage, **overrides)
        try:
            study.run(max_trials=args.recycle_after, max_rss_mb=args.max_rss_mb, timeout=timeout)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        return EXIT_RECYCLE if study.stopped_for == "recycle" else EXIT_OK


class BestCommand(Command):
    """Show the best trial of a study: parameters, honest metrics, gap, verdict and test score."""

    name = "best"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", metavar="STUDY", help="study name.")
        _add_store_options(parser)
        parser.add_argument("--json", action="store_true", help="print JSON.")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.study import load_study_results

        results = load_study_results(args.study, storage=args.storage)
        best = results.best()
        data = {"study": args.study, **best.to_dict(), "test": results.best_test()}
        if args.json:
            _print_json(data)
            return EXIT_OK
        print(f"best trial {best.number} of study {args.study!r} ({', '.join(results.objective)}: "
              f"{', '.join(_fmt(v) for v in best.values or [])})")
        print(f"  verdict: {best.verdict} - {best.reason}")
        for k, v in best.metrics.items():
            print(f"  {k}: {_fmt(v)}")
        for k, v in (results.best_test() or {}).items():
            print(f"  {k}: {_fmt(v)}")
        print("  params: " + ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items()))
        return EXIT_OK


class SpacesCommand(Command):
    """List, validate or show search spaces."""

    name = "spaces"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="{list,validate,show}", required=True)
        sub.add_parser("list", help="list the shipped spaces.")
        v = sub.add_parser("validate", help="validate space files (exit 2 on any problem).")
        v.add_argument("files", nargs="+", metavar="FILE")
        s = sub.add_parser("show", help="print a space in canonical form.")
        s.add_argument("file", metavar="FILE")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.space import load_space, shipped_spaces

        if args.action == "list":
            for name, path in shipped_spaces().items():
                space = load_space(path)
                print(f"{name:<28} {len(space.searched):>2} searched  {space.description}")
            return EXIT_OK
        if args.action == "show":
            print(load_space(args.file).to_yaml(), end="")
            return EXIT_OK
        code = EXIT_OK
        for f in args.files:
            try:
                space = load_space(f)
            except ConfigError as err:
                print(f"error: {err}".replace("\n", "\nerror: "), file=sys.stderr)
                code = EXIT_USAGE
            else:
                print(f"{f}: ok ({len(space.searched)} searched parameters: {', '.join(space.searched)})")
        return code


class DatasetsCommand(Command):
    """List the built-in datasets with their size, task and source, and the keras.datasets names (cache only)."""

    name = "datasets"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON.")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.data import list_datasets

        rows = list_datasets(keras_datasets=True)
        if args.json:
            _print_json(rows)
        else:
            print(_table(rows, list(rows[0])))
        return EXIT_OK


class UiCommand(Command):
    """Start the MLflow UI on this store (bound to 127.0.0.1 by default) and print its URL."""

    name = "ui"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tracking-uri", metavar="URI", help="MLflow store (default: sqlite:///mlruns/mlflow.db).")
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1).")
        parser.add_argument("--port", type=int, default=5000, help="port (default: 5000).")

    def take_action(self, args: argparse.Namespace) -> int:
        import subprocess

        from tuner._store import default_tracking_uri

        uri = args.tracking_uri or default_tracking_uri()
        cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", args.host,
               "--port", str(args.port)]
        print(f"MLflow UI for {uri} at http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
        try:
            return subprocess.call(cmd)
        except KeyboardInterrupt:
            return EXIT_OK


COMMANDS: dict[str, type[Command]] = {c.name: c for c in (StudyCommand, WorkerCommand, BestCommand, SpacesCommand,
                                                        DatasetsCommand, UiCommand)}


def _all_commands() -> dict[str, type[Command]]:
    """The built-in commands, and those defined in their own modules (imported here, after ``Command``)."""
    from tuner.cli._report import ReportCommand, SelectCommand

    for cls in (ReportCommand, SelectCommand):
        COMMANDS.setdefault(cls.name, cls)
    return COMMANDS


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log output.")
    common.add_argument("-q", "--quiet", action="store_true", help="errors only.")
    common.add_argument("--debug", action="store_true", help="show tracebacks.")
    parser = argparse.ArgumentParser(prog="tuner", parents=[common],
                                     description="Hyperparameter tuning for Keras with an honest generalization gap.")
    from tuner import __version__

    parser.add_argument("--version", action="version", version=f"tuner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, cls in _all_commands().items():
        doc = (cls.__doc__ or "").strip()
        p = sub.add_parser(name, parents=[common], help=doc.splitlines()[0] if doc else None, description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        cls().add_arguments(p)
    return parser


def _install_interrupt_handler() -> None:
    """First Ctrl-C: stop after marking the running trial; a second one exits at once."""
    state = {"count": 0}

    def handler(signum: int, frame: Any) -> None:
        state["count"] += 1
        if state["count"] > 1:
            os._exit(EXIT_INTERRUPTED)
        print("\ninterrupt: finishing up (press Ctrl-C again to exit at once)", file=sys.stderr)
        from tuner.study._study import request_stop

        request_stop()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbosity = -1 if args.quiet else args.verbose
    from tuner._logging import configure

    configure(verbosity)
    _quiet_backends(verbosity)
    if args.command in ("study", "worker"):
        _install_interrupt_handler()
    early = None
    if args.command == "study" and args.workers > 1:
        # This process is worker 0: its thread share must be set before Keras starts its runtime (below).
        # The other workers start now, so that their imports overlap ours; they join once the study exists.
        from tuner.study import EarlyWorkers, share_this_process

        share_this_process(args.workers)
        early = args.early_workers = EarlyWorkers(args.workers, verbosity=verbosity)
    try:
        if args.command in ("study", "spaces", "worker"):
            from tuner._backend import import_keras_quietly

            import_keras_quietly(show=verbosity > 0)
        return _run_command(args)
    finally:
        if early is not None and not early.adopted:  # the study never started (bad input, Ctrl-C)
            early.cancel()


def _run_command(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command]().take_action(args)
    except ConfigError as err:
        if args.debug:
            raise
        print(f"error: {err}".replace("\n", "\nerror: "), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as err:
        if args.debug:
            raise
        print(f"error: {type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
