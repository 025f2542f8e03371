"""Studies on a real local Ray instance (``--ray``): concurrency, tracking, data in the object store, a killed
Ray worker, Ctrl-C and resume, a dead address, a user's model file, token authentication.

The instance is started once for the module (two CPUs, no dashboard); the CLI's studies join it by address.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import optuna
import pytest

ray = pytest.importorskip("ray")

from mlflow import MlflowClient  # noqa: E402

from tests import _forked  # noqa: E402
from tuner import SearchSpace  # noqa: E402
from tuner.study import Study  # noqa: E402

TINY = {
    "name": "tiny",
    "parameters": {
        "n_layers": 1,
        "units": {"type": "int", "low": 4, "high": 32},
        "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        "epochs": 2,
        "patience": 0,
        "batch_size": 64,
    },
}

MODEL_FILE = '''
import keras


def build(hp):
    model = keras.Sequential([keras.layers.Dense(hp.Int("width", 4, 16), activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
'''


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance for the module: its GCS address, which the CLI's studies join."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024,
             logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _space(tmp_path: Path, **parameters) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(SearchSpace.from_dict({**TINY, "parameters": {**TINY["parameters"], **parameters}}).to_yaml())
    return path


def _study_cmd(tmp_path: Path, address: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tuner", "study", "--dataset", "digits", "--ray", address, "--no-progress",
            "--study", "r", *extra]


def _run(cmd: list[str], cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 600):
    if cmd[:3] == [sys.executable, "-m", "tuner"]:  # forked from a process that imported TensorFlow once
        return _forked.run(cmd[3:], cwd=cwd, env=env, timeout=timeout)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _optuna(tmp_path: Path, name: str = "r") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path}/mlruns/optuna.db")


def _trial_runs(tmp_path: Path, name: str = "r") -> list:
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    exp = client.get_experiment_by_name(name)
    return client.search_runs([exp.experiment_id], filter_string="tags.`tuner.kind` = 'trial'", max_results=1000)


def _overlapping(trials) -> bool:
    """Two trials trained at the same time, in two processes: their [end - wall time, end] intervals meet."""
    spans = [(t.datetime_complete - timedelta(seconds=t.user_attrs["wall_time"]), t.datetime_complete,
              t.user_attrs["worker_pid"]) for t in trials if t.state.name == "COMPLETE"]
    return any(a[0] < b[1] and b[0] < a[1] and a[2] != b[2] for i, a in enumerate(spans) for b in spans[i + 1:])


def _wait_for_running_trial(tmp_path: Path, proc: subprocess.Popen) -> optuna.trial.FrozenTrial:
    """The first RUNNING trial that has started training (its worker_pid is recorded)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            trials = _optuna(tmp_path).trials
        except Exception:  # not created yet
            trials = []
        running = [t for t in trials if t.state.name == "RUNNING" and "worker_pid" in t.user_attrs]
        if running:
            return running[0]
        time.sleep(0.2)
    out = proc.communicate(timeout=60) if proc.poll() is not None else ("", "")
    raise AssertionError(f"no running trial seen: {out}")


def _during_a_trial(cmd: list[str], tmp_path: Path, act):
    """Start a study, ``act(proc, trial)`` once a trial trains, and wait for the study to end."""
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        trial = _wait_for_running_trial(tmp_path, proc)
        act(proc, trial)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc, trial, out, err


@pytest.mark.slow
def test_cli_runs_six_trials_two_at_a_time_with_nested_runs_and_epochs(cluster, tmp_path):
    cmd = _study_cmd(tmp_path, cluster, "--space", str(_space(tmp_path)), "--workers", "2", "--n-trials", "6")
    proc = _run(cmd, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    trials = _optuna(tmp_path).trials
    assert len(trials) == 6 and all(t.state.name == "COMPLETE" for t in trials)
    assert _overlapping(trials), [(t.number, t.datetime_complete, t.user_attrs.get("wall_time")) for t in trials]
    assert len({t.user_attrs["worker_pid"] for t in trials}) == 2  # two Ray runners, none of them the CLI
    runs = _trial_runs(tmp_path)
    assert sorted(int(r.data.tags["optuna_trial_number"]) for r in runs) == list(range(6))
    parents = {r.data.tags.get("mlflow.parentRunId") for r in runs}
    assert len(parents) == 1 and None not in parents  # all nested under the study's run
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    assert client.get_run(parents.pop()).data.tags.get("tuner.kind") != "trial"
    for run in runs:
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert sorted(m.step for m in history) == [1, 2]  # one value per epoch, with its epoch as step


@pytest.mark.slow
def test_api_runs_arrays_through_the_object_store_two_at_a_time(cluster, tmp_path):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    study = Study(SearchSpace.from_dict(TINY), (x.astype("float32"), y), ray=cluster, workers=2, n_trials=4,
                  study_name="arrays", storage=f"sqlite:///{tmp_path}/optuna.db",
                  tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    seen = []
    study.run(on_trial=seen.append)
    assert sorted(r.number for r in seen) == [0, 1, 2, 3] and all(r.state == "complete" for r in seen)
    trials = study.optuna_study.trials
    assert len({t.user_attrs["worker_pid"] for t in trials}) == 2 and os.getpid() not in {
        t.user_attrs["worker_pid"] for t in trials}
    assert _overlapping(trials)
    assert study.best_test and "test_accuracy" in study.best_test  # the best model travelled back and was scored


@pytest.mark.slow
def test_a_killed_ray_worker_fails_its_trial_which_is_retried_with_its_parameters(cluster, tmp_path):
    cmd = _study_cmd(tmp_path, cluster, "--space", str(_space(tmp_path, epochs=6, batch_size=16)), "--workers", "2",
                     "--n-trials", "3")
    proc, victim, out, err = _during_a_trial(cmd, tmp_path, lambda proc, trial: os.kill(
        trial.user_attrs["worker_pid"], signal.SIGKILL))
    assert proc.returncode == 0, out + err
    trials = _optuna(tmp_path).trials
    killed = trials[victim.number]
    assert killed.state.name == "FAIL"
    reason = killed.user_attrs.get("fail_reason") or _optuna(tmp_path).user_attrs.get(f"fail_reason.{victim.number}")
    assert reason and "Ray worker died" in reason
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retry) == 1 and retry[0].params == killed.params and retry[0].state.name == "COMPLETE"
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3  # the study reached its total
    assert not [t for t in trials if t.state.name == "RUNNING"]
    statuses = {int(r.data.tags["optuna_trial_number"]): r.info.status for r in _trial_runs(tmp_path)}
    assert statuses[victim.number] == "FAILED" and "RUNNING" not in statuses.values()


@pytest.mark.slow
def test_ctrl_c_kills_the_running_trials_and_the_same_command_resumes(cluster, tmp_path):
    cmd = _study_cmd(tmp_path, cluster, "--space", str(_space(tmp_path, epochs=6, batch_size=16)), "--workers", "2",
                     "--n-trials", "3")
    proc, _, out, err = _during_a_trial(cmd, tmp_path, lambda proc, trial: proc.send_signal(signal.SIGINT))
    assert proc.returncode == 130, out + err
    assert "run the same command again to resume" in err
    trials = _optuna(tmp_path).trials
    assert not [t for t in trials if t.state.name == "RUNNING"]
    interrupted = [t.number for t in trials if t.state.name == "FAIL"]
    assert interrupted
    statuses = {int(r.data.tags["optuna_trial_number"]): r.info.status for r in _trial_runs(tmp_path)}
    assert "RUNNING" not in statuses.values()
    assert all(statuses[n] == "KILLED" for n in interrupted if n in statuses)
    again = _run(cmd, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    trials = _optuna(tmp_path).trials
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3
    assert not [t for t in trials if t.state.name == "RUNNING"]


def test_a_dead_address_is_one_line_exit_2_and_writes_nothing(tmp_path):
    started = time.monotonic()
    proc = _run(_study_cmd(tmp_path, "127.0.0.1:9", "--n-trials", "1"), tmp_path, timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "127.0.0.1:9" in lines[0] and "nothing answers" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlruns" / "optuna.db").exists()
    print(f"dead address answered in {took:.1f} s")


def test_a_ray_client_address_is_refused_in_one_line(tmp_path):
    """The study's host actor must run beside its storage: a Ray Client driver (ray://) is not a node."""
    proc = _run(_study_cmd(tmp_path, "ray://127.0.0.1:10001", "--n-trials", "1"), tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Ray Client addresses are not supported" in lines[0], proc.stderr
    assert not (tmp_path / "mlruns" / "optuna.db").exists()


@pytest.mark.slow
def test_a_user_model_file_runs_on_ray_workers(cluster, tmp_path):
    (tmp_path / "mymodel.py").write_text(MODEL_FILE)
    cmd = _study_cmd(tmp_path, cluster, "--model", "mymodel.py:build", "--workers", "2", "--n-trials", "2",
                     "--set", "epochs=2")
    proc = _run(cmd, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = _optuna(tmp_path).trials
    assert len(trials) == 2 and all(t.state.name == "COMPLETE" for t in trials)
    assert all("width" in t.params for t in trials)


@pytest.mark.slow
def test_a_local_instance_with_token_authentication_listens_on_loopback_only(tmp_path):
    """``--ray`` with no address starts Ray here; with RAY_AUTH_MODE=token every connection needs the token.
    The token and MLflow's password travel in the environment of the command (never on a command line) and
    appear in nothing tuner or Ray writes: Ray puts a runtime environment's variables into its workers' command
    lines and its agent's log, so the password reaches the runners as a call argument. Every server of the
    instance (GCS, raylet, workers, the driver, Ray's runtime-env agent) listens on loopback only: Ray's default
    for a local instance on Linux is every interface."""
    import tempfile

    from tests._sockets import SocketWatch, exposed

    token, password = secrets.token_hex(32), "Mlflow-" + secrets.token_hex(8)
    ray_dir = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))  # Ray's sessions and logs (short: socket paths)
    cmd = [sys.executable, "-m", "tuner", "study", "--dataset", "iris", "--space", str(_space(tmp_path, epochs=1)),
           "--ray", "--workers", "2", "--n-trials", "2", "--no-progress", "--study", "r"]
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_TMPDIR": str(ray_dir),
           "MLFLOW_TRACKING_USERNAME": "worker", "MLFLOW_TRACKING_PASSWORD": password}
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    with SocketWatch(proc.pid, interval=0.05) as watch:
        stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout + stderr
    assert any("raylet" in c for c in watch.processes.values()), watch.processes  # the instance was watched
    assert watch.listeners, watch.processes
    assert not exposed(watch.listeners), [str(x) for x in exposed(watch.listeners)]
    assert sum(t.state.name == "COMPLETE" for t in _optuna(tmp_path).trials) == 2
    ray_logs = list(ray_dir.rglob("*.log")) + list(ray_dir.rglob("*.out")) + list(ray_dir.rglob("*.err"))
    assert ray_logs, list(ray_dir.rglob("*"))[:20]  # Ray wrote its sessions where the test looks
    for secret in (token, password):
        assert secret not in stdout + stderr
        assert not any(secret in c for c in watch.processes.values())  # no command line of the tree
        for path in [*tmp_path.rglob("*"), *ray_dir.rglob("*")]:
            if path.is_file() and path.stat().st_size < 50_000_000:
                assert secret.encode() not in path.read_bytes(), path


def test_import_and_help_do_not_import_ray():
    code = ("import runpy, sys\n"
            "import tuner, tuner.study\n"
            "sys.argv = ['tuner', 'study', '--help']\n"
            "try:\n"
            "    runpy.run_module('tuner', run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "print('RAY_IMPORTED' if 'ray' in sys.modules else 'NO_RAY')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "NO_RAY", proc.stdout + proc.stderr
    assert "--ray [ADDRESS]" in proc.stdout and "--gpus-per-trial" in proc.stdout


def test_without_ray_the_option_names_the_extra_and_writes_nothing(tmp_path):
    """Ray not installed (its import fails, as it does without the package): one line naming the extra, exit 2."""
    code = ("import runpy, sys\n"
            "sys.modules['ray'] = None  # what Python does for a package that is not installed: ImportError\n"
            "sys.argv = ['tuner', 'study', '--ray', '--n-trials', '1']\n"
            "runpy.run_module('tuner', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and 'pip install "honest-tuner[ray]"' in lines[0], proc.stderr
    assert not (tmp_path / "mlruns" / "optuna.db").exists()
