"""The study engine: Optuna studies over a search space, each trial a real Keras training run.

A :class:`Study` ties a :class:`~tuner.SearchSpace`, a :class:`~tuner.Dataset` and
:class:`StudySettings` together. ``Study.run()`` creates or resumes the named Optuna study (SQLite in
``mlruns/optuna.db`` by default), runs trials until the study holds ``n_trials`` finished trials, and
records everything through a tracker (MLflow, :mod:`tuner.tracking`). Each trial stores its honest gap,
verdict, chosen epoch, parameter count and wall time on the trial record (:mod:`tuner.study._record`).

The class is a facade over settings (``_settings``), Optuna set-up (``_storage``), the loop (``_loop``),
one trial (``_objective``, ``_callbacks``) and the best model (``_best``). Keras, Optuna and MLflow are
imported where they are used, so that importing tuner stays light.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner._logging import current_verbosity, library_logs
from tuner._store import default_storage
from tuner.errors import ConfigError, Problem
from tuner.study._best import BestModel, close_tracking, load_best_model
from tuner.study._budget import budget_counts
from tuner.study._interrupts import (
    check_stop,
    clear_stop,
    deferring_interrupts,
    interrupts_deferrable,
    request_stop,
    stop_requested,
)
from tuner.study._loop import optimize, rss_mb
from tuner.study._model_ref import default_space, study_space, user_model
from tuner.study._process import restoring_process_state
from tuner.study._record import StudyRecord
from tuner.study._resources import estimate_macs, resolve_workers
from tuner.study._results import StudyResults, TrialReport
from tuner.study._settings import (
    PRUNERS,
    SAMPLERS,
    StudySettings,
    check_inputs,
    completed_name,
    objective_direction,
)
from tuner.study._storage import OptunaStudy, join_recipe, open_optuna_study, record_target
from tuner.tracking import NullTracker, Tracker, make_tracker

if TYPE_CHECKING:
    from tuner.study._executor import Executor

# re-exported for callers written before the study engine was split (import them from tuner.study instead)
__all__ = [
    "Study",
    "StudySettings",
    "TrialReport",
    "create_study",
    "run_study",
    "SAMPLERS",
    "PRUNERS",
    "default_storage",
    "objective_direction",
    "request_stop",
    "stop_requested",
    "rss_mb",
]


class Study:
    """A tuning study: a search space, a dataset, settings, an Optuna study and its tracking records.

    Args:
        space: the :class:`~tuner.SearchSpace` (or a path / shipped space name). Defaults to the shipped space
            that suits the data's view (``image_default``: a CNN on images, ``sequence_default``: a Conv1D CNN on
            sequences, ``default``: an MLP on tables; :attr:`choices` says which and why), or an empty space
            with a ``hypermodel``.
        dataset: a :class:`~tuner.Dataset`, a built-in name or file path, arrays ``(x, y)`` or a pandas
            DataFrame (``dataset_options``: ``target``, ``validation_data``, ``test_data``). Defaults to `"digits"`.
        settings: :class:`StudySettings`; keyword arguments override its fields.
        builder: ``builder(params, input_shape, *, task, n_outputs) -> keras.Model`` to use instead of
            the built-in MLP. Spaces, pruning, tracking and gap reports work the same.
        hypermodel: a ``keras_tuner.HyperModel`` (instance or class), a ``build(hp)`` function, or a
            ``file.py:name`` / ``module:name`` reference to one of these or to a ``builder``.
        fixed: parameters to fix (as ``--set``), validated like the space file.
        ray: run the trials on Ray (:meth:`run`): a cluster address (``"auto"`` joins the running cluster,
            ``"host:6379"``; this machine must be a node of it), or `True` / ``"local"`` to start a Ray instance on this
            machine (loopback only). Needs ``pip install "honest-tuner[ray]"``. Defaults to `None` (no Ray).
        workers: trials running at once: worker processes on this machine (this process is the first), or trials
            on Ray. ``"auto"`` runs one per core where the model is small and worker processes can rebuild the
            study (a dataset and model given by name or file, not objects), else one; ``$TUNER_WORKERS`` overrides
            it (:func:`~tuner.study._resources.auto_workers`; :attr:`workers_reason` says why). On Ray, ``"auto"``
            is one trial at a time. Defaults to `"auto"`.
        cpus_per_trial: the CPUs each Ray trial asks for (fractions allowed). Defaults to `1`.
        gpus_per_trial: the GPUs each Ray trial asks for; ``0.25`` packs four trials on one GPU. Defaults to `0`.
    """

    @restoring_process_state()  # KERAS_BACKEND is set while Keras is imported, then put back
    def __init__(
        self,
        space: Any = None,
        dataset: Any = "digits",
        settings: StudySettings | None = None,
        *,
        builder: Callable[..., Any] | None = None,
        fixed: Mapping[str, Any] | None = None,
        dataset_options: Mapping[str, Any] | None = None,
        hypermodel: Any = None,
        ray: str | bool | None = None,
        workers: int | str = "auto",
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        **overrides: Any,
    ) -> None:
        from tuner.data import in_memory_dataset, load_dataset
        from tuner.model import with_image_shape
        from tuner.training import auto_folds

        self.settings = dataclasses.replace(settings or StudySettings(), **overrides)
        self.user_model = user_model(hypermodel, builder, self.settings)
        if space is not None or self.user_model is not None:  # else the data chooses, once loaded
            self.space = study_space(space, self.user_model, fixed)
        if isinstance(dataset, (str, os.PathLike)):
            options = {k: v for k, v in (dataset_options or {}).items() if v is not None}
            self.dataset = load_dataset(str(dataset), **options)
            path = Path(str(dataset))
            self.dataset_spec: dict[str, Any] | None = {
                "dataset": str(path.resolve()) if path.exists() else str(dataset),
                **options,
            }
        else:
            self.dataset = in_memory_dataset(dataset, **(dataset_options or {}))
            self.dataset_spec = None
        s = self.settings
        if s.image_shape is not None:
            self.dataset = with_image_shape(self.dataset, s.image_shape)
            s.image_shape = list(self.dataset.image_shape or ())
        #: what the study chose for itself and why, one line each (the CLI prints them first)
        self.choices: list[str] = []
        if space is None and self.user_model is None:
            name, line = default_space(self.dataset)
            self.space = study_space(name, None, fixed)
            self.choices.append(line)
        own_fit = self.user_model is not None and self.user_model.hypermodel is not None
        if s.cv and own_fit:
            raise ConfigError(
                [
                    Problem(
                        "--cv",
                        "cv",
                        "is not available for a build(hp) model or a HyperModel yet (its "
                        "refit would need the trial); use --cv 0",
                        value=s.cv,
                    )
                ]
            )
        if s.cv is None and own_fit:
            s.cv, why = 0, "off: not available for a build(hp) model or a HyperModel"
        elif s.cv is None:
            s.cv, why = auto_folds(self.dataset)
        else:
            why = f"{s.cv}-fold over the training and validation rows" if s.cv else "off (--cv 0)"
        self.choices.append(f"cross-validation {why}")
        logged = self._check_user_model()
        self.settings.complete(self.dataset.task, f"{self.space.name}-{self.dataset.name}", default_storage(), logged)
        self.builder = builder or (self.user_model and self.user_model.params_builder)
        self.stopped_for: str | None = None
        self.halted = False
        check_inputs(self.space, self.dataset, self.settings)
        self.directions = list(self.settings.directions) or [objective_direction(m) for m in self.settings.objective]
        self.tracker: Tracker = NullTracker()  # the open tracker while tracking() is open
        self.best_test: dict[str, float] | None = None
        self._opened: OptunaStudy | None = None
        self.best_kept = BestModel()  # this process's best model, scored and logged when tracking closes
        self._tracking_depth = 0
        self.executor: Executor | None = None  # where run() sends the trials: Ray, or (None) this process
        #: the number of trials that run at once, and why (``"auto: 2 cores, small model"``)
        self.workers, self.workers_reason = 1, "one trial at a time"
        if ray is not None and ray is not False:
            from tuner.study._ray import RayCluster

            self.workers_reason = "auto: one trial at a time on Ray; workers=N runs N"
            if workers != "auto":
                self.workers, self.workers_reason = int(workers), f"workers={workers} on Ray"
            self.executor = RayCluster(
                "local" if ray is True else str(ray),
                workers=self.workers,
                cpus_per_trial=cpus_per_trial,
                gpus_per_trial=gpus_per_trial,
            )
        else:
            rebuildable = (
                self.dataset_spec is not None
                and builder is None
                and not (hypermodel is not None and not isinstance(hypermodel, (str, os.PathLike)))
            )
            self.workers, self.workers_reason = resolve_workers(
                workers,
                n_trials=s.n_trials,
                macs=self.model_macs(),
                rebuildable=rebuildable,
                data_mb=self.dataset.x_train.nbytes * 2 / 2**20,
            )
            if self.workers > 1:
                from tuner.study._workers import ProcessPool

                self.executor = ProcessPool(self.workers)  # this process is worker 0

    def model_macs(self) -> float | None:
        """A rough count of the multiply-adds per example of the space's largest model (for ``workers="auto"``);
        None for the user's own model, whose size the space does not say."""
        from tuner.errors import DataError
        from tuner.model import as_view, resolve_view

        if self.user_model is not None:
            return None
        params = self.space.params
        family = params["family"].value if "family" in params and params["family"].is_fixed else "mlp"
        view = params["view"].value if "view" in params and params["view"].is_fixed else "auto"
        try:  # the shape the model sees: digits' flat rows as 8x8x1 images for a CNN
            resolved = resolve_view(self.dataset, str(view), str(family))
            shape = as_view(self.dataset, resolved).input_shape if resolved else self.dataset.input_shape
        except DataError:
            shape = self.dataset.input_shape
        return estimate_macs(self.space, shape)

    def _check_user_model(self) -> tuple[str, ...]:
        """Build a ``build(hp)`` model once with default values before the study exists: a build that returns no
        model or a loss that does not fit the targets stops here. Returns the metrics its compile logs."""
        if self.user_model is None or self.user_model.hypermodel is None:
            return ()
        from tuner.training import check_user_model

        _, builder, _ = self.user_model.for_trial(None, self.space.params, {})
        return check_user_model(builder, self.dataset, self.space.defaults())

    @classmethod
    def from_storage(
        cls, study_name: str, storage: str | None = None, *, builder: Callable[..., Any] | None = None, **overrides: Any
    ) -> Study:
        """Join an existing study from its storage alone (as ``python -m tuner worker`` does).

        The space, dataset, objective and settings are read back from the study's user attributes.

        Raises:
            ConfigError: when the study does not exist, or was created from an in-memory dataset.
        """
        space, dataset, options, settings = join_recipe(study_name, storage or default_storage(), overrides)
        # no reseeding here: each trial's sampler is seeded from its place in the study (seed_next_trial)
        return cls(space, dataset, settings, builder=builder, dataset_options=options, workers=1)

    @property
    def multi_objective(self) -> bool:
        return len(self.settings.objective) > 1

    @property
    def optuna_study(self) -> Any:
        """The underlying ``optuna.Study`` (created or loaded on first use)."""
        return self.opened.study

    @property
    def opened(self) -> OptunaStudy:
        """The Optuna study with what tuner knows of its storage (heartbeats) and pruner (created or loaded on
        first use)."""
        if self._opened is None:
            with restoring_process_state():  # Optuna's RDB storage sets alembic's logger level as it opens
                self._opened = open_optuna_study(self)
        return self._opened

    def open_with_storage(self, storage: Any) -> None:
        """Open the Optuna study through ``storage``, an Optuna storage object (a Ray trial's channel to the
        driver's storage), instead of ``settings.storage``."""
        with restoring_process_state():
            self._opened = open_optuna_study(self, storage)

    # -- running -------------------------------------------------------------------------------
    def n_finished(self) -> int:
        """Finished trials that count towards ``n_trials`` (see :func:`tuner.study.budget_counts`)."""
        return budget_counts(self.optuna_study)[0]

    def enqueue(self, params: Mapping[str, Any]) -> None:
        """Warm start: the next trial tries these parameter values first."""
        self.optuna_study.enqueue_trial(dict(params), skip_if_exists=True)

    def record_target(self, n_trials: int) -> None:
        """Store the study's total of finished trials, which worker processes that join it read."""
        record_target(self.optuna_study, n_trials)

    @restoring_process_state()  # Optuna's logger, MLflow's retry limits, the SIGINT handler: put back after
    def run(
        self,
        *,
        n_trials: int | None = None,
        timeout: float | None = None,
        progress: bool = False,
        on_trial: Callable[[TrialReport], None] | None = None,
        max_trials: int | None = None,
        max_rss_mb: float | None = None,
    ) -> Study:
        """Run trials until the study holds ``n_trials`` finished trials (or ``timeout`` passes).

        Any number of processes may run the same study at once: the budget is shared exactly (see
        :mod:`tuner.study._budget`). A ``KeyboardInterrupt`` marks the running trial failed (reason
        ``interrupted``, which does not count towards the total), closes the tracking runs, and is
        raised again. The run opens the study's tracking (:meth:`tracking`) unless it is open already.

        Args:
            n_trials: total finished trials wanted. Defaults to the settings' ``n_trials``.
            timeout: seconds after which no new trial starts. Defaults to the settings' ``timeout``.
            progress: show a progress bar on stderr. Defaults to `False`.
            on_trial: called with a :class:`TrialReport` after each trial of this process.
            max_trials: stop after this many trials in this process (worker recycling). Defaults to `None`.
            max_rss_mb: stop after a trial that leaves the process above this resident memory. Defaults to `None`.

        Raises:
            ConfigError: when a trial fails on its configuration (the trial keeps the reason).
        """
        s = self.settings
        self.halted = False
        with library_logs(current_verbosity()):  # Optuna's and MLflow's INFO lines: shown at tuner's -v only
            if self.executor is not None:
                if n_trials is not None:
                    s.n_trials = n_trials
                if timeout is not None:
                    s.timeout = timeout
                self.executor.run(self, progress=progress, on_trial=on_trial)
                return self
            self.run_here(
                n_trials=n_trials,
                timeout=timeout,
                progress=progress,
                on_trial=on_trial,
                max_trials=max_trials,
                max_rss_mb=max_rss_mb,
            )
        return self

    @restoring_process_state()
    def run_here(
        self,
        *,
        n_trials: int | None = None,
        timeout: float | None = None,
        progress: bool = False,
        on_trial: Callable[[TrialReport], None] | None = None,
        max_trials: int | None = None,
        max_rss_mb: float | None = None,
    ) -> Study:
        """Run trials in this process, whatever executor the study has (:meth:`run` sends them to it): what worker
        0 of the process pool does. Arguments as :meth:`run`'s."""
        s = self.settings
        self.halted = False
        with library_logs(current_verbosity()):
            optimize(
                self,
                target=n_trials if n_trials is not None else s.n_trials,
                timeout=timeout if timeout is not None else s.timeout,
                progress=progress,
                on_trial=on_trial,
                max_trials=max_trials,
                max_rss_mb=max_rss_mb,
            )
        return self

    def halt(self) -> None:
        """Stop :meth:`run` after the running trial (thread-safe; used by the workers' supervisor)."""
        self.halted = True

    # -- tracking ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def tracking(self) -> Iterator[Tracker]:
        """Open this study's tracking for one invocation, and close it once, when the outermost ``with`` ends.

        Opening starts the study's tracking run, or joins ``settings.parent_run_id`` (the run of the
        process that started this worker, which ends it). Closing scores the best trial once on the test
        split, logs its model when this process trained it, and ends the study run when this process
        started it: ``FINISHED``, ``KILLED`` after an interrupt, ``FAILED`` after an error. :meth:`run`
        inside an open ``with study.tracking():`` (as :func:`~tuner.study.run_workers` does) shares it.
        A Ctrl-C that lands while a tracking run opens or closes is held back until it has, then raised as
        ``KeyboardInterrupt`` (in a script or notebook too: Python's own handler is swapped for the block).

        Yields:
            The open :class:`~tuner.tracking.Tracker` (a null tracker for ``tracking_uri="none"``).
        """
        outermost = self._tracking_depth == 0
        with contextlib.ExitStack() as process:
            if outermost:
                process.enter_context(restoring_process_state())
                os.environ["KERAS_BACKEND"] = self.settings.backend  # for the workers started inside
                # while a script's or notebook's study runs, Ctrl-C goes the CLI's way (held back while a run opens
                # or closes)
                process.enter_context(interrupts_deferrable())
                clear_stop()  # a stop asked for an earlier run (a notebook's request_stop()) does not stop this one
                self._open_tracking()
            self._tracking_depth += 1
            status = "FINISHED"
            try:
                if outermost:
                    check_stop()  # a Ctrl-C held back while the study run was opened
                yield self.tracker
            except KeyboardInterrupt:
                status = "KILLED"
                raise
            except BaseException:
                status = "FAILED"
                raise
            finally:
                self._tracking_depth -= 1
                if self._tracking_depth == 0:
                    close_tracking(self, status)  # scores, exports and logs the best model; ends the study run
            if outermost:
                check_stop()  # a Ctrl-C held back while the study run was closed reaches the caller

    @property
    def tracking_run_id(self) -> str | None:
        """The study run that this invocation's trials are recorded under (worker processes join it);
        None while tracking is closed or off."""
        return self.tracker.parent_run_id

    def _open_tracking(self) -> None:
        s = self.settings
        tracker = make_tracker(s.tracking_uri, completed_name(s), dataset=self.dataset, joining=bool(s.parent_run_id))
        if s.parent_run_id:
            tracker.join_study(s.parent_run_id)
        else:
            settings = dataclasses.asdict(s)
            settings["objective"] = ",".join(s.objective)
            settings["directions"] = ",".join(self.directions)
            with deferring_interrupts(raise_after=False):  # held until tracking() holds the run and can close it
                tracker.start_study(
                    study_name=completed_name(s),
                    settings=settings,
                    space_yaml=self.space.to_yaml(),
                    dataset=self.dataset.describe(),
                )
                self.tracker = tracker
                if tracker.experiment_id is not None:
                    StudyRecord(self.optuna_study).mlflow_experiment_id = tracker.experiment_id
        self.tracker = tracker

    # -- results -------------------------------------------------------------------------------
    @property
    def results(self) -> StudyResults:
        return StudyResults(self.optuna_study, storage=self.settings.storage)

    def best_trial(self) -> TrialReport:
        """The best trial (single objective) or the one selected on the Pareto front (multi-objective).

        Raises:
            ConfigError: when the study has no complete trial.
        """
        return self.results.best()

    def trials(self) -> list[TrialReport]:
        return self.results.trials()

    @property
    def programs_compiled(self) -> int | None:
        """Programs the backend traced (TensorFlow) or compiled (JAX) for this study's trials, every run of it
        added up, counted from the backend (``programs_compiled`` on each trial); None before any trial."""
        counts = [t.programs_compiled for t in self.trials() if t.programs_compiled is not None]
        return sum(counts) if counts else None

    def best_model(self) -> Any:
        """The best model, ready to use: raw inputs in, labels out (see :func:`tuner.load_best_model`)."""
        return load_best_model(self)

    def trials_dataframe(self) -> Any:
        """A pandas DataFrame: one row per trial with its parameters, objective, honest metrics, gap and verdict."""
        return self.results.trials_dataframe()


def create_study(space: Any = None, dataset: Any = "digits", **kwargs: Any) -> Study:
    """Create (or load, to resume) a study with the CLI's defaults. See :class:`Study`."""
    return Study(space, dataset, **kwargs)


def run_study(space: Any = None, dataset: Any = "digits", **kwargs: Any) -> Study:
    """Create or resume a study and run it to ``n_trials`` finished trials. See :class:`Study`."""
    run_kwargs = {k: kwargs.pop(k) for k in ("progress", "on_trial") if k in kwargs}
    return Study(space, dataset, **kwargs).run(**run_kwargs)
