"""Faults and bad input (issue 15): what the user sees, time to the error, trials kept and lost.

    python benchmarks/faults.py                  # every row: ~6 min on 2 shared cores (PostgreSQL rows need
                                                 # /usr/lib/postgresql/*/bin and, as root, a `postgres` user)
    python benchmarks/faults.py --rows space csv # some rows only

Each row runs the real thing, as ``tests/test_faults.py`` does (whose helpers it imports): the CLI in a
child process, a real ``mlflow server`` stopped mid-study, a private PostgreSQL restarted mid-study,
a read-only SQLite file, a file-size limit. "Time to the error" counts from the command's start (Keras's
import included); "trials lost" counts trials reported finished that the storage does not hold.
"""

from __future__ import annotations

from _common import load1, machine  # first: quiets TensorFlow, puts the repository on sys.path

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from tests._servers import MlflowServer, PrivatePostgres, free_port, pg_folder
from tests.test_faults import TINY, WORKER_FAILS, _complete, _file_size_limit, _make_read_only

STUDY = ("--tracking-uri", "none", "--set", "epochs=1", "--dataset", "iris", "--no-progress")


def _cli(*args: str, cwd: Path, **kw: Any) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # set by an earlier row's MLflow
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tuner", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env=env, **kw)
    return proc, time.monotonic() - start


def _sees(proc: subprocess.CompletedProcess) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    shown = errors[-1] if errors else proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    return f"{shown[:150]} (exit {proc.returncode}, {len(errors)} error line(s))"


def tracking_down(folder: Path) -> dict[str, Any]:
    proc, took = _cli("study", "--tracking-uri", f"http://tuner:pw@127.0.0.1:{free_port()}", "--n-trials", "1",
                      cwd=folder)
    return {"sees": _sees(proc), "seconds": took, "kept": "-", "lost": 0 if not (folder / "mlruns").exists() else "?"}


def tracking_gone(folder: Path) -> dict[str, Any]:
    from tuner.space import SearchSpace
    from tuner.study import Study, StudySettings

    server = MlflowServer(folder / "server").start()
    storage = f"sqlite:///{folder}/optuna.db"
    seen: list[int] = []

    def on_trial(report: Any) -> None:
        seen.append(report.number)
        if len(seen) == 1:
            server.stop()

    try:
        settings = StudySettings(study_name="gone", n_trials=4, storage=storage, tracking_uri=server.uri,
                                 pruner="none", log_best_model=False)
        start = time.monotonic()
        Study(SearchSpace.from_dict(TINY), "iris", settings).run(on_trial=on_trial)
        took = time.monotonic() - start
        server.start()
        proc, _ = _cli("sync", "gone", "--storage", storage, cwd=folder)
    finally:
        server.stop()
    kept = len(_complete(storage, "gone"))
    return {"sees": f"study goes on; then `sync`: {proc.stdout.strip().splitlines()[-1][:100]}",
            "seconds": took, "kept": f"{kept} / 4", "lost": 4 - kept}


def read_only(folder: Path) -> dict[str, Any]:
    storage = f"sqlite:///{folder}/optuna.db"
    _cli("study", "--storage", storage, "--study", "ro", "--n-trials", "1", *STUDY, cwd=folder)
    db = folder / "optuna.db"
    _make_read_only(db)
    try:
        proc, took = _cli("study", "--storage", storage, "--study", "ro", "--n-trials", "2", *STUDY, cwd=folder)
    finally:
        subprocess.run(["chattr", "-i", str(db)], capture_output=True)
        db.chmod(0o644)
    kept = len(_complete(storage, "ro"))
    return {"sees": _sees(proc), "seconds": took, "kept": f"{kept} / 1", "lost": 1 - kept}


def disk_full(folder: Path) -> dict[str, Any]:
    storage = f"sqlite:///{folder}/optuna.db"
    args = ("study", "--storage", storage, "--study", "full", "--pruner", "none", *STUDY)
    _cli(*args, "--n-trials", "1", cwd=folder)
    limit = (folder / "optuna.db").stat().st_size + 256 * 1024
    proc, took = _cli(*args, "--n-trials", "200", cwd=folder, preexec_fn=_file_size_limit(limit))
    kept = len(_complete(storage, "full"))
    reported = 1 + proc.stdout.count(" complete ")
    resumed, _ = _cli(*args, "--n-trials", str(kept + 1), cwd=folder)
    return {"sees": _sees(proc) + f"; the same command resumes (exit {resumed.returncode})", "seconds": took,
            "kept": f"{kept} / {reported} reported", "lost": max(0, reported - kept)}


def empty_space(folder: Path) -> dict[str, Any]:
    (folder / "empty.yaml").write_text("# only a comment\n")
    proc, took = _cli("study", "--space", "empty.yaml", "--tracking-uri", "none", cwd=folder)
    return {"sees": _sees(proc), "seconds": took, "kept": "-", "lost": "-"}


def bad_csv(folder: Path) -> dict[str, Any]:
    (folder / "bad.csv").write_text("a,b,c,y\n1,x,3,0\n\n2,,4,1\n3,z,inf,\n5,6,7,1\n")
    proc, took = _cli("study", "--dataset", "bad.csv", "--target", "y", "--tracking-uri", "none", cwd=folder)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    example = errors[-1][:110] if errors else ""
    return {"sees": f"{len(errors)} error lines at once (exit {proc.returncode}), e.g. {example}",
            "seconds": took, "kept": "-", "lost": "-"}


def config_error_in_worker(folder: Path) -> dict[str, Any]:
    (folder / "models.py").write_text(WORKER_FAILS)
    storage = f"sqlite:///{folder}/optuna.db"
    proc, took = _cli("study", "--model", "models.py:build", "--workers", "2", "--n-trials", "40", "--storage",
                      storage, "--study", "cfg", *STUDY, cwd=folder)
    kept = len(_complete(storage, "cfg"))
    return {"sees": _sees(proc), "seconds": took, "kept": f"{kept} complete", "lost": 0}


class _Collect(logging.Handler):
    """Keeps the messages that contain ``needle``."""

    def __init__(self, into: list[str], needle: str) -> None:
        super().__init__(logging.WARNING)
        self.into, self.needle = into, needle

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.into.append(record.getMessage())


def postgres_restart(folder: Path) -> dict[str, Any]:
    from tuner.space import SearchSpace
    from tuner.study import Study, StudySettings, run_workers

    server = PrivatePostgres(pg_folder()).start()
    try:
        space = SearchSpace.from_dict(dict(TINY, parameters={**TINY["parameters"], "epochs": 3}))
        settings = StudySettings(study_name="pgr", n_trials=8, storage=server.url,
                                 tracking_uri=f"sqlite:///{folder}/mlflow.db", pruner="none")
        study = Study(space, "iris", settings)
        reported: list[int] = []
        restarted: list[float] = []

        def restart_after_two() -> None:
            while len([t for t in optuna.load_study(study_name="pgr", storage=server.url).trials
                       if t.state.is_finished()]) < 2:
                time.sleep(0.5)
            begin = time.monotonic()
            server.restart()
            restarted.append(time.monotonic() - begin)

        warned: list[str] = []
        handler = _Collect(warned, "connection was lost")
        logging.getLogger("tuner").addHandler(handler)
        study.record_target(8)
        threading.Thread(target=restart_after_two, daemon=True).start()
        start = time.monotonic()
        try:
            run_workers(study, 2, on_trial=lambda r: reported.append(r.number))
        finally:
            logging.getLogger("tuner").removeHandler(handler)
        took = time.monotonic() - start
        kept = len(_complete(server.url, "pgr"))
    finally:
        server.stop()
    down = f"{restarted[0]:.1f} s" if restarted else "never"
    said = f"{len(warned)} warning line(s) here, e.g. {warned[0][:110]!r}" if warned else "no warning here"
    return {"sees": f"the study goes on; {said}; the restart took {down}",
            "seconds": took, "kept": f"{kept} / 8", "lost": max(0, len(set(reported)) - kept)}


def tracking_refused(folder: Path) -> dict[str, Any]:
    """A tracking server with MLflow's basic-auth (needs Flask-WTF: pip install 'mlflow[auth]'), a wrong password."""
    from tests._servers import basic_auth_server

    server = basic_auth_server(folder / "server", {"tuner": "right-" + os.urandom(4).hex()})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env.update(MLFLOW_TRACKING_USERNAME="tuner", MLFLOW_TRACKING_PASSWORD="wrong")
    try:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "tuner", "study", "--tracking-uri", server.uri, "--n-trials", "1"],
                              cwd=folder, capture_output=True, text=True, timeout=900, env=env)
        took = time.monotonic() - start
    finally:
        server.stop()
    return {"sees": _sees(proc), "seconds": took, "kept": "-", "lost": 0 if not (folder / "mlruns").exists() else "?"}


ROWS: dict[str, tuple[str, Callable[[Path], dict[str, Any]]]] = {
    "tracking-down": ("--tracking-uri at a port where nothing listens", tracking_down),
    "tracking-refused": ("--tracking-uri of `mlflow server --app-name basic-auth`, a wrong password in "
                         "MLFLOW_TRACKING_PASSWORD", tracking_refused),
    "tracking-gone": ("MLflow server killed after trial 0 of 4", tracking_gone),
    "read-only": ("read-only SQLite", read_only),
    "disk-full": ("write past a file-size limit (RLIMIT_FSIZE) mid-study", disk_full),
    "space": ("space file with comments only", empty_space),
    "csv": ("CSV with a missing target, a missing feature, a text column and an inf", bad_csv),
    "config-worker": ("configuration error inside a worker process's trial (--workers 2)", config_error_in_worker),
    "postgres": ("PostgreSQL restarted mid-study, 2 workers, 8 trials", postgres_restart),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    args = parser.parse_args()
    print(machine())
    print("| Fault or bad input | What the user sees | Time to the error | Trials kept | Trials lost |")
    print("|---|---|---|---|---|")
    for key in args.rows:
        title, row = ROWS[key]
        with tempfile.TemporaryDirectory(prefix=f"faults-{key}-") as folder:
            r = row(Path(folder))
        print(f"| {title} | {r['sees']} | {r['seconds']:.1f} s | {r['kept']} | {r['lost']} |", flush=True)
    print(f"load1 at the end: {load1()}")


if __name__ == "__main__":
    main()
