"""The study engine: Optuna studies over a search space, each trial a real Keras training run.

A :class:`Study` ties a :class:`~tuner.SearchSpace`, a :class:`~tuner.Dataset` and
:class:`StudySettings` together. ``Study.run()`` creates or resumes the named Optuna study (SQLite in
``mlruns/optuna.db`` by default), runs trials until the study holds ``n_trials`` finished trials, and
records everything in MLflow (:mod:`tuner.tracking`). Each trial stores its honest gap, verdict, chosen
epoch, parameter count and wall time as Optuna user attributes.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tuner._logging import get_logger
from tuner._store import default_storage, default_tracking_uri, journal_path, sqlite_path
from tuner.errors import ConfigError, Problem, TrialFailed
from tuner.metrics import direction, headline_metric
from tuner.study._budget import budget_counts
from tuner.study._results import StudyResults, TrialReport

__all__ = ["Study", "StudySettings", "TrialReport", "create_study", "run_study", "SAMPLERS", "PRUNERS",
           "default_storage", "objective_direction"]

_logger = get_logger(__name__)

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc", "grid", "nsga2")
PRUNERS = ("median", "hyperband", "successive_halving", "percentile", "none")
DEFAULT_N_TRIALS = 12


objective_direction = direction  # the public name the study API has always had


@dataclasses.dataclass
class StudySettings:
    """How a study runs. The CLI and the Python API share these defaults.

    Args:
        study_name: the Optuna study (and MLflow experiment) name. Defaults to ``<space>-<dataset>``.
        n_trials: the total number of finished trials wanted in the study; a resumed study runs only
            what is missing. Defaults to `12`.
        timeout: stop starting trials after this many seconds. Defaults to `None`.
        sampler: one of ``tpe``, ``random``, ``cmaes``, ``gp``, ``qmc``, ``grid``, ``nsga2``. Defaults to `"tpe"`.
        pruner: one of ``median``, ``hyperband``, ``successive_halving``, ``percentile``, ``none``.
            Defaults to `"median"`.
        objective: validation metrics to optimize (``val_accuracy``, ``val_loss``, ``gap_loss``, ...);
            two or more make a multi-objective study. Defaults to ``val_accuracy`` for classification
            and ``val_loss`` for regression.
        storage: any Optuna storage URL. Defaults to ``sqlite:///mlruns/optuna.db``.
        tracking_uri: any MLflow tracking URI; ``None`` uses ``MLFLOW_TRACKING_URI`` or
            ``sqlite:///mlruns/mlflow.db``. ``"none"`` turns tracking off.
        seed: seeds the sampler and each trial (``seed + trial number``). Defaults to `0`.
        gap_subset: rows of the training split evaluated for the honest gap. Defaults to `10_000`.
        log_best_model: log the best model to MLflow at the end. Defaults to `True`.
        pruner_startup_trials: trials completed before the median/percentile pruner may prune.
            Defaults to `5`.
        heartbeat_interval: seconds between a running trial's heartbeats (RDB storages). Defaults to `10`.
        grace_period: seconds without a heartbeat after which a trial's worker counts as dead: the trial
            is failed and retried once with the same parameters. Defaults to `30`.
        parent_run_id: record trials under this MLflow parent run instead of starting one (used by
            worker processes). Defaults to `None`.
    """

    study_name: str | None = None
    n_trials: int = DEFAULT_N_TRIALS
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    objective: tuple[str, ...] = ()
    storage: str | None = None
    tracking_uri: str | None = None
    seed: int = 0
    gap_subset: int | None = 10_000
    log_best_model: bool = True
    pruner_startup_trials: int = 5
    heartbeat_interval: int = 10
    grace_period: int = 30
    parent_run_id: str | None = None

    def validate(self, task: str) -> None:
        problems = []
        if self.sampler not in SAMPLERS:
            problems.append(Problem("--sampler", "sampler", f"must be one of {list(SAMPLERS)}", value=self.sampler))
        if self.pruner not in PRUNERS:
            problems.append(Problem("--pruner", "pruner", f"must be one of {list(PRUNERS)}", value=self.pruner))
        if not isinstance(self.n_trials, int) or self.n_trials < 1:
            problems.append(Problem("--n-trials", "n_trials", "must be a positive integer", value=self.n_trials))
        if self.timeout is not None and not self.timeout > 0:
            problems.append(Problem("--timeout", "timeout", "must be a positive number of seconds", value=self.timeout))
        metric = headline_metric(task)
        allowed = {f"{p}_{m}" for p in ("val", "gap", "train") for m in ("loss", metric)}
        if task == "regression":
            allowed |= {"val_rmse", "gap_rmse", "train_rmse"}
        for obj in self.objective:
            if obj not in allowed:
                problems.append(Problem("--objective", "objective", f"must be one of {sorted(allowed)} for a {task} task",
                                        value=obj))
        if len(self.objective) != len(set(self.objective)):
            problems.append(Problem("--objective", "objective", "must not repeat a metric", value=list(self.objective)))
        if problems:
            raise ConfigError(problems)


_STOP = threading.Event()


def request_stop() -> None:
    """Ask running studies to stop: the running trial is failed as ``interrupted`` at its next epoch end.

    The CLI calls this from its SIGINT handler, so an interrupt swallowed somewhere inside a library
    still stops the study.
    """
    _STOP.set()


def stop_requested() -> bool:
    """Whether :func:`request_stop` was called in this process."""
    return _STOP.is_set()


def _check_stop() -> None:
    if _STOP.is_set():
        raise KeyboardInterrupt


class _StopCallback:
    """Raises ``KeyboardInterrupt`` before a batch (or a ``steps_per_execution`` group) once a stop was requested.

    It checks at batch *begin*: a callback with ``on_train_batch_end`` would make Keras wait for every
    batch's results, which stops JAX from dispatching the next batch asynchronously.
    """

    def __init__(self) -> None:
        import keras

        class _Callback(keras.callbacks.Callback):
            def on_train_batch_begin(cb_self, batch: int, logs: dict | None = None) -> None:  # noqa: N805
                _check_stop()

            def on_epoch_end(cb_self, epoch: int, logs: dict | None = None) -> None:  # noqa: N805
                _check_stop()

        self.callback = _Callback()


class _StaleTrialHandler:
    """Called for a trial whose worker stopped sending heartbeats: retry it once and close its MLflow run."""

    def __init__(self, tracking_uri: str | None, grace_period: int) -> None:
        import optuna

        self.tracking_uri = tracking_uri
        self.grace_period = grace_period
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)

    def __call__(self, study: Any, trial: Any) -> None:
        self.retry(study, trial)
        reason = f"worker died: no heartbeat for more than {self.grace_period} s"
        study.set_user_attr(f"fail_reason.{trial.number}", reason)
        _logger.warning("trial %d: %s; it is retried with the same parameters", trial.number, reason)
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id and self.tracking_uri != "none":
            try:
                from mlflow import MlflowClient

                client = MlflowClient(tracking_uri=self.tracking_uri or default_tracking_uri())
                client.set_tag(run_id, "state", "failed")
                client.set_tag(run_id, "fail_reason", reason)
                client.set_terminated(run_id, status="FAILED")
            except Exception as err:  # the Optuna side must not depend on MLflow being reachable
                _logger.warning("could not close the MLflow run of dead trial %d: %s", trial.number, err)


def _device() -> str:
    """The device this process trains on, e.g. ``cpu:0`` or ``gpu:0 (CUDA_VISIBLE_DEVICES=1)``."""
    import keras

    try:
        devices = keras.distribution.list_devices()
    except Exception:
        devices = []
    name = str(devices[0]).lower() if devices else "cpu"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"{name} (CUDA_VISIBLE_DEVICES={visible})" if visible and "gpu" in name else name


def rss_mb() -> float:
    """This process's resident memory in MiB (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _PruningCallback:
    """Reports the first objective each epoch to Optuna and prunes when the pruner says so.

    ``trial.should_prune()`` reads the trial and the study's complete trials from the storage (a few
    milliseconds per epoch on SQLite); it is only asked from ``first_step`` on, the first epoch at which
    the pruner can prune at all (None: never, e.g. ``--pruner none``). See :meth:`Study._first_prunable_step`.
    """

    def __init__(self, trial: Any, monitor: str, first_step: int | None = 1) -> None:
        import keras

        class _Callback(keras.callbacks.Callback):
            def on_epoch_end(cb_self, epoch: int, logs: dict | None = None) -> None:  # noqa: N805
                import optuna

                value = (logs or {}).get(monitor)
                if value is None or not math.isfinite(float(value)):
                    return
                step = epoch + 1
                trial.report(float(value), step=step)
                if first_step is not None and step >= first_step and trial.should_prune():
                    cb_self.model.stop_training = True
                    raise optuna.TrialPruned(f"pruned at epoch {step} ({monitor}={float(value):.4g})")

        self.callback = _Callback()


def _sqlite_wal(db: Path) -> None:
    """Put a SQLite study database in write-ahead-log mode (persistent in the file).

    Readers then never block the writer, and a commit costs one append instead of a journal round trip:
    ``trial.report`` plus ``should_prune`` went from 6.5 to 3.0 ms per epoch on this project's machine
    (``benchmarks/report_cost.py``). WAL needs a local file
    system (not NFS). With ``TUNER_SQLITE_WAL=0`` tuner leaves the journal mode alone: a new database
    keeps SQLite's rollback journal; one already in WAL mode stays so until ``PRAGMA journal_mode=DELETE``.
    """
    import sqlite3

    conn = sqlite3.connect(str(db), timeout=60)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def _sqlite_synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    """``synchronous=NORMAL``: in WAL mode still safe against corruption; fsyncs at checkpoints only."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Study:
    """A tuning study: a search space, a dataset, settings, an Optuna study and its MLflow records.

    Args:
        space: the :class:`~tuner.SearchSpace` (or a path / shipped space name).
        dataset: a :class:`~tuner.Dataset` (or a built-in name / file path). Defaults to `"digits"`.
        settings: :class:`StudySettings`; keyword arguments override its fields.
        builder: ``builder(params, input_shape, *, task, n_outputs) -> keras.Model`` to use instead of
            the built-in MLP. Spaces, pruning, tracking and gap reports work the same.
        fixed: parameters to fix (as ``--set``), validated like the space file.
    """

    def __init__(self, space: Any = "default", dataset: Any = "digits", settings: StudySettings | None = None, *,
                 builder: Callable[..., Any] | None = None, fixed: Mapping[str, Any] | None = None,
                 dataset_options: Mapping[str, Any] | None = None, **overrides: Any) -> None:
        from tuner.data import load_dataset
        from tuner.model import check_task_fit
        from tuner.space import SearchSpace, load_space

        self.space = space if isinstance(space, SearchSpace) else load_space(space)
        if fixed:
            self.space = self.space.with_fixed(fixed)
        if isinstance(dataset, (str, os.PathLike)):
            options = {k: v for k, v in (dataset_options or {}).items() if v is not None}
            self.dataset = load_dataset(str(dataset), **options)
            path = Path(str(dataset))
            self.dataset_spec: dict[str, Any] | None = {
                "dataset": str(path.resolve()) if path.exists() else str(dataset), **options}
        else:
            self.dataset = dataset
            self.dataset_spec = None
        self.settings = dataclasses.replace(settings or StudySettings(), **overrides)
        s = self.settings
        if isinstance(s.objective, str):
            s.objective = tuple(x.strip() for x in s.objective.split(",") if x.strip())
        if not s.objective:
            s.objective = ("val_loss",) if self.dataset.task == "regression" else ("val_accuracy",)
        s.validate(self.dataset.task)
        if s.study_name is None:
            s.study_name = f"{self.space.name}-{self.dataset.name}"
        if s.storage is None:
            s.storage = default_storage()
        self.builder = builder
        self._heartbeat = False
        self._lock: Any = None
        self.stopped_for: str | None = None
        for loss in self._possible("loss"):
            for act in self._possible("output_activation"):
                check_task_fit({"loss": loss, "output_activation": act}, self.dataset.task, source=self.space.source)
        self._check_views()
        if s.sampler == "grid":
            self.space.grid()
        self.directions = [objective_direction(m) for m in s.objective]
        self._optuna_study: Any = None
        self._halted = False
        self._pruner_start: tuple[int, int] | None = None
        self.tracker: Any = None
        self.best_test: dict[str, float] | None = None
        self._best_model_path: str | None = None
        self._best_model_trial: int | None = None

    @classmethod
    def from_storage(cls, study_name: str, storage: str | None = None, *, builder: Callable[..., Any] | None = None,
                     **overrides: Any) -> Study:
        """Join an existing study from its storage alone (as ``python -m tuner worker`` does).

        The space, dataset, objective and settings are read back from the study's user attributes.

        Raises:
            ConfigError: when the study does not exist, or was created from an in-memory dataset.
        """
        from tuner.study._results import load_study_results
        from tuner.space import SearchSpace

        url = storage or default_storage()
        study = load_study_results(study_name, storage=url).study
        recipe = study.user_attrs.get("tuner") or {}
        spec = dict(recipe.get("dataset_spec") or {})
        if "space" not in recipe or not spec:
            raise ConfigError([Problem(url, f"study {study_name!r}", "was not created by `tuner study` from a "
                                       "dataset name or file, so a worker cannot rebuild it", value=study_name)])
        space = SearchSpace.from_dict({"name": recipe.get("space_name", "space"), "parameters": recipe["space"]},
                                      source=f"study {study_name!r}")
        settings = StudySettings(study_name=study_name, storage=url, objective=tuple(recipe["objective"]),
                                 n_trials=int(recipe.get("n_trials", DEFAULT_N_TRIALS)), **recipe.get("settings", {}))
        settings = dataclasses.replace(settings, **overrides)
        dataset = spec.pop("dataset")
        joined = cls(space, dataset, settings, builder=builder, dataset_options=spec)
        # A process joining a study draws its own random numbers (as Optuna does for each of its n_jobs
        # threads): with the study's seed every worker would replay the same start-up configurations.
        joined.optuna_study.sampler.reseed_rng()
        return joined

    def _check_views(self) -> None:
        """Every family/view the space can pick must fit the data, before any trial runs."""
        from tuner.data import as_view, resolve_view

        for family in self._possible("family"):
            for view in self._possible("view"):
                resolved = resolve_view(self.dataset, view, family)
                if resolved is not None:
                    as_view(self.dataset, resolved)

    def _possible(self, name: str) -> list[Any]:
        from tuner.space import KNOBS

        p = self.space.params.get(name)
        if p is None:
            return [KNOBS[name].default]
        return p.possible_values() or [KNOBS[name].default]

    # -- Optuna objects ----------------------------------------------------------------------
    @property
    def multi_objective(self) -> bool:
        return len(self.settings.objective) > 1

    def _sampler(self) -> Any:
        import optuna

        s = self.settings
        seed = s.seed
        if s.sampler == "tpe":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)
        if s.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if s.sampler == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if s.sampler == "gp":
            try:
                import torch  # noqa: F401
            except ImportError:
                raise ConfigError([Problem("--sampler", "sampler", "the gp sampler needs PyTorch: pip install torch",
                                           value="gp")]) from None
            return optuna.samplers.GPSampler(seed=seed)
        if s.sampler == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
        if s.sampler == "grid":
            return optuna.samplers.GridSampler(self.space.grid(), seed=seed)
        return optuna.samplers.NSGAIISampler(seed=seed)

    def _pruner(self) -> Any:
        import optuna

        name = self.settings.pruner
        if self.multi_objective and name != "none":
            _logger.warning("pruning is disabled: Optuna cannot prune multi-objective studies (%s)",
                            ",".join(self.settings.objective))
            return optuna.pruners.NopPruner()
        epochs = self._max_epochs()
        startup, warmup = self.settings.pruner_startup_trials, max(2, epochs // 4)
        if name in ("median", "percentile"):
            self._pruner_start = (startup, warmup)
        if name == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
        if name == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
        if name == "successive_halving":
            return optuna.pruners.SuccessiveHalvingPruner()
        if name == "percentile":
            return optuna.pruners.PercentilePruner(25.0, n_startup_trials=startup, n_warmup_steps=warmup)
        return optuna.pruners.NopPruner()

    def _first_prunable_step(self) -> int | None:
        """The first epoch at which this study's pruner can prune the trial about to run; None: never.

        The median and percentile pruners never prune before ``n_warmup_steps`` nor while the study holds
        fewer than ``n_startup_trials`` complete trials; the latter is read once, as the trial starts (a
        trial that starts during start-up is not pruned even if other workers finish the start-up
        meanwhile, as in a sequential study).
        """
        import optuna

        pruner = self.optuna_study.pruner
        if isinstance(pruner, optuna.pruners.NopPruner):
            return None
        if self._pruner_start is not None:  # (n_startup_trials, n_warmup_steps) of a median/percentile pruner
            startup, warmup = self._pruner_start
            complete = self.optuna_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if len(complete) < max(1, startup):
                return None
            return max(1, warmup)
        return 1

    def _max_epochs(self) -> int:
        p = self.space.params.get("epochs")
        if p is None:
            return 20
        return int(p.value if p.is_fixed else (p.high if p.high is not None else max(p.choices or [20])))

    def _storage(self) -> Any:
        """The Optuna storage; RDB storages get heartbeats, so a dead worker's trial is failed and retried."""
        import optuna


        s = self.settings
        url = s.storage
        self._heartbeat = False
        db = sqlite_path(url)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        journal = journal_path(url)
        if journal is not None:
            journal.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
        if url.startswith(("sqlite", "postgresql", "mysql")):
            engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
            wal = db is not None and "?" not in url and os.environ.get("TUNER_SQLITE_WAL", "1") != "0"
            if wal:
                _sqlite_wal(db)
            self._heartbeat = True
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=s.heartbeat_interval,
                    grace_period=s.grace_period,
                    heartbeat_stale_trial_callback=_StaleTrialHandler(s.tracking_uri, s.grace_period))
            if wal:
                import sqlalchemy

                sqlalchemy.event.listen(storage.engine, "connect", _sqlite_synchronous_normal)
                storage.engine.dispose()  # pooled connections from Optuna's set-up get the pragma too
            return storage
        _logger.warning("storage %s has no heartbeat: a trial whose worker dies stays RUNNING and is not retried "
                        "(use SQLite, PostgreSQL or MySQL for crash recovery)", url)
        return url

    @property
    def optuna_study(self) -> Any:
        """The underlying ``optuna.Study`` (created or loaded on first use)."""
        if self._optuna_study is None:
            import optuna

            study = optuna.create_study(study_name=self.settings.study_name, storage=self._storage(),
                                        sampler=self._sampler(), pruner=self._pruner(),
                                        directions=self.directions, load_if_exists=True)
            self._check_same_study(study)
            self._optuna_study = study
        return self._optuna_study

    def _check_same_study(self, study: Any) -> None:
        """A resumed study must have the same space, dataset and objectives."""
        import optuna

        stored = study.user_attrs
        s = self.settings
        mine = {"space": self.space.to_dict()["parameters"], "dataset": self.dataset.name,
                "objective": list(s.objective)}
        if not stored.get("tuner"):
            if len(study.trials) == 0:
                recipe = {**mine, "space_name": self.space.name, "dataset_spec": self.dataset_spec,
                          "n_trials": s.n_trials,
                          "settings": {k: getattr(s, k) for k in ("sampler", "pruner", "seed", "gap_subset",
                                                                  "pruner_startup_trials", "heartbeat_interval",
                                                                  "grace_period", "tracking_uri", "log_best_model")}}
                study.set_user_attr("tuner", recipe)
                study.set_user_attr("dataset_description", self.dataset.describe())
            return
        theirs = stored["tuner"]
        for key in ("dataset", "objective", "space"):
            if theirs.get(key) != mine[key]:
                raise ConfigError([Problem(self.settings.storage, f"study {self.settings.study_name!r}",
                                           f"exists with another {key}; give a new --study name to start a "
                                           "new study, or run with the same settings to resume it",
                                           value=theirs.get(key) if key != "space" else "a different space")])
        if list(study.directions) != [optuna.study.StudyDirection[d.upper()] for d in self.directions]:
            raise ConfigError([Problem(self.settings.storage, f"study {self.settings.study_name!r}",
                                       "exists with other directions", value=[d.name for d in study.directions])])

    # -- running -------------------------------------------------------------------------------
    def n_finished(self) -> int:
        """Finished trials that count towards ``n_trials`` (see :func:`tuner.budget.budget_counts`)."""
        return budget_counts(self.optuna_study)[0]

    def enqueue(self, params: Mapping[str, Any]) -> None:
        """Warm start: the next trial tries these parameter values first."""
        self.optuna_study.enqueue_trial(dict(params), skip_if_exists=True)

    def run(self, *, n_trials: int | None = None, timeout: float | None = None, progress: bool = False,
            on_trial: Callable[[TrialReport], None] | None = None, max_trials: int | None = None,
            max_rss_mb: float | None = None) -> Study:
        """Run trials until the study holds ``n_trials`` finished trials (or ``timeout`` passes).

        Any number of processes may run the same study at once: the budget is shared exactly (see
        :mod:`tuner.budget`). A ``KeyboardInterrupt`` marks the running trial failed (reason
        ``interrupted``, which does not count towards the total), closes the MLflow runs, and is
        raised again.

        Args:
            n_trials: total finished trials wanted. Defaults to the settings' ``n_trials``.
            timeout: seconds after which no new trial starts. Defaults to the settings' ``timeout``.
            progress: show a progress bar on stderr. Defaults to `False`.
            on_trial: called with a :class:`TrialReport` after each trial of this process.
            max_trials: stop after this many trials in this process (worker recycling). Defaults to `None`.
            max_rss_mb: stop after a trial that leaves the process above this resident memory. Defaults to `None`.
        """
        import optuna

        from tuner.study._budget import BudgetLock

        # Optuna logs each failed trial with a traceback at WARNING; our own line names the reason.
        debug = get_logger("tuner").isEnabledFor(10)
        optuna.logging.set_verbosity(optuna.logging.WARNING if debug else optuna.logging.ERROR)
        s = self.settings
        target = n_trials if n_trials is not None else s.n_trials
        timeout = timeout if timeout is not None else s.timeout
        study = self.optuna_study
        self._record_target(target)
        self.stopped_for = None
        self._halted = False
        missing = target - self.n_finished()
        self._start_tracking()
        status = "FINISHED"
        bar = None
        self._lock = BudgetLock(s.storage, s.study_name)
        # Move everything alive now (TensorFlow, Keras, the dataset) out of the garbage collector's view:
        # the collection after each trial then walks only that trial's objects (about 2 s -> 0.03 s per
        # trial on 2 cores; benchmarks/overhead.py). No collection first (it costs about 1 s): garbage
        # frozen with the rest is freed once the run unfreezes.
        gc.freeze()
        deadline = None if timeout is None else time.monotonic() + timeout
        ran = 0
        try:
            if missing <= 0:
                _logger.info("study %r already holds %d finished trials (asked for %d): nothing to run",
                             s.study_name, self.n_finished(), target)
                return self
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=missing, desc=f"study {s.study_name}", unit="trial", file=sys.stderr,
                           dynamic_ncols=True)

            def after_trial(st: Any, frozen: Any) -> None:
                if frozen.user_attrs.get("fail_reason") != "interrupted" and bar is not None:
                    bar.update(1)
                if on_trial is not None:
                    on_trial(TrialReport.from_frozen(frozen))
                _check_stop()

            while True:
                _check_stop()
                if self._halted:
                    self.stopped_for = "halted"
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    self.stopped_for = "timeout"
                    break
                if max_trials is not None and ran >= max_trials:
                    self.stopped_for = "recycle"
                    break
                if max_rss_mb is not None and ran and rss_mb() > max_rss_mb:
                    self.stopped_for = "recycle"
                    break
                with self._lock:
                    if self._heartbeat:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                            optuna.storages.fail_stale_trials(study)
                    counted, running = budget_counts(study)
                    if counted >= target:
                        break
                    if counted + running < target:
                        left = None if deadline is None else max(1e-3, deadline - time.monotonic())
                        study.optimize(self._objective, n_trials=1, timeout=left, callbacks=[after_trial],
                                       catch=(TrialFailed,), gc_after_trial=False, show_progress_bar=False)
                        ran += 1
                        continue
                # the rest of the budget is held by running trials elsewhere: wait for them
                time.sleep(1.0)
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except BaseException:
            status = "FAILED"
            raise
        finally:
            self._lock.release()
            if bar is not None:
                bar.close()
            try:
                self._finish_tracking(status)
            finally:
                gc.unfreeze()  # last (its clear_session collects): later work here collects this run's garbage
        return self

    def halt(self) -> None:
        """Stop :meth:`run` after the running trial (thread-safe; used by the workers' supervisor)."""
        self._halted = True

    def _record_target(self, target: int) -> None:
        recipe = dict(self.optuna_study.user_attrs.get("tuner") or {})
        if recipe.get("n_trials") != target:
            recipe["n_trials"] = target
            self.optuna_study.set_user_attr("tuner", recipe)

    def _objective(self, trial: Any) -> float | list[float]:
        import keras
        import optuna

        from tuner.training import train_model

        s = self.settings
        self._lock.release()  # the trial exists now: it holds its place in the budget
        _check_stop()
        params = self.space.suggest(trial)
        trial.set_user_attr("resolved_params", params)
        trial.set_user_attr("device", _device())
        trial.set_user_attr("worker_pid", os.getpid())
        run_id = None
        callbacks: list[Any] = []
        epoch_logger = None
        if self.tracker is not None:
            from tuner.tracking import EpochLogger

            run_id = self.tracker.start_trial(trial.number, params, study_name=s.study_name)
            trial.set_user_attr("mlflow_run_id", run_id)
            epoch_logger = EpochLogger(self.tracker, run_id)
            callbacks.append(epoch_logger)
        callbacks.append(_StopCallback().callback)
        if not self.multi_objective:
            callbacks.append(_PruningCallback(trial, s.objective[0], self._first_prunable_step()).callback)
        state, reason, result = "failed", None, None
        try:
            result = train_model(params, self.dataset, seed=s.seed + trial.number, callbacks=callbacks,
                                 builder=self.builder, gap_subset=s.gap_subset)
            values = [float(result.metrics[m]) for m in s.objective]
            if not all(math.isfinite(v) for v in values):
                raise TrialFailed(f"non-finite objective {dict(zip(s.objective, values))}")
            self._record_success(trial, result)
            state = "complete"
            if self._is_best(values):  # kept for the test-split score (and MLflow) at the end
                self._keep_best_model(trial.number, result.model)
            return values[0] if len(values) == 1 else values
        except optuna.TrialPruned as err:
            state, reason = "pruned", str(err)
            trial.set_user_attr("prune_reason", reason)
            raise
        except KeyboardInterrupt:
            state, reason = "interrupted", "interrupted"
            trial.set_user_attr("fail_reason", reason)
            raise
        except TrialFailed as err:
            reason = str(err)
            trial.set_user_attr("fail_reason", reason)
            raise
        except ConfigError:
            raise
        except Exception as err:
            reason = f"{type(err).__name__}: {err}".strip()[:1000]
            trial.set_user_attr("fail_reason", reason)
            raise TrialFailed(reason) from err
        finally:
            if self.tracker is not None and run_id is not None:
                try:
                    if epoch_logger is not None:
                        epoch_logger.flush()
                    self.tracker.end_trial(run_id, state=state, metrics=self._trial_metrics(result),
                                           tags=self._trial_tags(result, reason))
                except Exception as err:  # tracking must not lose the Optuna result
                    _logger.warning("could not close MLflow run of trial %d: %s", trial.number, err)
            if result is not None:
                result.model = None
            keras.backend.clear_session()
            gc.collect()

    def _record_success(self, trial: Any, result: Any) -> None:
        trial.set_user_attr("metrics", result.metrics)
        trial.set_user_attr("final_metrics", result.final_metrics)
        trial.set_user_attr("gap_loss", result.metrics.get("gap_loss"))
        trial.set_user_attr(f"gap_{result.metric}", result.metrics.get(f"gap_{result.metric}"))
        trial.set_user_attr("verdict", result.diagnosis.verdict)
        trial.set_user_attr("reason", result.diagnosis.reason)
        trial.set_user_attr("suggestion", result.diagnosis.suggestion)
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs_run", result.epochs_run)
        trial.set_user_attr("n_params", result.n_params)
        trial.set_user_attr("wall_time", round(result.wall_time, 3))

    @staticmethod
    def _trial_metrics(result: Any) -> dict[str, float]:
        if result is None:
            return {}
        out = {f"best_{k}": v for k, v in result.metrics.items()}
        out.update({f"final_{k}": v for k, v in result.final_metrics.items()})
        out.update(best_epoch=result.best_epoch, n_params=result.n_params, wall_time=result.wall_time)
        return out

    @staticmethod
    def _trial_tags(result: Any, reason: str | None) -> dict[str, Any]:
        tags: dict[str, Any] = {}
        if result is not None:
            tags.update(verdict=result.diagnosis.verdict, verdict_reason=result.diagnosis.reason,
                        suggestion=result.diagnosis.suggestion)
        if reason:
            tags["fail_reason"] = reason
        return tags

    def _is_best(self, values: Sequence[float]) -> bool:
        """Whether the first objective beats every complete trial so far."""
        import optuna

        done = [t.values[0] for t in self.optuna_study.get_trials(deepcopy=False,
                                                                   states=(optuna.trial.TrialState.COMPLETE,))]
        if not done:
            return True
        return values[0] > max(done) if self.directions[0] == "maximize" else values[0] < min(done)

    def _keep_best_model(self, number: int, model: Any) -> None:
        from tuner.tracking._mlflow import save_model_tmp

        if self._best_model_path:
            Path(self._best_model_path).unlink(missing_ok=True)
        self._best_model_path = save_model_tmp(model)
        self._best_model_trial = number

    # -- tracking ------------------------------------------------------------------------------
    def _start_tracking(self) -> None:
        s = self.settings
        if s.tracking_uri == "none" or self.tracker is not None:
            return
        from tuner.tracking import MlflowTracker

        self.tracker = MlflowTracker(s.study_name, tracking_uri=s.tracking_uri)
        if s.parent_run_id:  # a worker: the process that started the workers owns the parent run
            self.tracker.parent_run_id = s.parent_run_id
            return
        settings = dataclasses.asdict(s)
        settings["objective"] = ",".join(s.objective)
        settings["directions"] = ",".join(self.directions)
        self.tracker.start_study(study_name=s.study_name, settings=settings, space_yaml=self.space.to_yaml(),
                                 dataset=self.dataset.describe())
        self.optuna_study.set_user_attr("mlflow_experiment_id", self.tracker.experiment_id)

    def _finish_tracking(self, status: str) -> None:
        best_info: dict[str, Any] = {}
        try:
            best = self.best_trial()
        except ConfigError:
            best = None
        if best is not None:
            try:
                self._finish_best(best)
            except Exception as err:  # e.g. a custom model that does not load back: keep the study's results
                _logger.warning("could not score or log the best model of trial %d: %s", best.number, err)
            best_info = {"metrics": {**best.metrics, **(self.best_test or {})}, "params": best.params,
                         "tags": {"best_trial_number": best.number, "best_run_id": best.mlflow_run_id,
                                  "best_verdict": best.verdict,
                                  "best_model_uri": self.optuna_study.user_attrs.get("best_model_uri")}}
        if self._best_model_path:
            Path(self._best_model_path).unlink(missing_ok=True)
            self._best_model_path = None
        if self.tracker is not None and not self.settings.parent_run_id:
            try:
                self.tracker.end_study(status=status, best=best_info)
            except Exception as err:
                _logger.warning("could not close the MLflow study run: %s", err)
            self.tracker = None

    def _finish_best(self, best: TrialReport) -> None:
        """Log the best model (when this invocation trained it) and score it once on the test split."""
        import keras

        from tuner.training import evaluate_test

        study = self.optuna_study
        model = None
        if self._best_model_path and self._best_model_trial == best.number:
            model = keras.models.load_model(self._best_model_path)
            if self.tracker is not None and best.mlflow_run_id and self.settings.log_best_model:
                try:
                    from tuner.training import prepare_data

                    params = study.trials[best.number].user_attrs.get("resolved_params") or best.params
                    example = prepare_data(self.dataset, params).x_val[:5]
                    uri = self.tracker.log_model(best.mlflow_run_id, model, example=example)
                    study.set_user_attr("best_model_uri", uri)
                    study.set_user_attr("best_model_trial", best.number)
                except Exception as err:
                    _logger.warning("could not log the best model to MLflow: %s", err)
        elif study.user_attrs.get("best_test_trial") == best.number and study.user_attrs.get("best_test"):
            self.best_test = study.user_attrs["best_test"]  # scored by an earlier invocation or another worker
            return
        if model is not None:
            params = study.trials[best.number].user_attrs.get("resolved_params") or best.params
            self.best_test = evaluate_test(model, self.dataset, params)
            study.set_user_attr("best_test", self.best_test)
            study.set_user_attr("best_test_trial", best.number)
            keras.backend.clear_session()

    # -- results -------------------------------------------------------------------------------
    @property
    def results(self) -> StudyResults:
        return StudyResults(self.optuna_study)

    def best_trial(self) -> TrialReport:
        """The best trial (single objective) or the one selected on the Pareto front (multi-objective).

        Raises:
            ConfigError: when the study has no complete trial.
        """
        return self.results.best()

    def trials(self) -> list[TrialReport]:
        return self.results.trials()

    def trials_dataframe(self) -> Any:
        """A pandas DataFrame: one row per trial with its parameters, objective, honest metrics, gap and verdict."""
        return self.results.trials_dataframe()


def create_study(space: Any = "default", dataset: Any = "digits", **kwargs: Any) -> Study:
    """Create (or load, to resume) a study with the CLI's defaults. See :class:`Study`."""
    return Study(space, dataset, **kwargs)


def run_study(space: Any = "default", dataset: Any = "digits", **kwargs: Any) -> Study:
    """Create or resume a study and run it to ``n_trials`` finished trials. See :class:`Study`."""
    run_kwargs = {k: kwargs.pop(k) for k in ("progress", "on_trial") if k in kwargs}
    return Study(space, dataset, **kwargs).run(**run_kwargs)

