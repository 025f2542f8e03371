"""``python -m tuner study`` (create or resume a study and run it) and ``python -m tuner worker`` (join one).

TensorFlow, Optuna and MLflow are imported inside the actions, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import statistics
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tuner._backend import BACKENDS, choose_backend, pick_backend
from tuner._store import default_tracking_uri, mask_secrets
from tuner.cli._base import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Command,
    add_store_options,
    fmt,
    print_json,
    table,
)
from tuner.errors import ConfigError, Problem
from tuner.metrics import headline_metric, ranked
from tuner.space import CATEGORICAL, TASKS

if TYPE_CHECKING:  # the study stage imports Keras's helpers: --help does not
    from tuner.study import Study

__all__ = ["StudyCommand", "WorkerCommand"]


class StudyCommand(Command):
    """Create or resume a study and run it.

    With no arguments: the digits dataset (8x8 images), the space that suits it (image_default, a small CNN),
    12 trials, storage and tracking in mlruns/. Running the same command again resumes the study and runs only
    the missing trials.
    """

    name = "study"
    needs_keras = True
    interruptible = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--space",
            metavar="FILE",
            help="search-space YAML file or shipped space name (default: the one that suits the "
            "data: image_default for images, sequence_default for sequences, default for "
            "tables; with --model, what the model declares).",
        )
        parser.add_argument(
            "--model",
            metavar="FILE.py:NAME",
            help="tune your own model: a build(hp) function, a keras_tuner.HyperModel or a "
            "build(params, input_shape, *, task, n_outputs) function, in a file or an "
            "importable module (MODULE:NAME).",
        )
        parser.add_argument(
            "--dataset",
            metavar="NAME|PATH",
            default="digits",
            help="built-in dataset name or a .csv/.parquet/.npz file (default: digits).",
        )
        parser.add_argument("--target", metavar="COLUMN", help="target column of a CSV/Parquet dataset.")
        parser.add_argument(
            "--task", choices=("auto", *TASKS), default="auto", help="task of the dataset (default: inferred)."
        )
        parser.add_argument(
            "--categorical",
            choices=CATEGORICAL,
            default="error",
            help="text columns of a CSV/Parquet dataset: refuse them (error, the default) or one-hot "
            "encode them (onehot; the exported best model encodes raw rows the same way).",
        )
        parser.add_argument(
            "--image-shape",
            metavar="H,W,C",
            help="the rows are flat images of this shape (a CSV or .npz of pixels, e.g. 8,8,1): the "
            "default space is then the CNN, and family cnn sees images.",
        )
        parser.add_argument(
            "--cv",
            metavar="K",
            type=int,
            help="score each trial over K stratified folds of the training and validation rows and "
            "refit the best on all of them before the test split (default: 5 below 1,000 such "
            "rows, else off); 0 turns it off.",
        )
        parser.add_argument(
            "--register",
            metavar="NAME",
            help="register the best model in the MLflow Model Registry as NAME and point the alias "
            "'champion' at the new version (needs tracking on).",
        )
        parser.add_argument("--study", metavar="NAME", help="study name (default: <space>-<dataset>).")
        parser.add_argument("--n-trials", metavar="N", type=int, help="total finished trials wanted (default: 12).")
        parser.add_argument("--timeout", metavar="SECONDS", type=float, help="stop starting trials after this long.")
        parser.add_argument("--sampler", default="tpe", help="tpe (default), random, cmaes, gp, qmc, grid, nsga2.")
        parser.add_argument(
            "--pruner", default="median", help="median (default), hyperband, successive_halving, percentile, none."
        )
        parser.add_argument(
            "--objective",
            metavar="METRIC[,METRIC]",
            help="validation metric(s) to optimize (default: val_accuracy, or val_loss for "
            "regression); two give a multi-objective study, e.g. val_loss,gap_loss.",
        )
        add_store_options(parser)
        parser.add_argument(
            "--tracking-uri",
            metavar="URI",
            help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db); "
            "'none' turns tracking off.",
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the sampler and the trials (default: 0).")
        parser.add_argument(
            "--set",
            metavar="PARAM=VALUE",
            action="append",
            default=[],
            dest="overrides",
            help="fix a parameter of the space, e.g. --set epochs=3 --set dropout=0.2 (repeatable).",
        )
        parser.add_argument(
            "--workers",
            default="auto",
            metavar="N|auto",
            help="workers on this machine sharing the study: this process and N-1 worker processes; auto (the "
            "default) runs one per core for a small model, else one (a large model, a GPU, one core); "
            "$TUNER_WORKERS overrides auto.",
        )
        parser.add_argument(
            "--ray",
            nargs="?",
            const="local",
            metavar="ADDRESS",
            help="run the trials on Ray: 'auto' joins the cluster `ray start` runs on this machine, "
            "HOST:PORT a cluster this machine is a node of; no address starts Ray here. "
            '--workers N trials run at once. Needs pip install "honest-tuner[ray]".',
        )
        parser.add_argument(
            "--cpus-per-trial",
            type=float,
            default=1.0,
            metavar="C",
            help="with --ray: CPUs each trial asks Ray for (default: 1).",
        )
        parser.add_argument(
            "--gpus-per-trial",
            type=float,
            default=0.0,
            metavar="G",
            help="with --ray: GPUs each trial asks Ray for; fractions pack trials on a GPU, e.g. "
            "0.25 runs four on one (default: 0).",
        )
        parser.add_argument(
            "--recycle-after",
            type=int,
            default=50,
            metavar="TRIALS",
            help="hand a worker's place to a fresh process after this many trials, to bound memory (default: 50).",
        )
        parser.add_argument(
            "--max-rss-mb",
            type=float,
            metavar="MIB",
            help="hand a worker's place to a fresh process after a trial that leaves it above this memory.",
        )
        parser.add_argument("--json", action="store_true", help="print the final summary as JSON.")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar.")
        parser.add_argument(
            "--confirm",
            type=int,
            default=0,
            metavar="K",
            help="at the end, retrain the top K configurations over --confirm-seeds seeds and say "
            "whether the ranking holds (is the winner luck?).",
        )
        parser.add_argument(
            "--confirm-seeds", type=int, default=3, metavar="N", help="seeds of --confirm (default: 3)."
        )
        parser.add_argument(
            "--backend",
            choices=BACKENDS,
            default="auto",
            help="Keras backend of this study and its workers (default: auto = $KERAS_BACKEND, "
            "else keras.json, else tensorflow; --backend jax is faster for the built-in models on CPU).",
        )

    @contextlib.contextmanager
    def session(self, args: argparse.Namespace, verbosity: int) -> Iterator[None]:
        """With ``--workers N``: this process is worker 0, and the other workers start now.

        ``--workers auto`` is decided here from what is known before Keras starts (cores, GPUs, trials, memory),
        so that this process's thread share applies; once the data and space are loaded, :meth:`take_action`
        checks the model's size, and a large model runs in one worker process with every core instead.
        """
        from tuner.study import DEFAULT_N_TRIALS, resolve_workers, visible_gpus

        gpus = visible_gpus()
        why = pick_backend(gpu=bool(gpus))[1] if args.backend == "auto" else f"--backend {args.backend}"
        args.backend = choose_backend(args.backend)  # KERAS_BACKEND, before Keras or any worker starts
        args.backend_reason = why
        if args.ray is not None:
            from tuner.study import RayCluster

            n, args.workers_reason = (
                (1, "auto: one trial at a time on Ray; --workers N runs N")
                if args.workers == "auto"
                else resolve_workers(args.workers, n_trials=1)
            )
            args.workers = n
            # the options, then the cluster: a dead address stops us in seconds, before anything is written
            args.executor = RayCluster(
                args.ray, workers=args.workers, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial
            )
            args.executor.warm_up()  # the runners start (and import Keras) while this process loads the data
        else:
            args.auto_workers = args.workers == "auto"
            args.workers, args.workers_reason = resolve_workers(
                args.workers, n_trials=args.n_trials or DEFAULT_N_TRIALS, gpus=gpus
            )
            args.auto_workers = args.auto_workers and args.workers_reason.startswith("auto")
        if args.ray is None and args.workers > 1:
            from tuner.study import share_this_process

            # this process's thread share: environment variables that must be set before Keras starts its
            # runtime, which checking the space's Keras names (activations, initializers) may do
            share_this_process(args.workers)
        args.inputs = _inputs(args)  # a bad space or option is refused before workers, storages or tracking start
        from tuner.tracking import probe_tracking

        probe_tracking(args.tracking_uri or default_tracking_uri())  # fail fast: before workers or storage
        early = None
        if args.workers > 1 and args.ray is None:
            # The other workers start now, so that their imports overlap ours; they join once the study exists.
            from tuner.study import EarlyWorkers

            early = args.early_workers = EarlyWorkers(args.workers, verbosity=verbosity)
        try:
            yield
        finally:
            if early is not None and not early.adopted:  # the study never started (bad input, Ctrl-C)
                early.cancel()

    def take_action(self, args: argparse.Namespace) -> int:
        from tqdm import tqdm

        from tuner.study import ProcessPool, Study

        overrides, space, settings = args.inputs
        options = {"target": args.target, "task": args.task, "seed": args.seed}
        if args.categorical != "error":
            options["categorical"] = args.categorical
        study = Study(
            space,
            args.dataset,
            settings,
            dataset_options=options,
            hypermodel=args.model,
            fixed=overrides if args.model or space is None else None,
        )
        dataset = study.dataset
        s = study.settings
        in_process = True
        if getattr(args, "auto_workers", False):  # the model's size is known now
            from tuner.study import resolve_workers

            n, why = resolve_workers(
                "auto",
                n_trials=s.n_trials,
                macs=study.model_macs(),
                data_mb=dataset.x_train.nbytes * 2 / 2**20,
            )
            if n < args.workers:  # a large model (or data the memory holds fewer copies of): fresh worker
                # processes, each with its share of the cores (this one took the share of the first count)
                early = getattr(args, "early_workers", None)
                if early is not None:
                    early.cancel()
                    args.early_workers = None
                args.workers, args.workers_reason, in_process = n, why, False
            else:
                args.workers_reason = why
        print(
            f"study {s.study_name!r}: {dataset.name} ({dataset.task}, {len(dataset.x_train)} train / "
            f"{len(dataset.x_val)} val / {len(dataset.x_test)} test rows), space {study.space.name!r}, "
            f"objective {','.join(s.objective)}, {s.sampler} sampler, "
            f"{'no pruning' if s.pruner == 'none' else s.pruner + ' pruner'}, "
            f"{args.workers} worker{'s' if args.workers != 1 else ''} ({args.workers_reason})",
            file=sys.stderr,
        )
        print(f"  backend {s.backend} ({args.backend_reason})", file=sys.stderr)
        for line in study.choices:  # the space the data chose, cross-validation on or off: why, and how to change it
            print(f"  {line}", file=sys.stderr)
        metric = s.objective[0]
        gap_key = f"gap_{headline_metric(dataset.task)}"
        shown = [*s.objective, *([gap_key] if gap_key not in s.objective else [])]  # each objective, then the gap

        def on_trial(report: Any) -> None:
            if report.state == "complete":
                values = dict(zip(s.objective, report.values or [], strict=False))
                spread = (report.cv_spread or {}).get(metric)
                folds = f" ±{fmt(spread, 2)} over {len(report.cv_folds or ())} folds" if spread is not None else ""
                line = (
                    f"trial {report.number:>3}  complete  "
                    + "  ".join(
                        f"{k}={fmt(values.get(k, report.metrics.get(k)))}" + (folds if k == metric else "")
                        for k in shown
                    )
                    + f"  {report.verdict}  epoch {report.best_epoch}  {fmt(report.wall_time, 3)} s"
                )
            else:
                line = f"trial {report.number:>3}  {report.state}  {report.fail_reason or ''}"
            tqdm.write(line, file=sys.stdout)

        try:
            show = not args.no_progress and not args.json
            # Ray (--ray), or the process pool: this process is worker 0, --workers N starts N-1 more, and
            # recycling applies to every worker
            executor = getattr(args, "executor", None) or ProcessPool(
                args.workers,
                recycle_after=args.recycle_after,
                max_rss_mb=args.max_rss_mb,
                verbosity=-1 if args.quiet else args.verbose,
                early=getattr(args, "early_workers", None),
                in_process=in_process,
            )
            executor.run(study, progress=show, on_trial=None if args.json else on_trial)
        except KeyboardInterrupt:
            print(
                f"\ninterrupted: {study.n_finished()} finished trials are kept in {mask_secrets(s.storage)}; "
                "run the same command again to resume.",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        code = _print_summary(study, as_json=args.json)
        if args.register and code == EXIT_OK:
            from tuner.study import register_best_model

            version = register_best_model(study, args.register)
            print(
                f"registered as {args.register!r} version {version}, alias 'champion': "
                f"models:/{args.register}@champion",
                file=sys.stderr,
            )
        if args.confirm and code == EXIT_OK:
            from tuner.cli._explain import print_confirmation
            from tuner.report import confirm

            found = confirm(study, k=args.confirm, seeds=args.confirm_seeds)
            if not args.json:
                print_confirmation(found)
        return code


def _print_summary(study: Study, *, as_json: bool) -> int:
    s = study.settings
    trials = study.trials()
    done = [t for t in trials if t.state == "complete"]
    counts = {state: sum(1 for t in trials if t.state == state) for state in ("complete", "pruned", "fail")}
    try:
        best = study.best_trial()
    except ConfigError:
        best = None
    if as_json:
        print_json(
            {
                "study": s.study_name,
                "storage": mask_secrets(s.storage),
                "objective": list(s.objective),
                "counts": counts,
                "programs_compiled": study.programs_compiled,
                "best": best.to_dict() if best else None,
                "test": study.best_test,
            }
        )
        return EXIT_OK if best else EXIT_FAILURE
    if best is None:
        print(f"study {s.study_name!r}: no complete trial ({counts}).")
        return EXIT_FAILURE
    top = ranked(done, study.directions[0])[:5]
    metric = headline_metric(study.dataset.task)
    rows = [
        {
            "trial": t.number,
            s.objective[0]: t.values[0] if t.values else None,  # a complete trial has its values
            f"train_{metric}": t.metrics.get(f"train_{metric}"),
            f"val_{metric}": t.metrics.get(f"val_{metric}"),
            f"gap_{metric}": t.metrics.get(f"gap_{metric}"),
            "gap_loss": t.metrics.get("gap_loss"),
            "verdict": t.verdict,
            "epoch": t.best_epoch,
        }
        for t in top
    ]
    print(
        f"\nstudy {s.study_name!r}: {counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed"
    )
    print(table(rows, list(rows[0])))
    print(_programs_line(trials, s.backend))
    shown = dict.fromkeys([s.objective[0], f"val_{metric}", f"gap_{metric}", "gap_loss"])
    figures = ", ".join(
        f"{k}={fmt(best.metrics.get(k, best.values[0] if best.values and k == s.objective[0] else None))}"
        for k in shown
    )
    print(f"\nbest trial {best.number}: {figures}, verdict {best.verdict}")
    if best.cv_folds:
        spread = ", ".join(
            f"{k} ±{fmt((best.cv_spread or {}).get(k), 2)}" for k in shown if k in (best.cv_spread or {})
        )
        verdicts = ", ".join(str(f.get("verdict")) for f in best.cv_folds)
        print(
            f"  means over {len(best.cv_folds)} folds (spread: {spread}); fold verdicts: {verdicts}; refitted on "
            f"the training and validation rows for {best.best_epoch} epochs before the test split"
        )
    if best.reason:
        print(f"  {best.reason} Suggestion: {best.suggestion}.")
    print("  params: " + ", ".join(f"{k}={fmt(v)}" for k, v in best.params.items()))
    if study.best_test:
        print("  test split: " + ", ".join(f"{k}={fmt(v)}" for k, v in study.best_test.items()))
    if best.mlflow_run_id:
        print(
            f"  MLflow run {best.mlflow_run_id}; open the UI on this study's runs with: "
            f"python -m tuner ui {shlex.quote(s.study_name or '')}"
        )
    return EXIT_OK


def _programs_line(trials: list[Any], backend: str) -> str:
    """``24 trials, 30 programs compiled (TensorFlow graphs traced)``: what the trials paid in compilation."""
    from tuner.training import PROGRAM_WORDS

    counted = [t.programs_compiled for t in trials if t.programs_compiled is not None]
    if not counted:
        return f"{len(trials)} trials; programs compiled: not recorded (a study made before tuner counted them)"
    words = PROGRAM_WORDS.get(backend, "as the backend counts them")
    median = statistics.median(counted)
    return f"{len(counted)} trials, {sum(counted)} programs compiled ({words}; median {median:g} a trial)"


def _inputs(args: argparse.Namespace) -> tuple[dict[str, Any], Any, Any]:
    """The ``--set`` overrides, the space and the study settings, validated without Keras, storages or reading data.

    A ``--model``'s own parameters are known once it loads, so its overrides are checked then.
    """
    from tuner.space import load_space, parse_override
    from tuner.study import StudySettings

    overrides = dict(parse_override(o) for o in args.overrides)
    space = load_space(args.space) if args.space else None  # None: the study picks the space that suits the data
    if overrides and not args.model:
        if space is None:
            load_space("default").with_fixed(overrides)  # checked now; applied to the chosen space
        else:
            space = space.with_fixed(overrides)
    settings = StudySettings(
        study_name=args.study,
        sampler=args.sampler,
        pruner=args.pruner,
        objective=tuple(x.strip() for x in (args.objective or "").split(",") if x.strip()),
        storage=args.storage,
        tracking_uri=args.tracking_uri,
        seed=args.seed,
        timeout=args.timeout,
        backend=args.backend,
        cv=args.cv,
        image_shape=args.image_shape,
    )  # checked by the study against the data's rows
    if args.n_trials is not None:
        settings.n_trials = args.n_trials
    settings.check_options()  # what needs neither the data nor Keras
    from tuner.data import check_source

    check_source(args.dataset, target=args.target)  # a name or a file that is there; read once Keras runs
    if args.register and args.tracking_uri == "none":
        raise ConfigError(
            [
                Problem(
                    "--register",
                    "register",
                    "needs tracking on: the Model Registry is MLflow's; drop --tracking-uri none",
                    value=args.register,
                )
            ]
        )
    return overrides, space, settings


class WorkerCommand(Command):
    """Join an existing study and run its trials until it holds its total (from any machine).

    The space, dataset and settings are read from the study's storage. For several machines use a
    PostgreSQL (or MySQL) storage URL that every machine reaches.
    """

    name = "worker"
    needs_keras = True
    interruptible = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--study", metavar="NAME", help="study name (required).")
        add_store_options(parser)
        parser.add_argument("--join-file", metavar="PATH", help=argparse.SUPPRESS)  # from `study --workers N`
        parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)  # time.time() of the study's --timeout
        parser.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: the study's).")
        parser.add_argument("--parent-run-id", metavar="ID", help="MLflow parent run to record trials under.")
        parser.add_argument(
            "--recycle-after",
            type=int,
            metavar="TRIALS",
            help="exit with code 3 after this many trials (to be restarted with fresh memory).",
        )
        parser.add_argument(
            "--max-rss-mb",
            type=float,
            metavar="MIB",
            help="exit with code 3 after a trial that leaves this process above this memory.",
        )

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.study import EXIT_RECYCLE, Study, read_join_file

        if args.join_file:  # started by `study --workers N`: wait until that study exists, then join it
            join = read_join_file(args.join_file)
            if join is None:
                return EXIT_OK  # the study never started; the process that would have run it is gone
            args.study, args.storage = join.study, join.storage
            args.tracking_uri, args.parent_run_id = join.tracking_uri, join.parent_run_id
            args.recycle_after, args.max_rss_mb, args.deadline = join.recycle_after, join.max_rss_mb, join.deadline
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
        except ConfigError as err:  # kept on its trial: `study --workers N` prints it, once
            if os.environ.get("TUNER_SUPERVISOR_PID") and any(t.fail_reason == str(err) for t in study.trials()):
                return EXIT_USAGE
            raise
        return EXIT_RECYCLE if study.stopped_for == "recycle" else EXIT_OK
