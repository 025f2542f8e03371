"""How a worker process of ``--workers N`` starts: the join file, written once and decoded in one place.

A supervised worker is ``python -m tuner worker --join-file PATH``. It waits for the file, which the
process running the study writes once the study and its MLflow parent run exist, and joins the study from
it: study name, storage, tracking URI, parent run, recycling and the deadline of ``--timeout``. The file is
readable by its owner alone (it holds the storage URL and its password); ``ps`` shows only its path.
A worker started by hand (``tuner worker --study NAME --storage URL``) takes the same fields as options.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tuner.study._resources import visible_gpus, wait_or_kill, worker_env
from tuner.study._settings import completed_name, completed_storage
from tuner.study._types import RunningStudy

__all__ = ["WorkerJoin", "EarlyWorkers", "read_join_file", "worker_command"]


@dataclasses.dataclass
class WorkerJoin:
    """What a worker process needs to join a running study (the join file's fields)."""

    study: str
    storage: str
    tracking_uri: str | None = None
    parent_run_id: str | None = None
    recycle_after: int | None = None
    max_rss_mb: float | None = None
    deadline: float | None = None  # time.time() after which no trial starts (the study's --timeout)

    def write(self, path: Path) -> None:
        """Write the file atomically (a worker never reads half a file), readable by this user alone."""
        part = path.with_suffix(".part")
        part.unlink(missing_ok=True)
        with os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(json.dumps(dataclasses.asdict(self)))
        part.replace(path)


def read_join_file(path: str | os.PathLike[str], *, timeout: float = 3600.0, poll: float = 0.1) -> WorkerJoin | None:
    """Wait for a join file and decode it; None when the process that started this worker is gone (or its
    join folder), or ``timeout`` passed."""
    path = Path(path)
    parent = int(os.environ.get("TUNER_SUPERVISOR_PID") or os.getppid())
    deadline = time.monotonic() + timeout
    while not path.exists():
        if os.getppid() != parent or not path.parent.exists() or time.monotonic() > deadline:
            return None
        time.sleep(poll)
    fields = {f.name for f in dataclasses.fields(WorkerJoin)}
    return WorkerJoin(**{k: v for k, v in json.loads(path.read_text()).items() if k in fields})


def worker_command(join_file: Path, *, verbosity: int) -> list[str]:
    """The command line of a supervised worker: the join file's path, never a URL or a password."""
    cmd = [sys.executable, "-m", "tuner", "worker", "--join-file", str(join_file)]
    return cmd + (["-q"] if verbosity < 0 else [])


class EarlyWorkers:
    """Worker processes started before this process has its study, so that their imports overlap ours.

    ``python -m tuner study --workers N`` starts them first thing; each imports Keras, then waits for its
    join file (:class:`WorkerJoin`), which :func:`~tuner.study.run_workers` writes once the study and its
    MLflow parent run exist. They exit if this process goes away, and :meth:`cancel` stops them when the
    study never starts (e.g. a bad space file). Without early workers the supervisor makes the same
    folder and file itself: every supervised worker starts one way.
    """

    def __init__(self, n_workers: int, *, verbosity: int = 0, start: bool = True) -> None:
        self.n_workers = n_workers
        self.folder = Path(tempfile.mkdtemp(prefix="tuner-join-"))
        self.join_file = self.folder / "study.json"
        self.cmd = worker_command(self.join_file, verbosity=verbosity)
        self.gpus = visible_gpus()
        self.procs: dict[int, subprocess.Popen] = {}
        self.adopted = False
        if not start:
            return
        try:
            for i in range(1, n_workers):
                self.procs[i] = subprocess.Popen(
                    self.cmd, env=worker_env(i, n_workers, gpus=self.gpus), start_new_session=True
                )
        except BaseException:
            self.cancel()
            raise

    def cancel(self) -> None:
        """Stop the workers (the study did not start) and remove the join file."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        wait_or_kill(self.procs.values(), timeout=30)
        self.procs.clear()
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def join_of(
    study: RunningStudy, *, recycle_after: int | None, max_rss_mb: float | None, deadline: float | None
) -> WorkerJoin:
    """The join file's fields for ``study`` (a running :class:`~tuner.study.Study`)."""
    s = study.settings
    return WorkerJoin(
        study=completed_name(s),
        storage=completed_storage(s),
        tracking_uri=s.tracking_uri,
        parent_run_id=study.tracking_run_id,
        recycle_after=recycle_after,
        max_rss_mb=max_rss_mb,
        deadline=deadline,
    )
