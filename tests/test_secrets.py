"""A password in the storage URL stays secret: masked wherever tuner writes or prints it, and never on a
worker process's command line. MLflow's credentials (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, for a server
with ``--app-name basic-auth``) and a Ray token (``RAY_AUTH_TOKEN``) show nowhere at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests import _forked
from tests._servers import postgres_or_skip
from tuner._store import mask_secrets


@pytest.mark.parametrize("url, shown", [
    ("postgresql://tuner:secret@db/tuner", "postgresql://tuner:***@db/tuner"),
    ("postgresql+psycopg2://tuner:p@ss:w@127.0.0.1:5432/x", "postgresql+psycopg2://tuner:***@127.0.0.1:5432/x"),
    ("http://user:pw@mlflow:5000", "http://user:***@mlflow:5000"),
    ("mysql://tuner@db/tuner", "mysql://tuner@db/tuner"),
    ("postgresql://db/t?user=u&password=pw&sslmode=require", "postgresql://db/t?user=u&password=***&sslmode=require"),
    ("sqlite:///mlruns/optuna.db", "sqlite:///mlruns/optuna.db"),
    ("error: cannot reach postgresql://a:b@c/d now", "error: cannot reach postgresql://a:***@c/d now"),
])
def test_mask_secrets(url, shown):
    assert mask_secrets(url) == shown


@pytest.fixture
def postgres(tmp_path_factory):
    server = postgres_or_skip(password="Xyzzy-s3cret")
    yield server
    server.stop()


def _cmdlines() -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                out.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return out


@pytest.mark.slow
def test_a_password_in_the_storage_url_is_in_no_output_record_or_command_line(tmp_path, postgres):
    secret = postgres.password
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    seen: list[str] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.extend(c for c in _cmdlines() if "tuner worker" in c)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    env = {**os.environ, "TUNER_STORAGE": postgres.url}  # the README's way: the password stays off command lines
    proc = subprocess.run([sys.executable, "-m", "tuner", "study", "--study", "secret", "--dataset", "iris",
                           "--tracking-uri", tracking, "--n-trials", "4", "--workers", "2", "--set", "epochs=1",
                           "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    stop.set()
    watcher.join()
    assert proc.returncode == 0, proc.stderr
    assert seen, "no worker process was seen"
    assert not any(secret in c for c in seen)
    assert secret not in proc.stdout and secret not in proc.stderr
    assert json.loads(proc.stdout)["storage"] == postgres.url.replace(secret, "***")
    report = _forked.run(["report", "secret", "--tracking-uri", tracking, "--html", "r.html", "--json"], cwd=tmp_path,
                         env=env)
    assert report.returncode == 0, report.stderr
    assert secret not in report.stdout and secret not in report.stderr
    assert secret not in (tmp_path / "r.html").read_text()
    # the same study asked for with another objective: refused, naming the storage without its password
    clash = _forked.run(["study", "--study", "secret", "--dataset", "iris", "--tracking-uri", tracking, "--objective",
                         "val_loss"], cwd=tmp_path, env=env)
    assert clash.returncode == 2 and "exists with another objective" in clash.stderr, clash.stderr
    assert secret not in clash.stdout + clash.stderr and "***" in clash.stderr
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("secret")
    runs = client.search_runs([exp.experiment_id])
    assert runs
    for run in runs:
        assert secret not in json.dumps(run.data.params) and secret not in json.dumps(run.data.tags)
    for run in runs:
        for art in client.list_artifacts(run.info.run_id):
            if not art.is_dir and art.path.endswith((".json", ".yaml", ".txt")):
                local = client.download_artifacts(run.info.run_id, art.path, str(tmp_path / "dl"))
                assert secret not in Path(local).read_text(), art.path
    for path in tmp_path.rglob("*"):  # the MLflow store, its artifacts, the report's plots
        if path.is_file() and path.stat().st_size < 20_000_000:
            assert secret.encode() not in path.read_bytes(), path


MLFLOW_PASSWORD = "Mlflow-" + os.urandom(8).hex()


@pytest.fixture
def auth_server(tmp_path_factory):
    from tests._servers import basic_auth_server

    server = basic_auth_server(tmp_path_factory.mktemp("auth-server"), {"worker": MLFLOW_PASSWORD})
    yield server
    server.stop()


def _text_files(folder: Path):
    for path in folder.rglob("*"):
        if path.is_file() and path.stat().st_size < 20_000_000:
            yield path


@pytest.mark.slow
def test_mlflow_credentials_and_a_ray_token_are_in_no_output_record_or_command_line(tmp_path, auth_server,
                                                                                    monkeypatch):
    """A study with two workers on a tracking server with MLflow's basic-auth: the credentials reach every worker
    (each trial has its run) through the environment alone, and neither they nor a Ray token show anywhere tuner
    writes or prints; no process of the study listens beyond loopback."""
    from tests._sockets import SocketWatch, exposed

    password, token = MLFLOW_PASSWORD, "ray-" + os.urandom(12).hex()
    secrets = {"MLFLOW_TRACKING_USERNAME": "worker", "MLFLOW_TRACKING_PASSWORD": password, "RAY_AUTH_TOKEN": token}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}, **secrets}
    folder = tmp_path / "work"
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "tuner", "study", "--study", "authed", "--dataset", "iris",
                             "--tracking-uri", auth_server.uri, "--n-trials", "4", "--workers", "2", "--set",
                             "epochs=1", "--json", "--no-progress"], cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    with SocketWatch(proc.pid) as watch:
        stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    workers = [c for c in watch.processes.values() if "tuner worker" in c]
    assert workers, (f"{watch.polls} polls, longest gap {watch.longest_gap:.1f} s", watch.processes, stderr[-4000:])
    assert not exposed(watch.listeners), [str(x) for x in exposed(watch.listeners)]
    for secret in (password, token):
        assert not any(secret in c for c in watch.processes.values())  # no command line of the tree
        assert secret not in stdout and secret not in stderr
    report = _forked.run(["report", "authed", "--html", "r.html", "--json"], cwd=folder, env=env, inherit=False)
    assert report.returncode == 0, report.stderr
    # a worker joining from another machine with a wrong password: one line, exit 2, no trial of its own
    wrong = _forked.run(["worker", "--study", "authed", "--tracking-uri", auth_server.uri], cwd=folder,
                        env={**env, "MLFLOW_TRACKING_PASSWORD": "wrong-pw"}, inherit=False)
    assert wrong.returncode == 2, wrong.stderr
    assert wrong.stderr.strip().splitlines() == [
        f"error: {auth_server.uri}: tracking server: refused the credentials of user 'worker' (HTTP 401); nothing "
        "was written. Fix the credentials, or pass --tracking-uri none to run without tracking"]
    import optuna

    assert len(optuna.load_study(study_name="authed", storage=f"sqlite:///{folder}/mlruns/optuna.db").trials) == 4
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    client = MlflowClient(auth_server.uri)
    runs = client.search_runs([client.get_experiment_by_name("authed").experiment_id])
    trial_runs = [r for r in runs if "optuna_trial_number" in r.data.tags]
    assert len(trial_runs) == 4  # both workers had the credentials: every trial has its run (the refused one none)
    downloads = tmp_path / "downloads"
    for run in runs:
        for art in client.list_artifacts(run.info.run_id):
            if not art.is_dir and art.path.endswith((".json", ".yaml", ".txt")):
                client.download_artifacts(run.info.run_id, art.path, str(downloads))
    assert (downloads / "settings.json").is_file()
    for secret in (password, token):
        assert secret not in report.stdout and secret not in report.stderr
        for run in runs:
            assert secret not in json.dumps(run.data.params) and secret not in json.dumps(run.data.tags)
        for path in [*_text_files(folder), *_text_files(downloads), *_text_files(auth_server.folder)]:
            assert secret.encode() not in path.read_bytes(), path  # stores, artifacts, the report
