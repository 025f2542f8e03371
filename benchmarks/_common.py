"""Helpers shared by the benchmark scripts (not a benchmark itself).

Import it first: it quiets TensorFlow's C++ logging and puts the repository root on ``sys.path`` so a
script runs from a clean clone (``python benchmarks/NAME.py``) without an install.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# subprocesses (``python -m tuner worker``, backend children) find the package too
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def load1() -> float:
    """The 1-minute load average (how busy the machine is besides us)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def commit() -> str:
    """The repository's commit, with ``+dirty`` when tracked files have uncommitted changes."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "commit": commit(), "load1_start": load1()}


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], *, file: Any = None) -> None:
    """Print ``rows`` as a right-aligned text table; ``columns`` is ``[(key, header), ...]``."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            if v != v:
                return "-"
            return f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}"
        return "-" if v is None else str(v)

    cells = [[fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, (_, h) in enumerate(columns)]
    out = file or sys.stdout
    print("  ".join(h.rjust(w) for (_, h), w in zip(columns, widths)), file=out)
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths)), file=out)


def quiet_keras() -> Any:
    """Import keras with TensorFlow's start-up chatter on descriptor 2 swallowed."""
    from tuner._backend import import_keras_quietly

    return import_keras_quietly()


class EpochTimer:
    """A Keras callback factory: wall time (``times``) and this process's CPU time, all threads
    (``cpu_times``), of every epoch, from its begin to the end of the last callback.

    Put it last among the callbacks so that its ``on_epoch_end`` runs after every other callback's.
    CPU time is much less disturbed than wall time by other work on a shared machine.
    """

    def __new__(cls) -> Any:
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []
                self.cpu_times: list[float] = []
                self._t = self._c = 0.0

            def on_train_begin(self, logs: dict | None = None) -> None:
                self.times, self.cpu_times = [], []

            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                self._t, self._c = time.perf_counter(), time.process_time()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                self.times.append(time.perf_counter() - self._t)
                self.cpu_times.append(time.process_time() - self._c)

        return _Timer()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def time_calls(owner: Any, attr: str, label: str, spent: dict[str, float], spent_cpu: dict[str, float], *,
               nest: dict[str, int] | None = None) -> None:
    """Replace ``owner.attr`` (a function of a module or class) by a wrapper that adds each call's wall and CPU
    time to ``spent[label]`` and ``spent_cpu[label]``. With ``nest`` (``{"depth": 0}`` shared by the wrappers)
    a call made inside another wrapped call is counted only there. A static method stays static."""
    original = getattr(owner, attr)

    def timed(*a: Any, **k: Any) -> Any:
        if nest is not None and nest["depth"]:
            return original(*a, **k)
        if nest is not None:
            nest["depth"] += 1
        t, c = time.perf_counter(), time.process_time()
        try:
            return original(*a, **k)
        finally:
            spent[label] += time.perf_counter() - t
            spent_cpu[label] += time.process_time() - c
            if nest is not None:
                nest["depth"] -= 1

    static = isinstance(getattr(owner, "__dict__", {}).get(attr), staticmethod)
    setattr(owner, attr, staticmethod(timed) if static else timed)
