"""``--ray [ADDRESS]``: a study's trials as calls on Ray actors, anywhere on a Ray cluster.

:class:`RayCluster` is the :class:`~tuner.study.Executor` of Ray. The driver (this process) keeps the
study: it creates each trial (``ask``, under the budget lock, so the study ends with exactly
``n_trials``), hands its id to a free :class:`~tuner.study._ray_trial.TrialRunner` actor (``--workers N``
of them, each asking Ray for ``--cpus-per-trial`` CPUs and ``--gpus-per-trial`` GPUs, fractions allowed:
Ray places them, tuner assigns no device), and ends it (``tell``) with what the runner sends back. The
runner suggests, reports and prunes on its node through the study host
(:class:`~tuner.study._ray_trial.StudyHost`, an actor on this node that owns the storage): see
docs/ARCHITECTURE.md for why this channel and not a storage proxy port.

Faults: a runner whose process dies mid-trial (``kill -9``, a node lost) fails its trial with the reason
and the trial is retried once with its parameters (Optuna's ``RetryFailedTrialCallback``); Ray never
re-runs an actor call itself (``max_task_retries=0``), so a trial number runs at most once. Ctrl-C kills
the runners, fails their trials as ``interrupted`` and closes their runs as KILLED.

Ray is imported inside the functions: ``import tuner`` and ``--help`` never import it.
"""

from __future__ import annotations

import dataclasses
import socket
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tuner._logging import get_logger, progress_bar
from tuner._store import absolute_sqlite, default_tracking_uri, mask_secrets
from tuner.errors import ConfigError, Problem
from tuner.study._budget import BudgetLock, budget_counts
from tuner.study._interrupts import check_stop
from tuner.study._record import INTERRUPTED, TrialRecord, read_trial
from tuner.study._results import TrialReport
from tuner.study._settings import completed_name, completed_storage
from tuner.study._storage import seed_next_trial
from tuner.study._types import RunningStudy

__all__ = ["RayCluster", "connect_ray", "import_ray", "LOCAL"]

_logger = get_logger(__name__)

LOCAL = "local"  # --ray with no address: a Ray instance started here, on loopback
_PROBE_SECONDS = 3.0
# what a runner's process needs from ours: the Keras backend, quiet TensorFlow, the caches (its environment:
# Ray writes it into the worker's command line and its runtime-env agent's log, so nothing secret goes there)
_PASSED_ENV = (
    "KERAS_BACKEND",
    "TF_CPP_MIN_LOG_LEVEL",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "TUNER_CACHE_DIR",
    "KERAS_HOME",
)
# MLflow's credentials travel as arguments of the host's creation and the runners' set-up instead: over Ray's own
# connections (behind its token when RAY_AUTH_MODE=token), as the storage's password does to the host
_SECRET_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def import_ray() -> Any:
    """Ray, or one line naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            [
                Problem(
                    "--ray",
                    "ray",
                    'needs Ray, which is not installed: pip install "honest-tuner[ray]"',
                    has_value=False,
                )
            ]
        ) from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port``; None for ``auto``."""
    rest = address
    if ":" not in rest:
        return None
    host, _, port = rest.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


@contextmanager
def _on_loopback() -> Iterator[None]:
    """While a local instance starts, Ray binds its servers (GCS, raylet, workers, the driver's own port, the
    runtime-env agent) to 127.0.0.1 instead of every interface.

    Ray picks the node's address from its private ``ray_constants.ENABLE_RAY_CLUSTER`` (off on Windows and macOS,
    where a local instance uses loopback); ``_node_ip_address="127.0.0.1"`` alone still leaves the servers on
    ``::``. The flag is read once, at start-up, and restored at once; tests/test_borrowed_names.py fails when Ray
    drops it, and tests/test_security.py when Ray listens beyond loopback anyway.
    """
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def connect_ray(address: str, *, num_cpus: int | None = None) -> Any:
    """Connect this process to Ray (once): ``"local"`` starts an instance here, bound to 127.0.0.1 and without
    a dashboard; any other address joins that cluster (``auto``: the one ``ray start`` started on this machine).

    Raises:
        ConfigError: when Ray is not installed, or nothing answers at ``address`` within seconds (before any
            study is written).
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    where = _host_port(address) if address != LOCAL else None
    if where is not None:  # Ray itself retries for a minute: ask the port first
        try:
            socket.create_connection(where, timeout=_PROBE_SECONDS).close()
        except OSError as err:
            raise ConfigError(
                [Problem("--ray", "ray", f"nothing answers at this address ({err.strerror or err})", value=address)]
            ) from None
    # the runners' own output (TensorFlow's warnings) reaches this terminal with -v only: each trial's end,
    # and why a runner died, come back as results
    verbose = get_logger("tuner").isEnabledFor(10)
    options: dict[str, Any] = {"log_to_driver": verbose, "logging_level": "ERROR", "configure_logging": True}
    try:
        if address == LOCAL:
            # "local": a new instance even when `ray start` runs here (or left its address file behind), on
            # loopback only
            with _on_loopback():
                ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        cause: BaseException | None = err
        refused = False
        while cause is not None:
            refused = refused or "Authentication" in type(cause).__name__ or "InvalidAuthToken" in str(cause)
            cause = cause.__cause__
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if refused:
            first = (
                "the cluster refused this process's token: set RAY_AUTH_MODE=token and the cluster's token "
                "in ~/.ray/auth_token or RAY_AUTH_TOKEN"
            )
        raise ConfigError([Problem("--ray", "ray", f"cannot join this Ray cluster ({first})", value=address)]) from None
    return ray


class RayCluster:
    """Runs a study's trials on Ray: ``workers`` trials at once, each with ``cpus_per_trial`` CPUs and
    ``gpus_per_trial`` GPUs (fractions allowed).

    Args:
        address: ``"local"`` (start Ray here), ``"auto"`` or ``"host:6379"`` (this machine must be a node of that
            cluster: the study's host actor runs here, beside the storage; Ray Client ``ray://`` is refused).
        workers: trials running at once (one runner actor each). Defaults to `1`.
        cpus_per_trial: Ray CPUs per trial. Defaults to `1`.
        gpus_per_trial: Ray GPUs per trial. Defaults to `0`.
    """

    def __init__(
        self, address: str, *, workers: int = 1, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0
    ) -> None:
        problems = []
        if not isinstance(workers, int) or workers < 1:
            problems.append(Problem("--workers", "workers", "must be a positive integer", value=workers))
        if not cpus_per_trial > 0:
            problems.append(
                Problem("--cpus-per-trial", "cpus_per_trial", "must be a positive number", value=cpus_per_trial)
            )
        if not gpus_per_trial >= 0:
            problems.append(Problem("--gpus-per-trial", "gpus_per_trial", "must be 0 or more", value=gpus_per_trial))
        if address.startswith("ray://"):  # the study host must run beside the storage, on a node of the cluster
            problems.append(
                Problem(
                    "--ray",
                    "ray",
                    "Ray Client addresses are not supported: run the study on a node "
                    "of the cluster (--ray auto there, or ray job submit -- python -m tuner study "
                    "--ray auto)",
                    value=address,
                )
            )
        if problems:
            raise ConfigError(problems)
        self.address = address
        self.workers = workers
        self.cpus_per_trial = float(cpus_per_trial)
        self.gpus_per_trial = float(gpus_per_trial)
        self.warm: list[Any] = []  # runners started by warm_up(), not yet given their study

    def environment(self) -> dict[str, str]:
        """The runners' environment: what they need from ours, and their share of CPU threads."""
        env = {k: v for k, v in _environ().items() if k in _PASSED_ENV}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        threads = str(max(1, int(self.cpus_per_trial)))
        env.update(OMP_NUM_THREADS=threads, TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS="1")
        return env

    @staticmethod
    def secrets() -> dict[str, str]:
        """MLflow's credentials from this process's environment, for the host and the runners' set-up."""
        return {k: v for k, v in _environ().items() if k in _SECRET_ENV}

    def make_runner(self) -> Any:
        """A runner actor with a trial's resources; it imports Keras at once. No Ray retries
        (``max_restarts=0``, ``max_task_retries=0``): a trial number runs at most once."""
        import ray

        from tuner.study._ray_trial import TrialRunner

        return (
            ray.remote(TrialRunner)
            .options(
                num_cpus=self.cpus_per_trial,
                num_gpus=self.gpus_per_trial,
                max_restarts=0,
                max_task_retries=0,
                runtime_env={"env_vars": self.environment()},
            )
            .remote()
        )

    def warm_up(self) -> None:
        """Join Ray and start the runners now, so that their start (a Python process each, Keras imported)
        overlaps this process's own work until the study exists (the CLI calls it first thing).

        Raises:
            ConfigError: as :func:`connect_ray`.
        """
        connect_ray(self.address)
        if not self.warm:
            self.warm = [self.make_runner() for _ in range(self.workers)]

    def run(self, study: RunningStudy, *, progress: bool, on_trial: Callable[[Any], None] | None) -> None:
        self.warm_up()  # before the study is written: a dead address leaves nothing behind
        import optuna

        debug = get_logger("tuner").isEnabledFor(10)
        optuna.logging.set_verbosity(optuna.logging.WARNING if debug else optuna.logging.ERROR)
        s = study.settings
        study.record_target(s.n_trials)
        study.stopped_for = None
        with study.tracking():
            if budget_counts(study.optuna_study)[0] >= s.n_trials:
                _logger.info("study %r already holds %d finished trials: nothing to run", s.study_name, s.n_trials)
                return
            _Pool(self, study, progress=progress, on_trial=on_trial).run()


@dataclasses.dataclass
class _Running:
    slot: int
    trial: Any  # the driver's optuna.Trial: what the driver writes on it goes through the trial record
    runner: Any

    @property
    def number(self) -> int:
        return self.trial.number


class _Pool:
    """The driver's loop: keep ``workers`` trials running until the study holds its total."""

    def __init__(
        self, cluster: RayCluster, study: RunningStudy, *, progress: bool, on_trial: Callable[[Any], None] | None
    ) -> None:
        import ray

        self.ray = ray
        self.cluster = cluster
        self.study = study
        self.optuna_study = study.optuna_study
        self.on_trial = on_trial
        s = study.settings
        self.target = s.n_trials
        self.deadline = None if s.timeout is None else time.monotonic() + s.timeout
        self.bar = None
        if progress:  # drawn in a terminal or a notebook only (as in the single-process loop)
            self.bar = progress_bar(
                total=max(0, self.target - budget_counts(self.optuna_study)[0]),
                desc=f"study {s.study_name}",
                unit="trial",
            )
        self.env = cluster.environment()
        self.host = self._start_host()
        self.recipe = self._recipe()
        self.data_ref = ray.put(study.dataset) if study.dataset_spec is None else None  # once, in the object store
        self.runners: dict[int, Any] = {}
        self.running: dict[Any, _Running] = {}

    # -- set-up ---------------------------------------------------------------------------------
    def _start_host(self) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from tuner.study._ray_trial import StudyHost

        s = self.study.settings
        here = self.ray.get_runtime_context().get_node_id()
        settings = dataclasses.replace(s, storage=absolute_sqlite(s.storage))
        host = (
            self.ray.remote(StudyHost)
            .options(
                num_cpus=0,
                max_restarts=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
                runtime_env={"env_vars": self.env},
            )
            .remote(settings, _tracking_uri(s), self.study.tracking_run_id, self.cluster.secrets())
        )
        return host

    def _recipe(self) -> Any:
        from tuner.study._model_ref import IN_MEMORY
        from tuner.study._ray_trial import RayRecipe

        study, s = self.study, self.study.settings
        model_file = model_object = builder = None
        if s.model and s.model != IN_MEMORY:
            path = Path(s.model.rsplit(":", 1)[0])
            if path.suffix == ".py" and path.is_file():  # the user's file travels with the recipe
                model_file = (path.name, path.read_text())
        elif study.user_model is not None:
            model_object = study.user_model.obj
        if study.user_model is None and study.builder is not None:
            builder = study.builder
        # the worker's copy: the storage URL without its password (it reaches the storage through the host)
        settings = dataclasses.replace(
            s, storage=mask_secrets(s.storage), parent_run_id=study.tracking_run_id, tracking_uri=_tracking_uri(s)
        )
        dataset = study.dataset_spec.get("dataset") if study.dataset_spec else None
        options = {k: v for k, v in (study.dataset_spec or {}).items() if k != "dataset"}
        return RayRecipe(
            space=study.space,
            dataset=dataset,
            dataset_options=options,
            settings=settings,
            model=s.model,
            model_file=model_file,
            model_object=model_object,
            builder=builder,
            tracking_uri=_tracking_uri(s),
            study_class=type(study),
        )

    def _start_runners(self, slots: list[int]) -> None:
        """Give runners (warm ones first) the study at once, and wait until each has built it."""
        made = {slot: self.cluster.warm.pop() if self.cluster.warm else self.cluster.make_runner() for slot in slots}
        self.runners.update(made)
        secrets = self.cluster.secrets()
        setups = [runner.setup.remote(self.host, self.recipe, self.data_ref, secrets) for runner in made.values()]
        for error, _pid in self.ray.get(setups):
            if error is not None:  # e.g. a data file missing on that node: one line, before any trial runs
                raise ConfigError(error)

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._loop()
        except KeyboardInterrupt:
            self._stop_running(INTERRUPTED, "interrupted")
            raise
        except BaseException:
            self._stop_running("the study stopped on an error", "failed")
            raise
        finally:
            for runner in [*self.runners.values(), *self.cluster.warm]:
                self.ray.kill(runner)
            self.cluster.warm.clear()
            self.ray.kill(self.host)
            if self.bar is not None:
                self.bar.close()

    def _loop(self) -> None:
        self._start_runners(list(range(self.cluster.workers)))
        lock = BudgetLock(completed_storage(self.study.settings), completed_name(self.study.settings))
        while True:
            check_stop()
            self._launch(lock)
            if not self.running:
                counted, _running = budget_counts(self.optuna_study)
                if counted >= self.target or self.study.halted or self._expired():
                    self.study.stopped_for = (
                        None if counted >= self.target else ("halted" if self.study.halted else "timeout")
                    )
                    return
                time.sleep(1.0)  # the rest of the budget is held by trials running elsewhere
                continue
            ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=0.5)
            for ref in ready:
                self._finish(ref, self.running.pop(ref))

    def _expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _launch(self, lock: BudgetLock) -> None:
        busy = {r.slot for r in self.running.values()}
        for slot in range(self.cluster.workers):
            if slot in busy or self.study.halted or self._expired():
                continue
            if slot not in self.runners:  # its runner died: a fresh one, before its trial exists
                self._start_runners([slot])
            with lock:
                counted, running = budget_counts(self.optuna_study)
                if counted + running >= self.target:
                    return
                seed_next_trial(self.study.opened, self.study.settings, self.study.space)  # a resume never replays
                with warnings.catch_warnings():  # Optuna's note that heartbeats go with optimize(): Ray watches
                    warnings.simplefilter("ignore", UserWarning)
                    trial = self.optuna_study.ask()
            runner = self.runners[slot]
            ref = runner.run_trial.remote(trial._trial_id)  # Optuna's id of the trial (Trial has no public one)
            self.running[ref] = _Running(slot, trial, runner)

    def _finish(self, ref: Any, job: _Running) -> None:
        import optuna

        try:
            out = self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError) as err:
            self.runners.pop(job.slot, None)  # a fresh runner takes the slot at the next launch
            self._dead(job, _death_reason(err))
            return
        state = out["state"]
        TrialState = optuna.trial.TrialState
        if state == "complete":
            from tuner.study._best import BestModel

            if out["model"] is not None and BestModel.is_best(self.optuna_study, self.study.directions, out["values"]):
                self.study.best_kept.keep_bytes(job.number, out["model"])
            frozen = self.optuna_study.tell(job.number, out["values"])
        elif state == "pruned":
            frozen = self.optuna_study.tell(job.number, state=TrialState.PRUNED)
        else:
            frozen = self.optuna_study.tell(job.number, state=TrialState.FAIL)
        self._report(frozen)
        if state == "config":
            raise ConfigError(out["reason"])

    def _dead(self, job: _Running, reason: str) -> None:
        """A trial whose runner died: FAIL with the reason, retried once with its parameters, run closed."""
        import optuna

        number = job.number
        TrialRecord.write(job.trial, fail_reason=reason)
        frozen = self.optuna_study.tell(number, state=optuna.trial.TrialState.FAIL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.RetryFailedTrialCallback(max_retry=1)(self.optuna_study, frozen)
        retried = number in {
            n for t in self.optuna_study.get_trials(deepcopy=False) for n in t.system_attrs.get("retry_history", [])
        }
        _logger.warning("trial %d: %s%s", number, reason, "; it is retried with the same parameters" if retried else "")
        run_id = self._run_of(frozen)
        if run_id:
            try:
                self.study.tracker.fail_dead_trial(run_id, reason)
            except Exception as err:  # the Optuna side must not depend on the tracking store
                _logger.warning("could not close the tracking run of dead trial %d: %s", number, err)
        self._report(self.optuna_study.trials[number])

    def _stop_running(self, reason: str, run_state: str) -> None:
        """Ctrl-C or an error: kill the running trials' runners, fail their trials, close their runs."""
        import optuna

        for _ref, job in list(self.running.items()):
            self.ray.kill(job.runner, no_restart=True)
            self.runners.pop(job.slot, None)
            try:
                TrialRecord.write(job.trial, fail_reason=reason)
                frozen = self.optuna_study.tell(job.number, state=optuna.trial.TrialState.FAIL)
                run_id = self._run_of(frozen)
                if run_id:
                    self.study.tracker.end_trial(run_id, state=run_state, tags={"fail_reason": reason})
            except Exception as err:
                _logger.warning("could not close trial %d: %s", job.number, err)
        self.running.clear()

    def _run_of(self, frozen: Any) -> str | None:
        """A trial's MLflow run: from its record, else from the host that started it."""
        return read_trial(frozen).mlflow_run_id or self.ray.get(self.host.run_of.remote(frozen.number), timeout=30)

    def _report(self, frozen: Any) -> None:
        if self.bar is not None and read_trial(frozen).fail_reason != INTERRUPTED:
            self.bar.update(1)
        if self.on_trial is not None:
            self.on_trial(TrialReport.from_frozen(frozen))


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def _tracking_uri(s: Any) -> str:
    """The study's tracking URI as every node must read it (a relative SQLite path made absolute)."""
    return absolute_sqlite(s.tracking_uri or default_tracking_uri()) or "none"


def _death_reason(err: BaseException) -> str:
    """One line on why a runner died (Ray's message is a paragraph)."""
    text = str(err)
    for hint in ("SIGKILL", "killed", "OOM", "out of memory", "node", "exit"):
        for line in text.splitlines():
            if hint.lower() in line.lower():
                return f"Ray worker died: {line.strip()[:300]}"
    return f"Ray worker died ({type(err).__name__})"
