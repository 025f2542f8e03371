"""Several worker processes on one study: ``python -m tuner study --workers N``.

Processes, not threads: TensorFlow keeps one runtime and Keras one global state per process. Each worker
is ``python -m tuner worker`` joining the study through its storage, exactly as a worker on another
machine would; the budget is shared exactly (:mod:`tuner.study._budget`). The supervisor here

- starts every worker the same way, from a join file (:mod:`tuner.study._join`), with its share of the CPU
  cores and a GPU (:mod:`tuner.study._resources`),
- restarts a worker that exits to be recycled (after ``recycle_after`` trials or above ``max_rss_mb``) or
  that died, whatever its exit code (a native abort included: it is logged), until the study holds its
  ``n_trials`` finished trials,
- forwards Ctrl-C to the workers, which fail their running trial as ``interrupted``.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any, TypedDict

from tuner._logging import get_logger, progress_bar
from tuner.errors import ConfigError
from tuner.study._budget import budget_counts
from tuner.study._join import EarlyWorkers, join_of
from tuner.study._process import restoring_process_state
from tuner.study._resources import share_this_process, visible_gpus, wait_or_kill, worker_env
from tuner.study._types import RunningStudy

__all__ = ["run_workers", "EXIT_RECYCLE", "ProcessPool"]

_logger = get_logger(__name__)
EXIT_RECYCLE = 3
EXIT_CONFIG = 2  # a worker stopped on a configuration error: the study stops with its reason


class _Supervisor:
    """Starts, watches and restarts worker processes; reports every finished trial once."""

    def __init__(
        self,
        study: RunningStudy,
        n_workers: int,
        cmd: list[str],
        gpus: list[str],
        *,
        bar: Any,
        on_trial: Callable[[Any], None] | None,
        deadline: float | None = None,
    ) -> None:
        self.study = study
        self.deadline = deadline  # time.time() after which no worker starts a trial (--timeout)
        self.forwarded = False
        self.optuna_study = study.optuna_study
        self.target = study.settings.n_trials
        self.n_workers = n_workers
        self.cmd = cmd
        self.gpus = gpus
        self.bar = bar
        self.on_trial = on_trial
        self.procs: dict[int, subprocess.Popen] = {}
        self.starts = dict.fromkeys(range(n_workers), 0)
        self.seen: set[int] = {t.number for t in self.optuna_study.get_trials(deepcopy=False) if t.state.is_finished()}
        self.lock = threading.RLock()
        self.error: BaseException | None = None

    def start(self, i: int) -> None:
        self.starts[i] += 1
        self.procs[i] = subprocess.Popen(
            self.cmd, env=worker_env(i, self.n_workers, gpus=self.gpus), start_new_session=True
        )

    def done(self) -> bool:
        return budget_counts(self.optuna_study)[0] >= self.target

    def expired(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

    def report(self, report: Any) -> None:
        """Report one finished trial (a :class:`~tuner.results.TrialReport`) unless it was reported before."""
        with self.lock:
            if report.number in self.seen:
                return
            self.seen.add(report.number)
            if self.bar is not None and report.fail_reason != "interrupted":
                self.bar.update(1)
            if self.on_trial is not None:
                self.on_trial(report)

    def report_new(self) -> None:
        from tuner.study._results import TrialReport

        for t in self.optuna_study.get_trials(deepcopy=False):
            if t.state.is_finished() and t.number not in self.seen:
                self.report(TrialReport.from_frozen(t))

    def check(self) -> None:
        """Restart workers that exited to be recycled (or died) while the budget is not reached."""
        with self.lock:
            for i, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self.procs[i]
                if code == EXIT_CONFIG:
                    raise self.config_error(i)
                if code not in (0, EXIT_RECYCLE):  # died: a signal, an error, a native abort (-6): any code
                    _logger.warning(
                        "worker %d exited with code %s%s",
                        i,
                        code,
                        "" if self.done() or self.expired() or self.forwarded else "; starting a new one",
                    )
                if self.done() or self.expired() or self.forwarded:
                    continue
                if self.starts[i] > 3 * max(1, self.target) + 5:
                    raise RuntimeError(f"worker {i} keeps exiting (last exit code {code})")
                self.start(i)

    def config_error(self, i: int) -> ConfigError:
        """The configuration error a worker stopped on (exit 2): the reason its trial keeps, when it has one."""
        from tuner.study._record import read_trial

        for t in reversed(self.optuna_study.get_trials(deepcopy=False)):
            record = read_trial(t)
            if t.state.name == "FAIL" and record.config_error and record.fail_reason:
                return ConfigError(record.fail_reason)
        return ConfigError(f"worker {i} stopped on a configuration error (exit 2); see its message above")

    def watch(self, stop: threading.Event, poll_seconds: float) -> None:
        """The background loop while this process runs trials itself.

        A stop request (Ctrl-C) is forwarded to the workers at once. An error (a worker that fails on its
        configuration or keeps dying) is logged, kept for the caller, and halts this process's trials after
        the running one.
        """
        from tuner.study._interrupts import stop_requested

        while not stop.wait(poll_seconds):
            try:
                if stop_requested():
                    self.forward_interrupt()
                if self.procs:
                    self.check()
                    self.report_new()
            except BaseException as err:  # raised in the main thread once its trial is done
                if not isinstance(err, ConfigError):  # that one is printed once, by the caller
                    _logger.error("%s; stopping after the running trial", err)
                self.error = err
                self.study.halt()
                return

    def forward_interrupt(self) -> None:
        """Send SIGINT to the workers once: each fails its running trial as ``interrupted`` and exits."""
        if not self.forwarded:
            self.forwarded = True
            self.signal_all(signal.SIGINT)

    def signal_all(self, sig: int) -> None:
        with self.lock:
            procs = list(self.procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(sig)


def _supervise(
    study: RunningStudy,
    n_workers: int,
    gpus: list[str],
    *,
    recycle_after: int | None,
    max_rss_mb: float | None,
    progress: bool,
    on_trial: Callable[[Any], None] | None,
    verbosity: int,
    poll_seconds: float,
    in_process: bool,
    early: EarlyWorkers,
) -> None:
    """Start the workers, run trials here (``in_process``), restart recycled workers, and wait for them all."""
    s = study.settings
    bar = None
    if progress:  # drawn in a terminal or a notebook only (as in the single-process loop)
        bar = progress_bar(
            total=max(0, s.n_trials - budget_counts(study.optuna_study)[0]), desc=f"study {s.study_name}", unit="trial"
        )
    deadline = None if s.timeout is None else time.time() + s.timeout
    # every worker (started early, started now, or restarted) joins through the same file
    join_of(study, recycle_after=recycle_after, max_rss_mb=max_rss_mb, deadline=deadline).write(early.join_file)
    sup = _Supervisor(study, n_workers, early.cmd, early.gpus, bar=bar, on_trial=on_trial, deadline=deadline)
    try:
        if early.procs:
            early.adopted = True
            sup.procs.update(early.procs)
            for i in early.procs:
                sup.starts[i] += 1
        else:
            for i in range(1 if in_process else 0, n_workers):
                sup.start(i)
        if in_process:
            stop = threading.Event()
            watcher = threading.Thread(target=sup.watch, args=(stop, poll_seconds), name="tuner-workers", daemon=True)
            watcher.start()
            try:
                study.run_here(max_trials=recycle_after, max_rss_mb=max_rss_mb, on_trial=sup.report)
            finally:
                stop.set()
                watcher.join()
            if sup.error is not None:
                raise sup.error
            if study.stopped_for == "recycle" and not sup.done() and not sup.expired():
                sup.start(0)
        while sup.procs:
            time.sleep(poll_seconds)
            sup.report_new()
            sup.check()
        sup.report_new()
    except KeyboardInterrupt:
        sup.forward_interrupt()
        wait_or_kill(sup.procs.values(), timeout=60)
        sup.report_new()
        raise
    except BaseException:
        sup.signal_all(signal.SIGTERM)
        raise
    finally:
        if bar is not None:
            bar.close()


@restoring_process_state()  # the thread shares given to this process (share_this_process) are put back after
def run_workers(
    study: RunningStudy,
    n_workers: int,
    *,
    recycle_after: int | None = 50,
    max_rss_mb: float | None = None,
    progress: bool = False,
    on_trial: Callable[[Any], None] | None = None,
    verbosity: int = 0,
    poll_seconds: float = 0.5,
    in_process: bool = True,
    early: EarlyWorkers | None = None,
) -> Any:
    """Run ``study`` with ``n_workers`` workers until it holds its ``n_trials`` finished trials.

    With ``in_process`` (the default, and what ``python -m tuner study --workers N`` does) this process
    is worker 0: it runs trials at once, with Keras already imported and the data loaded, while
    ``n_workers - 1`` worker processes start beside it; once it has run ``recycle_after`` trials (or
    passed ``max_rss_mb``) a worker process takes its place, so memory stays bounded in long studies.
    Without it, all ``n_workers`` are worker processes. ``early``: worker processes already started
    (:class:`EarlyWorkers`, with ``in_process``), which join through their join file.

    Returns:
        The study (its results read back from the storage).

    Raises:
        KeyboardInterrupt: after forwarding it to the workers and waiting for them.
        ConfigError: when a worker stopped on a configuration error (the reason its trial keeps).
        RuntimeError: when workers keep failing at start (e.g. a storage they cannot reach).
    """
    s = study.settings
    study.record_target(s.n_trials)  # creates the study (and its recipe) before any worker joins
    gpus = visible_gpus()
    if gpus:
        _logger.info("%d GPU(s) visible: workers assigned round-robin %s", len(gpus), gpus)
    if in_process:
        share_this_process(n_workers, gpus)
    early = early if early is not None else EarlyWorkers(n_workers, verbosity=verbosity, start=False)
    try:
        # this process opens the study's tracking (its parent run) and closes it once, after every worker;
        # worker processes join that run, and study.run_here() here shares it
        with study.tracking():
            _supervise(
                study,
                n_workers,
                gpus,
                recycle_after=recycle_after,
                max_rss_mb=max_rss_mb,
                progress=progress,
                on_trial=on_trial,
                verbosity=verbosity,
                poll_seconds=poll_seconds,
                in_process=in_process,
                early=early,
            )
    finally:
        early.cleanup()
    return study


class _PoolOptions(TypedDict):
    """What :class:`ProcessPool` passes on to :func:`run_workers`."""

    recycle_after: int | None
    max_rss_mb: float | None
    verbosity: int
    early: EarlyWorkers | None
    in_process: bool


class ProcessPool:
    """The :class:`~tuner.study.Executor` of ``--workers N`` on this machine: this process and worker processes
    (see :func:`run_workers`; ``in_process=False``: worker processes alone)."""

    def __init__(
        self,
        n_workers: int,
        *,
        recycle_after: int | None = 50,
        max_rss_mb: float | None = None,
        verbosity: int = 0,
        early: EarlyWorkers | None = None,
        in_process: bool = True,
    ) -> None:
        self.n_workers = n_workers
        self.options: _PoolOptions = {
            "recycle_after": recycle_after,
            "max_rss_mb": max_rss_mb,
            "verbosity": verbosity,
            "early": early,
            "in_process": in_process,
        }

    def run(self, study: RunningStudy, *, progress: bool, on_trial: Callable[[Any], None] | None) -> None:
        run_workers(study, self.n_workers, progress=progress, on_trial=on_trial, **self.options)
