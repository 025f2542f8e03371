"""Resources of the worker processes of ``--workers N`` on one machine: how many (``--workers auto``:
:func:`auto_workers`), each one's share of the CPU threads and its GPU (round-robin), set through its environment
before Keras starts. Ray places its own trials (``--cpus-per-trial``, ``--gpus-per-trial``); nothing here runs on
that path.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from typing import Any

from tuner._logging import get_logger

__all__ = [
    "LARGE_MODEL_MACS",
    "WORKER_MB",
    "auto_workers",
    "available_cores",
    "available_mb",
    "estimate_macs",
    "resolve_workers",
    "visible_gpus",
    "worker_env",
    "share_this_process",
    "wait_or_kill",
]

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


LARGE_MODEL_MACS = 1_000_000
"""Multiply-adds per example above which :func:`auto_workers` runs one trial at a time: a model that size keeps
every core of a small machine busy on its own (the default spaces on digits and mnist1d estimate 0.15M-0.7M; a
2-block CNN with 64 filters on 28x28 images, 7.7M)."""

WORKER_MB = 1024
"""Memory one worker process takes with Keras, TensorFlow and a small model loaded (about 0.6-0.9 GiB measured on
digits), plus its copy of the data: :func:`auto_workers` starts no more workers than the available memory holds."""


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity where the platform tells, else every core)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_mb() -> float | None:
    """Memory available to new processes, in MiB (``MemAvailable`` on Linux); None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (AttributeError, ValueError, OSError):
        return None


def _largest(param: Any) -> Any:
    """The largest value a space parameter takes (its value, its ``high``, or its largest numeric choice)."""
    if param.type == "fixed":
        return param.value
    if param.type in ("int", "float"):
        return param.high
    numeric = [c for c in param.choices or () if isinstance(c, (int, float)) and not isinstance(c, bool)]
    return max(numeric) if numeric else (param.choices or [None])[0]


def estimate_macs(space: Any, input_shape: tuple[int, ...] | None) -> float | None:
    """A rough count of the multiply-adds per example of the space's largest configuration, for
    :func:`auto_workers`; None when the input shape is unknown.

    Widths (``units``, ``conv_filters``, ``head_units``) and depth (``n_layers``) at their largest; a CNN's blocks
    at full resolution, each followed by 2x pooling (the shipped spaces pool), kernel ``kernel_size``; an RNN's
    cells over every step. An estimate to rank models by, not a profile.
    """
    if not input_shape:
        return None
    top = {name: _largest(p) for name, p in space.params.items()}

    def widest(*names: str, default: int) -> int:
        values = [int(v) for n, v in top.items() for k in names if (n == k or n.startswith(f"{k}_")) and v]
        return max(values, default=default)

    family = top.get("family") or "mlp"
    depth = max(1, int(top.get("n_layers") or 1))
    n_in = math.prod(input_shape)
    if family == "mlp":
        units = widest("units", default=64)
        return float(n_in * units + (depth - 1) * units * units + units * widest("head_units", default=0))
    channels = input_shape[-1] if len(input_shape) > 1 else 1
    positions = n_in / channels
    if family == "rnn":
        units = widest("units", "rnn_units", default=64)
        return float(positions * 4 * units * (units + channels) * depth)
    filters = widest("conv_filters", default=32)
    rank = max(1, len(input_shape) - 1)
    window = int(top.get("kernel_size") or 3) ** rank
    macs, inputs = 0.0, channels
    for _ in range(depth):
        macs += positions * window * inputs * filters
        positions, inputs = max(1.0, positions / 2**rank), filters
    return macs + positions * filters * widest("head_units", default=0)


def auto_workers(
    *,
    n_trials: int,
    macs: float | None = None,
    rebuildable: bool = True,
    cores: int | None = None,
    gpus: list[str] | None = None,
    memory_mb: float | None = None,
    data_mb: float = 0.0,
) -> tuple[int, str]:
    """How many workers ``--workers auto`` runs on this machine, and why (the reason the study's first line shows).

    One worker (this process, today's behaviour) when the study cannot use more: a study worker processes
    cannot rebuild (data or a model that lives in this process only), one core, or a model whose
    ``macs`` (multiply-adds per example, :func:`estimate_macs`) exceed :data:`LARGE_MODEL_MACS`, since one
    trial then keeps every core busy. On GPUs, one worker per GPU. Otherwise one worker per core, and no more
    than ``n_trials`` nor than the memory holds (:data:`WORKER_MB` plus ``data_mb`` each). The workers
    divide the cores' threads among them (:func:`worker_env`).

    Args:
        n_trials: the trials the study runs. Must be positive.
        macs: multiply-adds per example of the space's largest model; None when unknown (counted small).
        rebuildable: whether a worker process can rebuild the study from its storage. Defaults to `True`.
        cores: CPU cores. Defaults to :func:`available_cores`.
        gpus: visible GPUs. Defaults to :func:`visible_gpus`.
        memory_mb: memory available, MiB. Defaults to :func:`available_mb`.
        data_mb: the data's size in memory, MiB, which every worker loads. Defaults to `0`.

    Returns:
        ``(workers, reason)``, e.g. ``(2, "auto: 2 cores, small model, ~0.17M multiply-adds per example")``.
    """
    if not rebuildable:
        return 1, "auto: the study's data or model lives in this process only, so no worker process can rebuild it"
    gpus = visible_gpus() if gpus is None else gpus
    if gpus:
        n = max(1, min(len(gpus), n_trials))
        return n, f"auto: {len(gpus)} GPU{'s' if len(gpus) > 1 else ''}, one worker each"
    cores = available_cores() if cores is None else max(1, cores)
    if cores == 1:
        return 1, "auto: 1 core"
    size = "model size unknown" if macs is None else f"small model, ~{macs / 1e6:.2g}M multiply-adds per example"
    if macs is not None and macs > LARGE_MODEL_MACS:
        return 1, f"auto: large model, ~{macs / 1e6:.2g}M multiply-adds per example: one trial keeps every core busy"
    n, why = cores, f"{cores} cores, {size}"
    if n_trials < n:
        n, why = max(1, n_trials), f"{why}, {n_trials} trial{'s' if n_trials != 1 else ''}"
    memory_mb = available_mb() if memory_mb is None else memory_mb
    if memory_mb is not None:
        fits = max(1, int(memory_mb // (WORKER_MB + data_mb)))
        if fits < n:
            n, why = fits, f"{why}, memory for {fits}"
    return n, f"auto: {why}"


def resolve_workers(value: int | str, **facts: Any) -> tuple[int, str]:
    """``workers`` as given (an integer, or ``"auto"``) as a number and the reason: ``$TUNER_WORKERS`` overrides
    ``auto`` (a number, or ``auto``) for a study worker processes can rebuild; ``facts`` go to :func:`auto_workers`.

    Raises:
        ConfigError: for a value that is neither a positive integer nor ``auto`` (naming where it came from); for
            more than one worker on a study that worker processes cannot rebuild (``facts["rebuildable"]``).
    """
    from tuner.errors import ConfigError, Problem

    where, field = "--workers", "workers"
    rebuildable = facts.get("rebuildable", True)
    if value == "auto" and rebuildable and os.environ.get("TUNER_WORKERS", "auto").strip() not in ("", "auto"):
        value, where, field = os.environ["TUNER_WORKERS"].strip(), "$TUNER_WORKERS", "TUNER_WORKERS"
    if value == "auto":
        return auto_workers(**facts)
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if isinstance(value, bool) or n < 1 or (isinstance(value, float) and value != n):
        raise ConfigError([Problem(where, field, "must be a positive integer or 'auto'", value=value)])
    if n > 1 and not rebuildable:
        raise ConfigError(
            [
                Problem(
                    where,
                    field,
                    "needs a study that worker processes can rebuild from its storage: a dataset given by name or "
                    "file and a model by reference ('models.py:build'), not objects of this process; use 1 (or ray)",
                    value=value,
                )
            ]
        )
    return n, ("$TUNER_WORKERS" if where.startswith("$") else f"--workers {n}")


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
