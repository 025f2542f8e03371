"""Several worker processes on one study: exact budgets, SQLite under load, PostgreSQL, dead workers."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from tests import _forked
from tuner import SearchSpace
from tuner.study import ProcessPool, Study, StudySettings, budget_counts, run_workers, worker_env

TINY = {
    "name": "tiny",
    "parameters": {
        "n_layers": 1,
        "units": {"type": "int", "low": 4, "high": 16},
        "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        "epochs": 1,
        "patience": 0,
        "batch_size": 64,
    },
}


def _mlflow_trial_runs(uri: str, name: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    return client.search_runs([exp.experiment_id], filter_string="tags.`tuner.kind` = 'trial'", max_results=1000)


def test_worker_env_divides_threads_and_assigns_gpus_round_robin():
    env = worker_env(0, 2, gpus=[], base={}, cpu_count=2)
    assert env["OMP_NUM_THREADS"] == "1" and env["TF_NUM_INTRAOP_THREADS"] == "1"
    assert "intra_op_parallelism_threads=1" in env["XLA_FLAGS"]
    assert "CUDA_VISIBLE_DEVICES" not in env
    four = [worker_env(i, 4, gpus=["0", "1"], base={}, cpu_count=16) for i in range(4)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in four] == ["0", "1", "0", "1"]
    assert all(e["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" and e["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
               for e in four)
    assert four[0]["OMP_NUM_THREADS"] == "4"


@pytest.mark.slow
def test_two_local_workers_on_sqlite_share_40_trials_exactly_without_lock_errors(tmp_path):
    cmd = ["study", "--space", str(tmp_path / "tiny.yaml"), "--dataset", "iris", "--workers", "2", "--n-trials", "40",
           "--no-progress", "--recycle-after", "15"]
    (tmp_path / "tiny.yaml").write_text(SearchSpace.from_dict(TINY).to_yaml())
    proc = _forked.run(cmd, cwd=tmp_path, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "database is locked" not in out and "Traceback" not in out
    study = optuna.load_study(study_name="tiny-iris", storage=f"sqlite:///{tmp_path}/mlruns/optuna.db")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 40 == len(study.trials)
    assert sorted(t.number for t in study.trials) == list(range(40))
    configurations = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(configurations) == 40  # workers draw their own random numbers: no configuration is tried twice
    per_process = collections.Counter(t.user_attrs["worker_pid"] for t in study.trials)
    assert max(per_process.values()) <= 15 and len(per_process) >= 3  # every worker recycled after 15 trials
    runs = _mlflow_trial_runs(f"sqlite:///{tmp_path}/mlruns/mlflow.db", "tiny-iris")
    assert sorted(int(r.data.tags["optuna_trial_number"]) for r in runs) == list(range(40))


def test_one_worker_runs_in_the_cli_process_and_is_recycled_into_a_worker_process(tmp_path):
    """--workers 1 runs trials in the CLI process itself, and --recycle-after still bounds its memory:
    after 2 trials a `tuner worker` process takes over, and so on."""
    (tmp_path / "tiny.yaml").write_text(SearchSpace.from_dict(TINY).to_yaml())
    cmd = [sys.executable, "-m", "tuner", "study", "--space", str(tmp_path / "tiny.yaml"), "--dataset", "iris",
           "--n-trials", "5", "--recycle-after", "2", "--no-progress", "--tracking-uri", "none"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    study = optuna.load_study(study_name="tiny-iris", storage=f"sqlite:///{tmp_path}/mlruns/optuna.db")
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 5
    pids = [t.user_attrs["worker_pid"] for t in trials]
    assert pids[:2] == [proc.pid, proc.pid]  # the CLI process itself, with Keras already loaded
    assert proc.pid not in pids[2:] and len(set(pids[2:])) == 2  # then fresh processes, 2 trials each
    for n in range(5):  # every trial was printed once, whichever process ran it
        assert out.count(f"trial {n:>3}  complete") == 1, out


def test_timeout_holds_for_the_processes_that_take_over(tmp_path):
    """--timeout stops every worker: the CLI process hands over after each trial (--recycle-after 1), and no
    worker process starts a trial after the deadline, so the study stops far short of its 500 trials."""
    (tmp_path / "tiny.yaml").write_text(SearchSpace.from_dict(TINY).to_yaml())
    cmd = ["study", "--space", "tiny.yaml", "--dataset", "iris", "--n-trials", "500", "--recycle-after", "1",
           "--timeout", "20", "--no-progress", "--tracking-uri", "none"]
    start = time.time()
    proc = _forked.run(cmd, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="tiny-iris", storage=f"sqlite:///{tmp_path}/mlruns/optuna.db")
    assert 2 <= len(study.trials) < 500
    assert len({t.user_attrs["worker_pid"] for t in study.trials}) >= 2  # a worker process took over
    starts = [t.datetime_start.timestamp() for t in study.trials]
    assert max(starts) - min(starts) <= 20 + 1.0  # the clock starts as the study does, before its first trial
    assert time.time() - start < 120


def test_workers_started_early_are_stopped_when_the_study_never_starts(tmp_path):
    """--workers N starts its worker processes before validating the space (to overlap their imports);
    a bad space file still exits 2 with one message, and leaves no worker or join file behind."""
    (tmp_path / "bad.yaml").write_text("name: bad\nparameters:\n  dropout: {type: float, low: 0.5, high: 0.2}\n")
    before = set(Path(tempfile.gettempdir()).glob("tuner-join-*"))
    proc = subprocess.run([sys.executable, "-m", "tuner", "study", "--workers", "3", "--space", "bad.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "bad.yaml: parameters.dropout: `low <= high` must hold" in proc.stderr and "Traceback" not in proc.stderr
    assert set(Path(tempfile.gettempdir()).glob("tuner-join-*")) == before
    left = subprocess.run(["pgrep", "-f", f"tuner worker --join-file {tempfile.gettempdir()}"], capture_output=True,
                          text=True).stdout.split()
    assert left == []
    assert not (tmp_path / "mlruns" / "optuna.db").exists()  # no half-written study


@pytest.fixture
def postgres_url():
    url = os.environ.get("TUNER_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide TUNER_TEST_POSTGRES_URL (see .ci/services.sh)")
        pytest.skip("no PostgreSQL server: run `eval \"$(bash .ci/services.sh)\"` to start one on 127.0.0.1")
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:  # a clean database for each test
        conn.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
    engine.dispose()
    return url


@pytest.mark.slow
def test_three_workers_on_postgresql_run_30_trials(tmp_path, postgres_url):
    space = SearchSpace.from_dict(TINY)
    settings = StudySettings(study_name="pg", n_trials=30, storage=postgres_url,
                             tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    study = Study(space, "iris", settings)
    run_workers(study, 3)
    loaded = optuna.load_study(study_name="pg", storage=postgres_url)
    finished = [t for t in loaded.trials if t.state.is_finished()]
    assert len(finished) == 30 == len(loaded.trials)
    assert len({t.number for t in loaded.trials}) == 30
    assert len({t.user_attrs["worker_pid"] for t in loaded.trials}) == 3
    runs = _mlflow_trial_runs(f"sqlite:///{tmp_path}/mlflow.db", "pg")
    numbers = [int(r.data.tags["optuna_trial_number"]) for r in runs]
    assert sorted(numbers) == list(range(30))
    # a `tuner worker` from "another machine" joins by name and storage alone
    joined = _forked.run(["worker", "--study", "pg", "--storage", postgres_url, "--tracking-uri", "none"], cwd=tmp_path,
                         timeout=300)
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert len(optuna.load_study(study_name="pg", storage=postgres_url).trials) == 30


@pytest.mark.slow
def test_a_killed_worker_is_detected_by_heartbeat_and_its_trial_retried(tmp_path, caplog):
    space = SearchSpace.from_dict(dict(TINY, parameters={**TINY["parameters"], "epochs": 40}))
    storage = f"sqlite:///{tmp_path}/optuna.db"
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    settings = StudySettings(study_name="crash", n_trials=4, storage=storage, tracking_uri=tracking,
                             heartbeat_interval=1, grace_period=4, pruner="none")
    study = Study(space, "digits", settings)
    victim = _kill_a_running_worker(study, 2, signal.SIGKILL, caplog)
    loaded = optuna.load_study(study_name="crash", storage=storage)
    dead = loaded.trials[victim.number]
    assert dead.state.name == "FAIL"
    assert "worker died" in loaded.user_attrs[f"fail_reason.{victim.number}"]
    retries = [t for t in loaded.trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].params == dead.params
    assert retries[0].state.name == "COMPLETE"
    assert budget_counts(loaded)[0] == 4
    assert all(t.state.name == "COMPLETE" for t in loaded.trials if t.number != victim.number)
    run = MlflowClient(tracking).get_run(victim.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and "worker died" in run.data.tags["fail_reason"]
    from tuner.study import StudyResults

    reports = {r.number: r for r in StudyResults(loaded).trials()}
    assert "worker died" in reports[victim.number].fail_reason


def test_budget_counts_give_interrupted_and_retried_trials_their_place_back(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/b.db")
    study.add_trial(optuna.trial.create_trial(value=1.0))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                              user_attrs={"fail_reason": "interrupted"}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                              user_attrs={"fail_reason": "non-finite loss at epoch 1"}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))  # died, retried below
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED,
                                              system_attrs={"failed_trial": 3, "retry_history": [3]}))
    assert budget_counts(study) == (3, 0)
    assert Path(tmp_path / "b.db").exists()


def _kill_a_running_worker(study: Study, n_workers: int, sig: int, caplog) -> optuna.trial.FrozenTrial:
    """Run ``study`` with ``n_workers`` worker processes, send ``sig`` to the first one seen training, and wait
    for the study to end; returns the trial that was running."""
    s = study.settings
    errors: list[BaseException] = []

    def supervise() -> None:
        try:
            with caplog.at_level("WARNING", logger="tuner"):
                run_workers(study, n_workers, in_process=False)  # all are processes: the test kills one
        except BaseException as err:  # surfaced below
            errors.append(err)

    thread = threading.Thread(target=supervise)
    thread.start()
    victim = None
    deadline = time.time() + 180
    while time.time() < deadline and victim is None:
        time.sleep(0.5)
        try:
            trials = optuna.load_study(study_name=s.study_name, storage=s.storage).trials
        except Exception:
            continue
        running = [t for t in trials if t.state.name == "RUNNING" and "worker_pid" in t.user_attrs
                   and (s.tracking_uri == "none" or "mlflow_run_id" in t.user_attrs)]
        if running:
            victim = running[0]
            os.kill(victim.user_attrs["worker_pid"], sig)
    assert victim is not None
    thread.join(timeout=600)
    assert not thread.is_alive() and not errors, errors
    # the trial the signal hit: the one that worker was running (it may have started another one between
    # the check above and the kill, so it is found by the worker's pid and the reason it failed)
    trials = optuna.load_study(study_name=s.study_name, storage=s.storage).trials
    hit = [t for t in trials if t.user_attrs.get("worker_pid") == victim.user_attrs["worker_pid"]
           and t.state.name == "FAIL"]
    return hit[0] if len(hit) == 1 else victim


@pytest.mark.slow
def test_a_worker_that_aborts_natively_is_logged_and_replaced_so_the_study_reaches_its_total(tmp_path, caplog):
    """A worker process that dies with an exit code nobody expected (SIGABRT: a native abort, -6) is
    logged and replaced: with one worker process, dropping it would end the study short of its total."""
    storage = f"sqlite:///{tmp_path}/optuna.db"
    settings = StudySettings(study_name="abort", n_trials=3, storage=storage, tracking_uri="none",
                             heartbeat_interval=1, grace_period=4, pruner="none")
    study = Study(SearchSpace.from_dict(dict(TINY, parameters={**TINY["parameters"], "epochs": 30})), "digits",
                  settings)
    _kill_a_running_worker(study, 1, signal.SIGABRT, caplog)
    assert budget_counts(optuna.load_study(study_name="abort", storage=storage))[0] == 3
    assert any(f"exited with code {-signal.SIGABRT}" in r.getMessage() for r in caplog.records)


# --workers auto: the rule, the API's pool, and the CLI's default (issue 24) ------------------------------------

def test_auto_workers_runs_one_per_core_for_a_small_model_capped_by_trials_and_memory():
    from tuner.study import auto_workers

    plenty = {"gpus": [], "memory_mb": 64_000, "macs": 5e5}
    assert auto_workers(n_trials=24, cores=4, **plenty) == (
        4, "auto: 4 cores, small model, ~0.5M multiply-adds per example")
    assert auto_workers(n_trials=3, cores=8, **plenty)[0] == 3  # no worker without a trial to run
    assert auto_workers(n_trials=3, cores=8, **plenty)[1].endswith(", 3 trials")
    n, why = auto_workers(n_trials=24, cores=8, gpus=[], memory_mb=2500, macs=5e5)
    assert n == 2 and why.endswith("memory for 2")  # 1 GiB a worker
    assert auto_workers(n_trials=24, cores=8, gpus=[], memory_mb=64_000, macs=None)[1] == (
        "auto: 8 cores, model size unknown")


def test_auto_workers_runs_one_where_one_trial_uses_the_machine_or_workers_cannot_rebuild_the_study():
    from tuner.study import auto_workers

    assert auto_workers(n_trials=24, cores=1, gpus=[], memory_mb=64_000, macs=5e5) == (1, "auto: 1 core")
    n, why = auto_workers(n_trials=24, cores=16, gpus=[], memory_mb=64_000, macs=8e6)
    assert n == 1 and why.startswith("auto: large model, ~8M multiply-adds per example")
    assert auto_workers(n_trials=24, cores=16, gpus=["0"], memory_mb=64_000, macs=5e5) == (
        1, "auto: 1 GPU, one worker each")
    assert auto_workers(n_trials=24, cores=16, gpus=["0", "1"], macs=5e5)[0] == 2
    n, why = auto_workers(n_trials=24, cores=16, gpus=[], memory_mb=64_000, macs=5e5, rebuildable=False)
    assert n == 1 and "no worker process can rebuild it" in why


def test_the_model_size_ranks_the_shipped_spaces():
    from tuner.space import load_space
    from tuner.study import LARGE_MODEL_MACS, estimate_macs

    image = load_space("image_default")
    assert estimate_macs(image, (8, 8, 1)) < LARGE_MODEL_MACS < estimate_macs(image, (28, 28, 1))  # digits, mnist
    assert estimate_macs(load_space("sequence_default"), (40, 1)) < LARGE_MODEL_MACS  # mnist1d
    assert estimate_macs(load_space("default"), (784,)) < LARGE_MODEL_MACS  # an MLP on mnist's pixels
    assert estimate_macs(image, None) is None


def test_tuner_workers_overrides_auto_and_bad_values_are_refused(monkeypatch):
    from tuner.errors import ConfigError
    from tuner.study import resolve_workers

    facts = {"n_trials": 24, "cores": 2, "gpus": [], "memory_mb": 64_000}
    monkeypatch.delenv("TUNER_WORKERS", raising=False)
    assert resolve_workers("auto", **facts)[0] == 2
    assert resolve_workers(3, **facts) == (3, "--workers 3")  # a number is taken as given
    monkeypatch.setenv("TUNER_WORKERS", "1")
    assert resolve_workers("auto", **facts) == (1, "$TUNER_WORKERS")
    assert resolve_workers("2", **facts) == (2, "--workers 2")  # --workers N beats the environment
    with pytest.raises(ConfigError, match=r"--workers: workers: must be a positive integer or 'auto'; got '0'"):
        resolve_workers("0", **facts)
    monkeypatch.setenv("TUNER_WORKERS", "many")
    with pytest.raises(ConfigError, match=r"\$TUNER_WORKERS: TUNER_WORKERS: must be a positive integer or 'auto'"):
        resolve_workers("auto", **facts)


def test_the_api_runs_a_study_of_arrays_in_this_process_and_a_pool_when_asked(tmp_path, monkeypatch):
    """workers="auto" (the API's default) keeps a study of in-memory data in this process; workers=2 runs a pool
    whose worker 0 is this process."""
    import numpy as np

    from tuner.errors import ConfigError

    monkeypatch.delenv("TUNER_WORKERS")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 4)).astype("float32"), rng.integers(0, 3, 120)
    settings = {"tracking_uri": "none", "storage": f"sqlite:///{tmp_path}/optuna.db", "n_trials": 4}
    arrays = Study(SearchSpace.from_dict(TINY), (x, y), study_name="arrays", **settings)
    assert arrays.workers == 1 and arrays.executor is None and "lives in this process only" in arrays.workers_reason
    monkeypatch.setenv("TUNER_WORKERS", "2")  # does not apply to a study no worker process can rebuild
    assert Study(SearchSpace.from_dict(TINY), (x, y), study_name="arrays", **settings).workers == 1
    monkeypatch.delenv("TUNER_WORKERS")
    with pytest.raises(ConfigError, match=r"workers: needs a study that worker processes can rebuild .*; got 2"):
        Study(SearchSpace.from_dict(TINY), (x, y), study_name="arrays", workers=2, **settings)
    pool = Study(SearchSpace.from_dict(TINY), "iris", study_name="pool", workers=2, **settings)
    assert (pool.workers, pool.workers_reason) == (2, "--workers 2")
    assert isinstance(pool.executor, ProcessPool) and pool.executor.n_workers == 2
    # this process hands its place over after 2 trials, so worker processes run trials however loaded the machine
    # (a tiny trial is over before a worker process has imported Keras)
    pool.executor.options["recycle_after"] = 2
    pool.run()
    pids = collections.Counter(t.user_attrs["worker_pid"] for t in pool.optuna_study.trials)
    assert sum(pids.values()) == 4 and pids[os.getpid()] == 2 and len(pids) >= 2, pids


def _on_two_cores() -> None:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="--workers auto on 2 cores needs 2 cores")
def test_the_default_study_runs_a_worker_per_core_and_says_why(tmp_path, monkeypatch):
    """No --workers: on 2 cores the default study (image_default on digits) runs in 2 processes, this one and a
    worker process, and its first line says so."""
    monkeypatch.delenv("TUNER_WORKERS")
    cmd = [sys.executable, "-m", "tuner", "study", "--n-trials", "6", "--set", "epochs=3", "--no-progress",
           "--tracking-uri", "none"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_on_two_cores)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    first = err.splitlines()[0]
    assert first.startswith("study 'image_default-digits': digits") and first.endswith(
        ", 2 workers (auto: 2 cores, small model, ~0.17M multiply-adds per example)"), first
    assert err.splitlines()[1].startswith("  backend tensorflow (auto: ")
    study = optuna.load_study(study_name="image_default-digits", storage=f"sqlite:///{tmp_path}/mlruns/optuna.db")
    pids = collections.Counter(t.user_attrs["worker_pid"] for t in study.trials)
    assert sum(pids.values()) == 6 and proc.pid in pids and len(pids) == 2, pids
    for n in range(6):
        assert out.count(f"trial {n:>3}  complete") == 1, out


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="--workers auto on 2 cores needs 2 cores")
def test_workers_1_runs_in_this_process_and_a_large_model_runs_alone_with_every_core(tmp_path, monkeypatch):
    """--workers 1 keeps today's behaviour (every trial in the CLI process); with auto, a model the space makes
    large (two blocks of 128 filters on digits) runs in one worker process that has every core's threads."""
    monkeypatch.delenv("TUNER_WORKERS")
    base = [sys.executable, "-m", "tuner", "study", "--set", "epochs=1", "--no-progress", "--tracking-uri", "none"]
    for name, extra in (("one", ["--workers", "1", "--n-trials", "2"]),
                        ("large", ["--n-trials", "2", "--set", "n_layers=2", "--set", "conv_filters=128"])):
        proc = subprocess.Popen([*base, "--study", name, *extra], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=_on_two_cores)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        first = err.splitlines()[0]
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path}/mlruns/optuna.db")
        pids = {t.user_attrs["worker_pid"] for t in study.trials}
        if name == "one":
            assert first.endswith(", 1 worker (--workers 1)"), first
            assert pids == {proc.pid}
        else:
            assert ", 1 worker (auto: large model, ~2.5M multiply-adds per example: one trial keeps every core " \
                   "busy)" in first, first
            assert len(pids) == 1 and proc.pid not in pids  # a fresh process with every core's threads
