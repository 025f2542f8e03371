"""The Optuna side of a study: storage (SQLite in WAL mode, heartbeats), sampler, pruner, and creating,
resuming or joining the study through the recipe stored on it.

Optuna (and SQLAlchemy) are imported inside the functions, so that importing tuner stays light.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

from tuner._logging import current_verbosity, get_logger, library_logs
from tuner._store import absolute_sqlite, journal_path, mask_secrets, sqlite_path, storage_trouble
from tuner.errors import ConfigError, Problem
from tuner.space import KNOBS
from tuner.study._callbacks import _StaleTrialHandler
from tuner.study._record import Recipe, StudyRecord
from tuner.study._settings import DEFAULT_N_TRIALS, StudySettings, completed_storage
from tuner.study._types import RunningStudy
from tuner.tracking import probe_tracking

__all__ = [
    "OptunaStudy",
    "open_optuna_study",
    "open_storage",
    "first_prunable_step",
    "join_recipe",
    "sampler_seed",
    "seed_next_trial",
]

_logger = get_logger(__name__)

# the settings a worker needs to rebuild the study, stored in its recipe
_RECIPE_SETTINGS = (
    "sampler",
    "pruner",
    "seed",
    "gap_subset",
    "pruner_startup_trials",
    "heartbeat_interval",
    "grace_period",
    "tracking_uri",
    "log_best_model",
    "model",
    "cv",
    "image_shape",
)


@dataclasses.dataclass
class OptunaStudy:
    """An ``optuna.Study`` created or loaded for a :class:`~tuner.study.Study`.

    Attributes:
        study: the ``optuna.Study``.
        heartbeat: whether its storage has heartbeats (dead workers' trials are failed and retried).
        pruner_start: ``(n_startup_trials, n_warmup_steps)`` of a median or percentile pruner, else None.
    """

    study: Any
    heartbeat: bool
    pruner_start: tuple[int, int] | None


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


def _rdb_storage(url: str, **kwargs: Any) -> Any:
    """``optuna.storages.RDBStorage``, tried again when another process created the tables meanwhile.

    Two processes opening a new database at once both create its tables and stamp its schema version;
    the slower one fails ("table ... already exists", or a duplicate ``alembic_version`` row with
    SQLite), and finds both done on its next try. Once open, its calls ride out a server restart
    (:class:`~tuner.study._retry.RetryingRDBStorage`); opening a server that is down fails at once.
    """
    import optuna
    import sqlalchemy

    from tuner.study._retry import RetryingRDBStorage

    tries = 3
    while True:
        tries -= 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RetryingRDBStorage(url, **kwargs)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError) as err:
            if not ("already exists" in str(err) or "alembic_version" in str(err)) or tries == 0:
                raise
        time.sleep(0.2)


def _storage(s: StudySettings, tracker: Callable[[], Any]) -> tuple[Any, bool]:
    """The Optuna storage, and whether it has heartbeats (RDB storages: a dead worker's trial is failed
    and retried)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    url = completed_storage(s)
    db = sqlite_path(url)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    journal = journal_path(url)
    if journal is not None:
        journal.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(journal))), False
    if url.startswith(("sqlite", "postgresql", "mysql")):
        engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        wal = db is not None and "?" not in url and os.environ.get("TUNER_SQLITE_WAL", "1") != "0"
        if wal and db is not None:
            _sqlite_wal(db)
        storage = _rdb_storage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=s.heartbeat_interval,
            grace_period=s.grace_period,
            heartbeat_stale_trial_callback=_StaleTrialHandler(tracker, s.grace_period),
        )
        if wal:
            import sqlalchemy

            sqlalchemy.event.listen(storage.engine, "connect", _sqlite_synchronous_normal)
            storage.engine.dispose()  # pooled connections from Optuna's set-up get the pragma too
        return storage, True
    _logger.warning(
        "storage %s has no heartbeat: a trial whose worker dies stays RUNNING and is not retried "
        "(use SQLite, PostgreSQL or MySQL for crash recovery)",
        mask_secrets(url),
    )
    return url, False


def open_storage(s: StudySettings, tracker: Callable[[], Any]) -> Any:
    """The Optuna storage object of ``s.storage`` (what the Ray study host serves to the trials), without
    Optuna's in-process cache: the driver creates the trials through a storage of its own."""
    import optuna

    storage = _storage(s, tracker)[0]
    return storage if isinstance(storage, optuna.storages.BaseStorage) else optuna.storages.get_storage(storage)


def sampler_seed(seed: int, started: int) -> int:
    """The seed of the sampler that proposes a study's trial number ``started`` (counting started trials).

    Each trial gets its own stream, derived from the study's seed and its place in the study: a study
    resumed in another process (or joined by a worker) goes on where it stopped instead of replaying its
    first proposals, and a study run in two sittings proposes what one sitting would have.
    """
    import numpy as np

    return int(np.random.SeedSequence([seed, started]).generate_state(1)[0])


def _sampler(s: StudySettings, space: Any, *, started: int = 0) -> Any:
    """The sampler that proposes the trial ``started`` of the study (:func:`sampler_seed`)."""
    import optuna

    seed = sampler_seed(s.seed, started)
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
            raise ConfigError(
                [Problem("--sampler", "sampler", "the gp sampler needs PyTorch: pip install torch", value="gp")]
            ) from None
        return optuna.samplers.GPSampler(seed=seed)
    if s.sampler == "qmc":
        # the scrambled sequence keeps the study's seed (its position is counted in the storage); the
        # parameters it leaves to the independent sampler get the trial's stream
        return optuna.samplers.QMCSampler(
            seed=s.seed, independent_sampler=optuna.samplers.RandomSampler(seed=seed), warn_independent_sampling=False
        )
    if s.sampler == "grid":  # the grid's shuffled order is the study's (trial n takes its n-th point)
        return optuna.samplers.GridSampler(space.grid(), seed=s.seed)
    return optuna.samplers.NSGAIISampler(seed=seed)


def seed_next_trial(opened: OptunaStudy, settings: StudySettings, space: Any) -> None:
    """Give the study the sampler seeded for the trial about to start (:func:`sampler_seed`).

    Called under the budget lock, where the number of started (not waiting) trials is this trial's place:
    each ``optimize`` call starts exactly one, so no two trials of a study share a stream, in any process.
    """
    import optuna

    started = len(
        opened.study.get_trials(
            deepcopy=False, states=tuple(st for st in optuna.trial.TrialState if st != optuna.trial.TrialState.WAITING)
        )
    )
    opened.study.sampler = _sampler(settings, space, started=started)


def _max_epochs(space: Any) -> int:
    default = int(KNOBS["epochs"].default)
    p = space.params.get("epochs")
    if p is None:
        return default
    return int(p.value if p.is_fixed else (p.high if p.high is not None else max(p.choices or [default])))


def _pruner(s: StudySettings, space: Any) -> tuple[Any, tuple[int, int] | None]:
    """The pruner, and ``(n_startup_trials, n_warmup_steps)`` for a median or percentile pruner."""
    import optuna

    name = s.pruner  # "none" for a multi-objective study (StudySettings.complete)
    epochs = _max_epochs(space)
    startup, warmup = s.pruner_startup_trials, max(2, epochs // 4)
    start = (startup, warmup) if name in ("median", "percentile") else None
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup), start
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs), start
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(), start
    if name == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=startup, n_warmup_steps=warmup), start
    return optuna.pruners.NopPruner(), start


def first_prunable_step(opened: OptunaStudy) -> int | None:
    """The first epoch at which the study's pruner can prune the trial about to run; None: never.

    The median and percentile pruners never prune before ``n_warmup_steps`` nor while the study holds
    fewer than ``n_startup_trials`` complete trials; the latter is read once, as the trial starts (a
    trial that starts during start-up is not pruned even if other workers finish the start-up
    meanwhile, as in a sequential study).
    """
    import optuna

    if isinstance(opened.study.pruner, optuna.pruners.NopPruner):
        return None
    if opened.pruner_start is not None:
        startup, warmup = opened.pruner_start
        complete = opened.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(complete) < max(1, startup):
            return None
        return max(1, warmup)
    return 1


def open_optuna_study(study: RunningStudy, storage: Any = None) -> OptunaStudy:
    """Create the Optuna study of a :class:`~tuner.study.Study` with its recipe, or load it to resume.

    Args:
        storage: an Optuna storage object to use instead of ``settings.storage`` (a Ray trial reaches the
            driver's storage through one, :mod:`tuner.study._ray_trial`); it has no heartbeats. Defaults to `None`.

    Raises:
        ConfigError: when a study of that name exists with another space, dataset, objective or directions.
    """
    import optuna

    s = study.settings
    if not s.parent_run_id:  # (a worker joining a running study goes on without tracking: make_tracker)
        probe_tracking(s.tracking_uri)  # a tracking server that does not answer stops us before anything is written
    sampler = _sampler(s, study.space)
    pruner, start = _pruner(s, study.space)
    try:
        storage, heartbeat = _storage(s, lambda: study.tracker) if storage is None else (storage, False)
        with library_logs(current_verbosity()):  # Optuna's "A new study created ..." at INFO: shown with -v only
            created = optuna.create_study(
                study_name=s.study_name,
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                # each one "maximize" or "minimize": StudySettings.validate or tuner.metrics.direction made it
                directions=cast("list[Literal['minimize', 'maximize']]", study.directions),
                load_if_exists=True,
            )
    except Exception as err:  # read-only, locked, full, or a server that does not answer: one line, exit 2
        trouble = storage_trouble(err)
        if trouble is None:
            raise
        raise ConfigError([Problem(mask_secrets(s.storage), "", trouble, has_value=False)]) from None
    _check_same_study(created, study)
    _name_metrics(created, list(s.objective))
    return OptunaStudy(created, heartbeat, start)


def _name_metrics(optuna_study: Any, names: list[str]) -> None:
    """Name the study's objectives (``val_accuracy``, not "Objective 0" in optuna-dashboard and other clients)."""
    import warnings

    import optuna

    if optuna_study.metric_names != names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna_study.set_metric_names(names)


def _check_same_study(optuna_study: Any, study: RunningStudy) -> None:
    """A resumed study must have the same space, dataset and objectives; a new one gets its recipe."""
    import optuna

    record = StudyRecord(optuna_study)
    s = study.settings
    mine = Recipe(
        space=study.space.to_dict()["parameters"],
        dataset=study.dataset.name,
        objective=list(s.objective),
        model_space=study.space.to_dict().get("model_parameters"),
    )
    if not record.has_recipe:
        if len(optuna_study.trials) == 0:
            record.recipe = dataclasses.replace(
                mine,
                space_name=study.space.name,
                dataset_spec=study.dataset_spec,
                n_trials=s.n_trials,
                settings={
                    **{k: getattr(s, k) for k in _RECIPE_SETTINGS},
                    "tracking_uri": absolute_sqlite(s.tracking_uri),
                },
            )
            record.dataset_description = study.dataset.describe()
        return
    theirs = record.recipe
    stored_cv = int(theirs.settings.get("cv") or 0)  # made before --cv existed: 0
    if stored_cv != s.cv:  # a resumed study keeps the folds it was scored with
        _logger.warning(
            "study %r was created with --cv %d: its trials go on with %s",
            s.study_name,
            stored_cv,
            f"{stored_cv} folds" if stored_cv else "no cross-validation",
        )
        s.cv = stored_cv
    for key in ("dataset", "objective", "space", "model_space"):
        if getattr(theirs, key) != getattr(mine, key):
            raise ConfigError(
                [
                    Problem(
                        mask_secrets(completed_storage(s)),
                        f"study {s.study_name!r}",
                        f"exists with another {key}; give a new --study name to start a "
                        "new study, or run with the same settings to resume it",
                        value=getattr(theirs, key) if "space" not in key else "a different space",
                    )
                ]
            )
    if list(optuna_study.directions) != [optuna.study.StudyDirection[d.upper()] for d in study.directions]:
        raise ConfigError(
            [
                Problem(
                    mask_secrets(completed_storage(s)),
                    f"study {s.study_name!r}",
                    "exists with other directions",
                    value=[d.name for d in optuna_study.directions],
                )
            ]
        )


def record_target(optuna_study: Any, target: int) -> None:
    """Store the study's total of finished trials in its recipe (workers joining later read it)."""
    record = StudyRecord(optuna_study)
    recipe = record.recipe
    if recipe.n_trials != target:
        record.recipe = dataclasses.replace(recipe, n_trials=target)


def join_recipe(study_name: str, url: str, overrides: dict[str, Any]) -> tuple[Any, str, dict[str, Any], StudySettings]:
    """What a worker needs to rebuild a study from its storage: ``(space, dataset, dataset options, settings)``.

    Raises:
        ConfigError: when the study does not exist, or was created from an in-memory dataset.
    """
    from tuner.space import SearchSpace
    from tuner.study._results import load_study_results

    recipe = StudyRecord(load_study_results(study_name, storage=url).study).recipe
    spec = dict(recipe.dataset_spec or {})
    if recipe.space is None or not spec:
        raise ConfigError(
            [
                Problem(
                    url,
                    f"study {study_name!r}",
                    "was not created by `tuner study` from a dataset name or file, so a worker cannot rebuild it",
                    value=study_name,
                )
            ]
        )
    space = SearchSpace.from_dict(
        {"name": recipe.space_name, "parameters": recipe.space, "model_parameters": recipe.model_space},
        source=f"study {study_name!r}",
    )
    settings = StudySettings(
        study_name=study_name,
        storage=url,
        objective=tuple(recipe.objective),
        n_trials=int(recipe.n_trials or DEFAULT_N_TRIALS),
        **recipe.settings,
    )
    settings = dataclasses.replace(settings, **overrides)
    dataset = spec.pop("dataset")
    return space, dataset, spec, settings
