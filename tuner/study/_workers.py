"""Several worker processes on one study: ``python -m tuner study --workers N``.

Processes, not threads: TensorFlow keeps one runtime and Keras one global state per process. Each worker
is ``python -m tuner worker`` joining the study through its storage, exactly as a worker on another
machine would; the budget is shared exactly (:mod:`tuner.budget`). The supervisor here

- divides the CPU cores among the workers (``OMP_NUM_THREADS``, ``TF_NUM_INTRAOP_THREADS``, XLA flags),
- assigns visible GPUs round-robin, with memory growth on and JAX preallocation off so several fit,
- restarts a worker that exits to be recycled (after ``recycle_after`` trials or above ``max_rss_mb``) or
  that died, until the study holds its ``n_trials`` finished trials,
- forwards Ctrl-C to the workers, which fail their running trial as ``interrupted``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuner._logging import get_logger, progress_bar
from tuner._store import STORAGE_ENV
from tuner.errors import ConfigError
from tuner.study._budget import budget_counts
from tuner.study._process import restoring_process_state

__all__ = ["TRACKING_ENV", "run_workers", "worker_env", "visible_gpus", "share_this_process", "EarlyWorkers", "read_join_file",
           "EXIT_RECYCLE"]

_logger = get_logger(__name__)
EXIT_RECYCLE = 3


def visible_gpus() -> list[str]:
    """GPU indices this machine shows (``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def worker_env(index: int, n_workers: int, *, gpus: list[str] | None = None, base: dict[str, str] | None = None,
               cpu_count: int | None = None) -> dict[str, str]:
    """The environment of worker ``index`` of ``n_workers``: its share of CPU threads and its GPU."""
    env = dict(os.environ if base is None else base)
    cores = cpu_count or os.cpu_count() or 1
    threads = max(1, cores // n_workers)
    env.update(OMP_NUM_THREADS=str(threads), TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS="1",
               MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    if threads == 1:
        flags = env.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            env["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    gpus = visible_gpus() if gpus is None else gpus
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    env["TUNER_WORKER_INDEX"] = str(index)
    env["TUNER_SUPERVISOR_PID"] = str(os.getpid())  # a worker waiting to join exits if this process goes
    return env


TRACKING_ENV = "TUNER_TRACKING_URI"  # a worker's tracking URI, like STORAGE_ENV its storage: never on its command line


def _worker_secrets(study: Any) -> dict[str, str]:
    """The storage and tracking URLs a worker process joins with, passed in its environment: ``ps`` shows a
    command line to every user, while ``/proc/PID/environ`` is readable by the process's owner alone."""
    s = study.settings
    env = {STORAGE_ENV: s.storage}
    if s.tracking_uri:
        env[TRACKING_ENV] = s.tracking_uri
    return env


def _worker_cmd(study: Any, *, recycle_after: int | None, max_rss_mb: float | None, verbosity: int) -> list[str]:
    s = study.settings
    cmd = [sys.executable, "-m", "tuner", "worker", "--study", s.study_name]
    if study.tracking_run_id:
        cmd += ["--parent-run-id", study.tracking_run_id]
    if recycle_after:
        cmd += ["--recycle-after", str(recycle_after)]
    if max_rss_mb:
        cmd += ["--max-rss-mb", str(max_rss_mb)]
    if verbosity < 0:
        cmd.append("-q")
    return cmd


_THREAD_KEYS = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "MKL_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "XLA_FLAGS", "TF_FORCE_GPU_ALLOW_GROWTH", "XLA_PYTHON_CLIENT_PREALLOCATE")


def share_this_process(n_workers: int, gpus: list[str] | None = None) -> None:
    """Give this process worker 0's share of the CPU threads (and GPU settings).

    Environment variables only take effect before the Keras backend starts its runtime: validating a space
    already does, so the CLI calls this first thing with ``--workers N``. Under TensorFlow the thread
    pools are also set directly, which fails harmlessly (with a debug line) once they exist.
    """
    env = worker_env(0, n_workers, gpus=visible_gpus() if gpus is None else gpus)
    for key in _THREAD_KEYS:
        if key in env:
            os.environ[key] = env[key]
    if n_workers > 1 and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" and "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(env["TF_NUM_INTRAOP_THREADS"]))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except (RuntimeError, AttributeError, ValueError):
            _logger.debug("TensorFlow's thread pools already exist: this process keeps its threads")


def _wait_or_kill(procs: Any, *, timeout: float) -> None:
    """Wait for each process to exit; kill one that is still running after ``timeout`` seconds."""
    for proc in list(procs):
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


class _Supervisor:
    """Starts, watches and restarts worker processes; reports every finished trial once."""

    def __init__(self, study: Any, n_workers: int, cmd: list[str], gpus: list[str], *, bar: Any,
                 on_trial: Callable[[Any], None] | None, deadline: float | None = None) -> None:
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
        self.starts = {i: 0 for i in range(n_workers)}
        self.seen: set[int] = {t.number for t in self.optuna_study.get_trials(deepcopy=False) if t.state.is_finished()}
        self.lock = threading.RLock()
        self.error: BaseException | None = None

    def start(self, i: int) -> None:
        self.starts[i] += 1
        cmd = self.cmd + ([] if self.deadline is None else ["--deadline", repr(self.deadline)])
        env = {**worker_env(i, self.n_workers, gpus=self.gpus), **_worker_secrets(self.study)}
        self.procs[i] = subprocess.Popen(cmd, env=env, start_new_session=True)

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
                if code == 2:
                    raise self.config_error(i)
                if self.done() or self.expired() or self.forwarded:
                    continue
                if code in (0, EXIT_RECYCLE, -signal.SIGKILL, -signal.SIGTERM, 1, -signal.SIGSEGV):
                    if self.starts[i] > 3 * max(1, self.target) + 5:
                        raise RuntimeError(f"worker {i} keeps exiting (last exit code {code})")
                    if code not in (0, EXIT_RECYCLE):
                        _logger.warning("worker %d exited with code %s; starting a new one", i, code)
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
        from tuner.study._callbacks import stop_requested

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


class EarlyWorkers:
    """Worker processes started before this process has its study, so that their imports overlap ours.

    ``python -m tuner study --workers N`` starts them first thing; each imports Keras, then waits for a
    *join file* that :func:`run_workers` writes once the study and its MLflow parent run exist (study
    name, storage, tracking URI, parent run, recycling), and joins the study from it. They exit if this
    process goes away, and :meth:`cancel` stops them when the study never starts (e.g. a bad space file).
    """

    def __init__(self, n_workers: int, *, verbosity: int = 0) -> None:
        import tempfile

        self.n_workers = n_workers
        self.folder = Path(tempfile.mkdtemp(prefix="tuner-join-"))
        self.join_file = self.folder / "study.json"
        self.cmd = [sys.executable, "-m", "tuner", "worker", "--join-file", str(self.join_file)]
        if verbosity < 0:
            self.cmd.append("-q")
        self.gpus = visible_gpus()
        self.procs: dict[int, subprocess.Popen] = {}
        self.adopted = False
        try:
            for i in range(1, n_workers):
                self.procs[i] = subprocess.Popen(self.cmd, env=worker_env(i, n_workers, gpus=self.gpus),
                                                 start_new_session=True)
        except BaseException:
            self.cancel()
            raise

    def write_join_file(self, study: Any, *, recycle_after: int | None, max_rss_mb: float | None,
                        deadline: float | None) -> None:
        s = study.settings
        info = {"study": s.study_name, "storage": s.storage, "tracking_uri": s.tracking_uri,
                "parent_run_id": study.tracking_run_id, "recycle_after": recycle_after, "max_rss_mb": max_rss_mb,
                "deadline": deadline}
        part = self.join_file.with_suffix(".part")
        part.unlink(missing_ok=True)
        # readable by this user alone: it holds the storage URL and its password
        with os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(json.dumps(info))
        part.replace(self.join_file)  # atomic: a worker never reads half a file

    def cancel(self) -> None:
        """Stop the workers (the study did not start) and remove the join file."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        _wait_or_kill(self.procs.values(), timeout=30)
        self.procs.clear()
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def read_join_file(path: str | os.PathLike[str], *, timeout: float = 3600.0, poll: float = 0.1) -> dict[str, Any] | None:
    """Wait for a join file (see :class:`EarlyWorkers`) and return its contents; None when the process
    that started this worker is gone (or its join folder), or ``timeout`` passed."""
    path = Path(path)
    parent = int(os.environ.get("TUNER_SUPERVISOR_PID") or os.getppid())
    deadline = time.monotonic() + timeout
    while not path.exists():
        if os.getppid() != parent or not path.parent.exists() or time.monotonic() > deadline:
            return None
        time.sleep(poll)
    return json.loads(path.read_text())


def _supervise(study: Any, n_workers: int, gpus: list[str], *, recycle_after: int | None, max_rss_mb: float | None,
               progress: bool, on_trial: Callable[[Any], None] | None, verbosity: int, poll_seconds: float,
               in_process: bool, early: EarlyWorkers | None) -> None:
    """Start the workers, run trials here (``in_process``), restart recycled workers, and wait for them all."""
    s = study.settings
    cmd = _worker_cmd(study, recycle_after=recycle_after, max_rss_mb=max_rss_mb, verbosity=verbosity)
    bar = None
    if progress:  # drawn in a terminal or a notebook only (as in the single-process loop)
        bar = progress_bar(total=max(0, s.n_trials - budget_counts(study.optuna_study)[0]),
                           desc=f"study {s.study_name}", unit="trial")
    deadline = None if s.timeout is None else time.time() + s.timeout
    if early is not None:
        early.write_join_file(study, recycle_after=recycle_after, max_rss_mb=max_rss_mb, deadline=deadline)
        cmd, gpus = early.cmd, early.gpus  # restarts join through the same file
    sup = _Supervisor(study, n_workers, cmd, gpus, bar=bar, on_trial=on_trial, deadline=deadline)
    try:
        if early is not None:
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
                study.run(max_trials=recycle_after, max_rss_mb=max_rss_mb, on_trial=sup.report)
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
        _wait_or_kill(sup.procs.values(), timeout=60)
        sup.report_new()
        raise
    except BaseException:
        sup.signal_all(signal.SIGTERM)
        raise
    finally:
        if bar is not None:
            bar.close()


@restoring_process_state()  # the thread shares given to this process (share_this_process) are put back after
def run_workers(study: Any, n_workers: int, *, recycle_after: int | None = 50, max_rss_mb: float | None = None,
                progress: bool = False, on_trial: Callable[[Any], None] | None = None, verbosity: int = 0,
                poll_seconds: float = 0.5, in_process: bool = True, early: EarlyWorkers | None = None) -> Any:
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
    try:
        # this process opens the study's tracking (its parent run) and closes it once, after every worker;
        # worker processes join that run, and study.run() here shares it
        with study.tracking():
            _supervise(study, n_workers, gpus, recycle_after=recycle_after, max_rss_mb=max_rss_mb, progress=progress,
                       on_trial=on_trial, verbosity=verbosity, poll_seconds=poll_seconds, in_process=in_process,
                       early=early)
    finally:
        if early is not None:
            early.cleanup()
    return study
