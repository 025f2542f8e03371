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

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from tuner._logging import get_logger
from tuner.budget import budget_counts

__all__ = ["run_workers", "worker_env", "visible_gpus", "EXIT_RECYCLE"]

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
    return env


def _worker_cmd(study: Any, *, recycle_after: int | None, max_rss_mb: float | None, verbosity: int) -> list[str]:
    s = study.settings
    cmd = [sys.executable, "-m", "tuner", "worker", "--study", s.study_name, "--storage", s.storage]
    if s.parent_run_id:
        cmd += ["--parent-run-id", s.parent_run_id]
    if s.tracking_uri:
        cmd += ["--tracking-uri", s.tracking_uri]
    if recycle_after:
        cmd += ["--recycle-after", str(recycle_after)]
    if max_rss_mb:
        cmd += ["--max-rss-mb", str(max_rss_mb)]
    if verbosity < 0:
        cmd.append("-q")
    return cmd


def run_workers(study: Any, n_workers: int, *, recycle_after: int | None = 50, max_rss_mb: float | None = None,
                progress: bool = False, on_trial: Callable[[Any], None] | None = None, verbosity: int = 0,
                poll_seconds: float = 0.5) -> Any:
    """Run ``study`` with ``n_workers`` worker processes until it holds its ``n_trials`` finished trials.

    Returns:
        The study (its results read back from the storage).

    Raises:
        KeyboardInterrupt: after forwarding it to the workers and waiting for them.
        RuntimeError: when workers keep failing at start (e.g. a storage they cannot reach).
    """
    from tuner.results import TrialReport

    s = study.settings
    optuna_study = study.optuna_study  # create the study (and its recipe) before any worker joins
    study._record_target(s.n_trials)
    study._start_tracking()
    if study.tracker is not None:
        s.parent_run_id = study.tracker.parent_run_id
    gpus = visible_gpus()
    if gpus:
        _logger.info("%d GPU(s) visible: workers assigned round-robin %s", len(gpus), gpus)
    cmd = _worker_cmd(study, recycle_after=recycle_after, max_rss_mb=max_rss_mb, verbosity=verbosity)
    procs: dict[int, subprocess.Popen] = {}
    starts = {i: 0 for i in range(n_workers)}
    seen: set[int] = {t.number for t in optuna_study.get_trials(deepcopy=False) if t.state.is_finished()}
    bar = None
    status = "FINISHED"
    target = s.n_trials

    def start(i: int) -> None:
        starts[i] += 1
        procs[i] = subprocess.Popen(cmd, env=worker_env(i, n_workers, gpus=gpus), start_new_session=True)

    def report_new() -> None:
        for t in optuna_study.get_trials(deepcopy=False):
            if t.state.is_finished() and t.number not in seen:
                seen.add(t.number)
                if bar is not None and t.user_attrs.get("fail_reason") != "interrupted":
                    bar.update(1)
                if on_trial is not None:
                    on_trial(TrialReport.from_frozen(t))

    try:
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=max(0, target - budget_counts(optuna_study)[0]), desc=f"study {s.study_name}",
                       unit="trial", file=sys.stderr, dynamic_ncols=True)
        for i in range(n_workers):
            start(i)
        while procs:
            time.sleep(poll_seconds)
            report_new()
            for i, proc in list(procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del procs[i]
                done = budget_counts(optuna_study)[0] >= target
                if code == 2:
                    raise RuntimeError(f"worker {i} stopped on a configuration error (exit 2); see its message above")
                if not done and code in (0, EXIT_RECYCLE, -signal.SIGKILL, -signal.SIGTERM, 1, -signal.SIGSEGV):
                    if starts[i] > 3 * max(1, target) + 5:
                        raise RuntimeError(f"worker {i} keeps exiting (last exit code {code})")
                    if code not in (0, EXIT_RECYCLE):
                        _logger.warning("worker %d exited with code %s; starting a new one", i, code)
                    start(i)
        report_new()
    except KeyboardInterrupt:
        status = "KILLED"
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        report_new()
        raise
    except BaseException:
        status = "FAILED"
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        raise
    finally:
        if bar is not None:
            bar.close()
        s.parent_run_id = None  # this process owns the parent run: close it
        study._finish_tracking(status)
    return study
