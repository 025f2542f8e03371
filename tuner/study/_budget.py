"""The trial budget shared by every worker of a study: exactly ``n_trials`` finished trials.

Optuna's own ``n_trials`` counts per process and ``MaxTrialsCallback`` can overshoot when workers race.
Workers here take a lock that lives where the storage lives (a file lock beside a SQLite database or
journal file, an advisory lock in PostgreSQL or MySQL), and under it check the budget and create their
next trial. Running trials hold a place in the budget; a trial that was interrupted, or that died and
was retried, gives its place back. A database server that restarts drops the lock with its session:
taking it again reconnects (:mod:`tuner.study._retry`), and releasing a lock already dropped is no error.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from typing import Any

from tuner._store import journal_path, sqlite_path
from tuner.study._record import INTERRUPTED, read_trial

__all__ = ["BudgetLock", "budget_counts"]


class BudgetLock:
    """A mutex shared by all processes (and machines) that use one study storage.

    Args:
        storage: the storage URL (``sqlite:///...``, ``journal:PATH``, ``postgresql://...``,
            ``mysql://...``); anything else gets an in-process lock.
        study_name: the study, so that studies in one server database do not block each other (an advisory
            lock per study). Beside a SQLite database or journal file there is one lock file, ``<file>.lock``,
            shared by its studies: they wait for each other only while one creates a trial.
    """

    def __init__(self, storage: str, study_name: str) -> None:
        self.storage = storage
        self.key = zlib.crc32(study_name.encode()) & 0x7FFFFFFF
        self._held = False
        self._file: Any = None
        self._conn: Any = None
        self._engine: Any = None
        self._thread_lock = threading.Lock()
        path = sqlite_path(storage) or journal_path(storage)
        self._path = None if path is None else path.with_name(f"{path.name}.lock")  # one per storage, not per study

    def acquire(self) -> None:
        if self._held:
            return
        if self._path is not None:
            import fcntl

            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self._path, "a+")  # noqa: SIM115 - held across calls
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        elif self.storage.startswith(("postgresql", "mysql")):
            from tuner.study._retry import retry_transient

            retry_transient(self._lock_server, what="budget lock", on_retry=self._drop_connection)
        else:
            self._thread_lock.acquire()
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        if self._file is not None:
            import fcntl

            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        elif self._conn is not None:
            import sqlalchemy

            from tuner._store import connection_lost

            try:
                if self.storage.startswith("postgresql"):
                    self._conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                else:
                    self._conn.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:k)"), {"k": f"tuner-{self.key}"})
            except Exception as err:  # the server dropped the session, and its lock with it
                if not connection_lost(err):
                    raise
            self._drop_connection()
        else:
            self._thread_lock.release()

    def _lock_server(self) -> None:
        """Take the server's lock on a connection of its own (a session lock lives as long as it)."""
        import sqlalchemy

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self.storage, poolclass=sqlalchemy.pool.NullPool)
        self._conn = self._engine.connect()
        if self.storage.startswith("postgresql"):
            self._conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
        else:
            self._conn.execute(sqlalchemy.text("SELECT GET_LOCK(:k, -1)"), {"k": f"tuner-{self.key}"})

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # already dead
                self._conn.close()
            self._conn = None

    def __enter__(self) -> BudgetLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def budget_counts(study: Any) -> tuple[int, int]:
    """``(counted, running)``: finished trials that count towards the budget, and running ones.

    Counted: complete and pruned trials, and failed ones except those failed by an interrupt
    (``fail_reason == "interrupted"``) or by a dead worker whose trial was retried.
    """
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    counted = running = 0
    for t in trials:
        state = t.state.name
        if state == "RUNNING":
            running += 1
        elif state in ("COMPLETE", "PRUNED") or (
            state == "FAIL" and t.number not in retried and read_trial(t).fail_reason != INTERRUPTED
        ):
            counted += 1
    return counted, running
