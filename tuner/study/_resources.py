"""Resources of the worker processes of ``--workers N`` on one machine: each one's share of the CPU threads
and its GPU (round-robin), set through its environment before Keras starts. Ray places its own trials
(``--cpus-per-trial``, ``--gpus-per-trial``); nothing here runs on that path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

from tuner._logging import get_logger

__all__ = ["visible_gpus", "worker_env", "share_this_process", "wait_or_kill"]

_logger = get_logger(__name__)


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


def worker_env(
    index: int,
    n_workers: int,
    *,
    gpus: list[str] | None = None,
    base: dict[str, str] | None = None,
    cpu_count: int | None = None,
) -> dict[str, str]:
    """The environment of worker ``index`` of ``n_workers``: its share of CPU threads and its GPU."""
    env = dict(os.environ if base is None else base)
    cores = cpu_count or os.cpu_count() or 1
    threads = max(1, cores // n_workers)
    env.update(
        OMP_NUM_THREADS=str(threads),
        TF_NUM_INTRAOP_THREADS=str(threads),
        TF_NUM_INTEROP_THREADS="1",
        MKL_NUM_THREADS=str(threads),
        OPENBLAS_NUM_THREADS=str(threads),
    )
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


_THREAD_KEYS = (
    "OMP_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "XLA_FLAGS",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
)


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


def wait_or_kill(procs: Any, *, timeout: float) -> None:
    """Wait for each process to exit; kill one that is still running after ``timeout`` seconds."""
    for proc in list(procs):
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
