"""Faults with real parts: a tracking server that is down or goes away, a read-only or full SQLite
database, a PostgreSQL server restarted mid-study, bad files. Fail fast, lose nothing."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from tests import _forked
from tests._servers import MlflowServer, free_port, postgres_or_skip
from tuner import DataError, SpaceError, load_dataset, load_space
from tuner.space import SearchSpace
from tuner.study import Study, StudySettings, read_trial, run_workers

TINY = {"name": "tiny", "parameters": {"n_layers": 1, "units": {"type": "int", "low": 4, "high": 16},
                                       "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
                                       "epochs": 1, "patience": 0, "batch_size": 64}}


def _tuner(*args: str, cwd: Path, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    if not kw:  # forked from a process that imported TensorFlow once (tests/_forked.py)
        return _forked.run(list(args), cwd=cwd, timeout=timeout)
    return subprocess.run([sys.executable, "-m", "tuner", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, **kw)


def _complete(storage: str, name: str) -> list:
    study = optuna.load_study(study_name=name, storage=storage)
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


# -- tracking ------------------------------------------------------------------------------------------

def test_a_tracking_server_that_does_not_answer_stops_the_study_at_once_with_nothing_written(tmp_path):
    port = free_port()  # nothing listens there
    start = time.monotonic()
    proc = _tuner("study", "--tracking-uri", f"http://tuner:pw@127.0.0.1:{port}", "--n-trials", "1", cwd=tmp_path)
    took = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: http://tuner:***@127.0.0.1:{port}: tracking server: "
                                                   "did not answer"), proc.stderr
    assert "pw@" not in proc.stderr and "Traceback" not in proc.stderr
    assert took < 10
    assert not (tmp_path / "mlruns").exists()  # no Optuna study, no MLflow store


@pytest.mark.slow
def test_a_tracking_server_stopped_mid_study_loses_no_trial_and_sync_writes_the_missing_runs(tmp_path, caplog):
    server = MlflowServer(tmp_path / "server").start()
    storage = f"sqlite:///{tmp_path}/optuna.db"
    try:
        settings = StudySettings(study_name="gone", n_trials=4, storage=storage, tracking_uri=server.uri,
                                 pruner="none", log_best_model=False)
        study = Study(SearchSpace.from_dict(TINY), "iris", settings)
        seen: list[int] = []

        def on_trial(report):
            seen.append(report.number)
            if len(seen) == 1:
                server.stop()  # the server goes away after the first trial

        start = time.monotonic()
        with caplog.at_level("WARNING", logger="tuner"):
            study.run(on_trial=on_trial)
        took = time.monotonic() - start
        assert len(_complete(storage, "gone")) == 4  # every trial ran and was kept
        assert took < 120  # no minutes of retries per call
        text = caplog.text
        assert "trials go on" in text and "python -m tuner sync gone" in text
        assert "(1, 2, 3)" in text  # the trials whose runs were not written are listed
        server.start()
        client = MlflowClient(server.uri)
        exp = client.get_experiment_by_name("gone")
        runs = client.search_runs([exp.experiment_id], "tags.`tuner.kind` = 'trial'")
        assert sorted(int(r.data.tags["optuna_trial_number"]) for r in runs if r.info.status == "FINISHED") == [0]
        proc = _tuner("sync", "gone", "--storage", storage, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "wrote 3 trial runs" in proc.stdout
        runs = client.search_runs([exp.experiment_id], "tags.`tuner.kind` = 'trial'")
        assert sorted(int(r.data.tags["optuna_trial_number"]) for r in runs if r.info.status == "FINISHED") == [0, 1, 2, 3]
        synced = [r for r in runs if r.data.tags.get("tuner.synced") == "true"]
        assert len(synced) == 3 and all("best_val_accuracy" in r.data.metrics for r in synced)
        # a synced run ends with the same summary metrics and diagnosis tags as the run the study wrote itself
        live = next(r for r in runs if r.data.tags["optuna_trial_number"] == "0")

        def summary(run):
            return ({k for k in run.data.metrics if k.startswith(("best_", "final_")) or k in ("n_params", "wall_time")},
                    {k for k in ("verdict", "verdict_reason", "suggestion") if k in run.data.tags})

        assert summary(live)[0] >= {"final_val_accuracy", "best_gap_loss", "final_gap_loss", "best_epoch", "n_params"}
        assert all(summary(r) == summary(live) for r in synced)
        # the study run, left open when the server went away, is closed as the study process ended it
        study_runs = client.search_runs([exp.experiment_id], "tags.`tuner.kind` = 'study'")
        assert [r.info.status for r in study_runs] == ["FINISHED"]
        again = _tuner("sync", "gone", "--storage", storage, cwd=tmp_path)
        assert "wrote 0 trial runs" in again.stdout  # idempotent
    finally:
        server.stop()


@pytest.mark.slow
def test_a_worker_that_joins_while_the_tracking_server_is_away_runs_its_trials_and_sync_writes_them(tmp_path):
    server = MlflowServer(tmp_path / "server").start()
    storage = f"sqlite:///{tmp_path}/optuna.db"
    try:
        settings = StudySettings(study_name="away", n_trials=1, storage=storage, tracking_uri=server.uri,
                                 pruner="none", log_best_model=False)
        study = Study(SearchSpace.from_dict(TINY), "iris", settings).run()
        parent = MlflowClient(server.uri).search_runs(
            [study.optuna_study.user_attrs["mlflow_experiment_id"]], "tags.`tuner.kind` = 'study'")[0].info.run_id
        study.record_target(3)  # two more trials, for the worker
        server.stop()
        start = time.monotonic()
        proc = _tuner("worker", "--study", "away", "--storage", storage, "--tracking-uri", server.uri,
                      "--parent-run-id", parent, cwd=tmp_path)
        took = time.monotonic() - start
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(_complete(storage, "away")) == 3
        assert "did not answer" in proc.stderr and "trials go on" in proc.stderr
        assert "python -m tuner sync away" in proc.stderr and "(1, 2)" in proc.stderr
        assert took < 120, took  # no minutes of retries per call
        server.start()
        synced = _tuner("sync", "away", "--storage", storage, cwd=tmp_path)
        assert synced.returncode == 0 and "wrote 2 trial runs" in synced.stdout, synced.stderr
    finally:
        server.stop()


# -- SQLite ------------------------------------------------------------------------------------------------

def _make_read_only(path: Path) -> None:
    if os.geteuid() == 0:  # root writes through permissions: make the file immutable instead
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i")
    else:
        path.chmod(0o444)


@pytest.mark.slow
def test_a_read_only_sqlite_database_is_refused_with_one_line_and_keeps_its_trials(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    first = _tuner("study", "--storage", storage, "--study", "ro", "--tracking-uri", "none", "--n-trials", "1",
                   "--set", "epochs=1", "--dataset", "iris", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    db = tmp_path / "optuna.db"
    _make_read_only(db)
    try:
        proc = _tuner("study", "--storage", storage, "--study", "ro", "--tracking-uri", "none", "--n-trials", "2",
                      "--set", "epochs=1", "--dataset", "iris", cwd=tmp_path)
    finally:
        subprocess.run(["chattr", "-i", str(db)], capture_output=True)
        db.chmod(0o644)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the storage is read-only" in errors[0] and "Traceback" not in proc.stderr
    assert len(_complete(storage, "ro")) == 1


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_write_that_fails_for_lack_of_space_stops_with_one_line_and_loses_no_finished_trial(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    args = ("study", "--storage", storage, "--study", "full", "--tracking-uri", "none", "--set", "epochs=1",
            "--dataset", "iris", "--pruner", "none")
    first = _tuner(*args, "--n-trials", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    size = (tmp_path / "optuna.db").stat().st_size
    proc = _tuner(*args, "--n-trials", "200", cwd=tmp_path, preexec_fn=_file_size_limit(size + 256 * 1024))
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no room left to write" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    kept = len(_complete(storage, "full"))
    finished = proc.stdout.count(" complete ")
    assert kept >= 1 + finished - 1  # every trial reported complete is in the storage (the last may be the one cut)
    resumed = _tuner(*args, "--n-trials", str(kept + 1), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert len(_complete(storage, "full")) == kept + 1


# -- PostgreSQL ---------------------------------------------------------------------------------------

def test_a_refused_database_connection_is_retried_for_a_bounded_time_with_one_warning(caplog):
    import sqlalchemy

    from tuner.study._retry import retry_transient

    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://tuner:pw@127.0.0.1:{free_port()}/tuner",
                                      poolclass=sqlalchemy.pool.NullPool)
    tries = []

    def connect():
        tries.append(time.monotonic())
        return engine.connect()

    with caplog.at_level("WARNING", logger="tuner"), pytest.raises(sqlalchemy.exc.OperationalError):
        retry_transient(connect, what="test", seconds=1.5)
    assert 1.4 < tries[-1] - tries[0] < 5 and len(tries) >= 3  # backoff, bounded
    warnings = [r.getMessage() for r in caplog.records if "connection was lost" in r.getMessage()]
    assert len(warnings) <= 1 and all("pw@" not in w for w in warnings)
    tries.clear()
    with pytest.raises(ZeroDivisionError):  # anything else is raised at once
        retry_transient(lambda: tries.append(1) or 1 / 0, seconds=10)
    assert tries == [1]


@pytest.fixture
def private_postgres(tmp_path_factory):
    server = postgres_or_skip()
    yield server
    server.stop()


@pytest.mark.slow
def test_a_postgresql_restart_mid_study_with_two_workers_keeps_the_exact_count(tmp_path, private_postgres):
    space = SearchSpace.from_dict(dict(TINY, parameters={**TINY["parameters"], "epochs": 3}))
    settings = StudySettings(study_name="pgr", n_trials=8, storage=private_postgres.url,
                             tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", pruner="none")
    study = Study(space, "iris", settings)
    restarted = threading.Event()

    def restart_after_two():
        while len([t for t in optuna.load_study(study_name="pgr", storage=private_postgres.url).trials
                   if t.state.is_finished()]) < 2:
            time.sleep(0.5)
        private_postgres.restart()
        restarted.set()

    study.record_target(8)
    watcher = threading.Thread(target=restart_after_two, daemon=True)
    watcher.start()
    run_workers(study, 2)
    assert restarted.is_set()
    loaded = optuna.load_study(study_name="pgr", storage=private_postgres.url)
    complete = [t for t in loaded.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 8  # the exact total, whatever the restart cost
    assert all(t.state.is_finished() for t in loaded.trials)


# -- a configuration error inside a trial ------------------------------------------------------------------

WORKER_FAILS = """
import os
import time

import keras

from tuner.errors import ConfigError, Problem


def build(params, input_shape, *, task, n_outputs):
    if os.environ.get("TUNER_WORKER_INDEX"):  # worker processes only: the first process trains (slowly)
        raise ConfigError([Problem("models.py", "build", "needs a licence file in each worker", value="none")])
    time.sleep(2)
    inputs = keras.Input(input_shape)
    hidden = keras.layers.Dense(params["units"], activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(n_outputs, activation="softmax")(hidden))
"""


@pytest.mark.slow
def test_a_configuration_error_in_a_worker_process_stops_the_study_with_exit_2_and_its_reason(tmp_path):
    (tmp_path / "models.py").write_text(WORKER_FAILS)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    proc = _tuner("study", "--model", "models.py:build", "--dataset", "iris", "--set", "epochs=1", "--workers", "2",
                  "--n-trials", "40", "--storage", storage, "--study", "cfg", "--tracking-uri", "none",
                  "--no-progress", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    reason = "models.py: build: needs a licence file in each worker; got 'none'"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {reason}"], proc.stderr[-3000:]  # once: the worker leaves it to the supervisor
    assert "Traceback" not in proc.stderr and "RuntimeError" not in proc.stderr
    failed = [t for t in optuna.load_study(study_name="cfg", storage=storage).trials
              if t.state == optuna.trial.TrialState.FAIL]
    assert failed and all(read_trial(t).config_error and read_trial(t).fail_reason == reason for t in failed)


# -- bad input ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n  # and another\n"])
def test_an_empty_or_comment_only_space_file_is_refused_with_one_line(tmp_path, text):
    (tmp_path / "empty.yaml").write_text(text)
    with pytest.raises(SpaceError, match=r"empty\.yaml: (is empty|holds no YAML content)") as info:
        load_space(tmp_path / "empty.yaml")
    assert len(info.value.problems) == 1
    proc = _tuner("study", "--space", "empty.yaml", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_csv_with_several_problems_reports_each_with_the_editor_line(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,c,y\n1,x,3,0\n\n2,,4,1\n3,z,inf,\n5,6,7,1\n")
    with pytest.raises(DataError) as info:
        load_dataset(str(tmp_path / "bad.csv"), target="y")
    text = str(info.value)
    assert len(info.value.problems) == 4, text
    assert "column 'y': target values must not be missing: 1 NaN/empty values (first on line 5)" in text
    assert "column 'b': features must not be missing: 1 NaN/empty values (first on line 4)" in text
    assert "column 'b': features must be numeric" in text and "(first non-numeric on line 2)" in text
    assert "column 'c': features must be finite: 1 inf values (first on line 5)" in text


def test_duplicate_column_names_are_refused(tmp_path):
    (tmp_path / "dup.csv").write_text("a,a,y\n1,2,0\n3,4,1\n")
    with pytest.raises(DataError, match=r"column 'a': column names must be unique, but the header names it 2 times"):
        load_dataset(str(tmp_path / "dup.csv"), target="y")


def test_the_python_api_imports_keras_without_tensorflows_start_up_lines(tmp_path):
    code = ("import tuner\n"
            "tuner.run_study(tuner.SearchSpace.from_dict(%r), 'iris', n_trials=1, tracking_uri='none',"
            " storage='sqlite:///%s/o.db')\n" % (TINY, tmp_path))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    for chatter in ("cuInit", "oneDNN", "cpu_feature_guard", "absl::InitializeLog", "cuda drivers"):
        assert chatter not in proc.stderr, proc.stderr
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"  # asked for: shown
    shown = subprocess.run([sys.executable, "-c", "import tuner; tuner.Study"], cwd=tmp_path, capture_output=True,
                           text=True, env=env, timeout=300)
    assert "I0000" in shown.stderr or "oneDNN" in shown.stderr or "cuda" in shown.stderr.lower()
