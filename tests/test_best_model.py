"""The best model, ready to use: raw rows in, the file's own labels out, with tracking on or off.

Real Keras training at tiny sizes, a real Optuna storage and a real MLflow store (SQLite), and MLflow's
own scoring server (``mlflow models serve``) for the registered model.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests import _forked
from tuner.cli import main
from tuner.data import load_dataset
from tuner.model import ExportedModel
from tuner.training import prepare_data, train_model

ROWS = 150


def write_csv(path: Path, *, seed: int = 0) -> Path:
    """A small table with a text column, an integer column and a text label; the label depends on all three."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"size": rng.normal(size=ROWS).round(3), "color": rng.choice(["red", "green", "blue"], ROWS),
                          "count": rng.integers(0, 10, ROWS)})
    score = frame["size"] + (frame["color"] == "red") * 1.5 - (frame["color"] == "blue") + frame["count"] / 10
    frame["kind"] = np.where(score > 1.0, "high", np.where(score > 0, "mid", "low"))
    frame.to_csv(path, index=False)
    return path


def _rows_of(split_x: np.ndarray, encoded_all: np.ndarray) -> list[int]:
    """The file rows whose encoded features are the given split rows (the split shuffles them)."""
    return [int(np.flatnonzero((encoded_all == row).all(axis=1))[0]) for row in split_x]


@pytest.mark.parametrize("scaling", ["standard", "minmax"])
def test_raw_rows_predict_as_the_internal_scaled_pipeline(tmp_path, scaling):
    csv = write_csv(tmp_path / "shapes.csv")
    dataset = load_dataset(csv, target="kind", categorical="onehot", seed=0)
    params = {"epochs": 2, "scaling": scaling, "units": 16, "n_layers": 1}
    result = train_model(params, dataset, seed=0)
    data = prepare_data(dataset, params)
    internal = result.model.predict(data.x_test, verbose=0)

    exported = ExportedModel(result.model, data.preprocessing, task=data.task)
    assert data.preprocessing.kind == "table"
    assert [c.name for c in data.preprocessing.columns] == ["size", "color", "count"]
    # the file's rows that went to the test split: matched on the encoded, unscaled rows the data stage read
    from tuner.data._files import read_table

    file_x = read_table(csv, "shapes.csv", target="kind", categorical="onehot").x.astype(np.float32)
    rows = pd.read_csv(csv).iloc[_rows_of(dataset.x_test, file_x)]

    proba = exported.predict_proba(rows)
    np.testing.assert_allclose(proba, internal, atol=1e-5)
    labels = exported.predict(rows)
    expected = np.asarray(dataset.class_names, dtype=object)[np.argmax(internal, axis=1)]
    assert list(labels) == list(expected)  # exactly, and in the file's own values
    assert set(labels) <= {"high", "mid", "low"}

    loaded = ExportedModel.load(exported.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.predict_proba(rows), proba)
    frame = loaded.predict_frame(rows.drop(columns=["kind"]))  # the target column is not needed
    assert list(frame.columns) == ["label", "proba_high", "proba_low", "proba_mid"]
    assert list(frame["label"]) == list(labels)


def test_arrays_in_the_example_shape_predict_as_the_internal_pipeline():
    dataset = load_dataset("digits", seed=0)
    params = {"epochs": 1, "family": "cnn", "scaling": "minmax"}  # the cnn sees 8x8x1 images of the flat rows
    result = train_model(params, dataset, seed=0)
    data = prepare_data(dataset, params)
    assert data.input_shape == (8, 8, 1)
    internal = result.model.predict(data.x_test, verbose=0)
    exported = ExportedModel(result.model, data.preprocessing, task=data.task)
    proba = exported.predict_proba(dataset.x_test)  # raw (unscaled) flat rows of 64 pixels
    np.testing.assert_allclose(proba, internal, atol=1e-5)
    assert list(exported.predict(dataset.x_test)) == list(np.argmax(internal, axis=1))  # digits' classes are its integers


def test_the_logged_pyfunc_takes_image_arrays_and_mlflow_asks_for_no_type_hints(tmp_path, monkeypatch):
    import warnings

    import mlflow

    from tuner.tracking import MlflowTracker

    dataset = load_dataset("digits", seed=0)
    params = {"epochs": 1, "family": "cnn"}
    result = train_model(params, dataset, seed=0)
    exported = ExportedModel(result.model, prepare_data(dataset, params).preprocessing, task="multiclass")
    tracker = MlflowTracker("arrays", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run_id = tracker.start_trial(0, params, study_name="arrays")
    uris = tracker.log_model(run_id, exported, example=exported.input_example(dataset.x_val))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracker.tracking_uri)  # MLflow's fluent API, for this test only
    x = dataset.x_test[:7]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        answer = mlflow.pyfunc.load_model(uris["model"]).predict(x)
    assert list(answer["label"]) == list(exported.predict(x)) and len(answer) == 7
    assert not [w for w in seen if "type hint" in str(w.message)]
    # defining the pyfunc class in a fresh process is where MLflow warned about a missing hint
    proc = subprocess.run([sys.executable, "-W", "always", "-c", "import mlflow.pyfunc, tuner.tracking._pyfunc"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "type hints" not in proc.stderr, proc.stderr[-2000:]


# --------------------------------------------------------------------------------------------------
# With tracking off: the model is kept in the local store; predict and its errors


@pytest.fixture(scope="module")
def untracked_study(tmp_path_factory):
    """A finished study with tracking off, made in its own folder (the store is ./mlruns there)."""
    from tuner.study import Study

    folder = tmp_path_factory.mktemp("untracked")
    csv = write_csv(folder / "shapes.csv")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        study = Study("default", str(csv), dataset_options={"target": "kind", "categorical": "onehot"}, n_trials=2,
                      tracking_uri="none", study_name="shapes", fixed={"epochs": 2})
        study.run()
    finally:
        os.chdir(cwd)
    return {"folder": folder, "csv": csv, "study": study, "storage": study.settings.storage}


def test_tracking_off_keeps_the_best_model_in_the_local_store(untracked_study, monkeypatch):
    import tuner

    study, folder = untracked_study["study"], untracked_study["folder"]
    monkeypatch.chdir(folder)
    assert (folder / "mlruns" / "models" / "shapes" / "model.keras").is_file()
    model = study.best_model()
    assert isinstance(model, ExportedModel) and model.info["trial"] == study.best_trial().number
    rows = pd.read_csv(untracked_study["csv"]).head(7)
    again = tuner.load_best_model("shapes", storage=untracked_study["storage"])
    assert list(again.predict(rows)) == list(model.predict(rows))
    assert study.optuna_study.metric_names == ["val_accuracy"]  # optuna-dashboard shows the metric's name


def test_predict_writes_labels_and_probabilities(untracked_study, monkeypatch, capsys):
    monkeypatch.chdir(untracked_study["folder"])
    out = untracked_study["folder"] / "pred.csv"
    assert main(["predict", "shapes", str(untracked_study["csv"]), "--output", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == ROWS and list(frame.columns) == ["label", "proba_high", "proba_low", "proba_mid"]
    assert set(frame["label"]) <= {"high", "mid", "low"}
    np.testing.assert_allclose(frame.filter(like="proba_").sum(axis=1), 1.0, atol=1e-5)
    expected = untracked_study["study"].best_model().predict(pd.read_csv(untracked_study["csv"]))
    assert list(frame["label"]) == list(expected)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda f: f.drop(columns=["color"]), "column 'color': required feature column is missing"),
    (lambda f: f.assign(count=["many"] + list(f["count"][1:])), "column 'count': must hold numbers"),
    (lambda f: f.assign(color=["purple"] + list(f["color"][1:])),
     "column 'color': must be one of the categories seen in training ['blue', 'green', 'red']"),
    (lambda f: f.assign(size=[None] + list(f["size"][1:])), "column 'size': must not have missing values"),
])
def test_predict_refuses_bad_rows_in_one_line(untracked_study, monkeypatch, capsys, tmp_path, change, expected):
    monkeypatch.chdir(untracked_study["folder"])
    bad = tmp_path / "bad.csv"
    change(pd.read_csv(untracked_study["csv"])).to_csv(bad, index=False)
    assert main(["predict", "shapes", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert expected in err, err


def test_predict_refuses_a_wrong_shape_and_a_missing_file(untracked_study, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(untracked_study["folder"])
    npy = tmp_path / "rows.npy"
    np.save(npy, np.zeros((3, 7)))
    assert main(["predict", "shapes", str(npy)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "required feature column is missing" in err, err
    assert main(["predict", "shapes", str(tmp_path / "nope.csv")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["predict", "no-such-study", str(untracked_study["csv"])]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_predict_refuses_wrong_array_shapes(tmp_path):
    dataset = load_dataset("iris", seed=0)
    exported = ExportedModel(train_model({"epochs": 1}, dataset).model, dataset.preprocessing, task=dataset.task)
    from tuner.errors import DataError

    with pytest.raises(DataError, match=r"shape: inputs must have shape \(n, 4\); got \(2, 3\)"):
        exported.predict(np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"x\[1\]: must be a finite number"):
        exported.predict(np.array([[1.0, np.nan, 0.0, 0.0]]))


# --------------------------------------------------------------------------------------------------
# With MLflow: logged on the trial's run, registered, served by MLflow's scoring server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tracked_study(folder: Path, *, register: str | None = None) -> dict:
    """``python -m tuner study`` on a CSV with a text column, tracking in ./mlruns (as a user runs it)."""
    csv = write_csv(folder / "shapes.csv")
    args = ["study", "--dataset", str(csv), "--target", "kind", "--categorical", "onehot", "--n-trials", "2", "--set",
            "epochs=3", "--study", "shapes", "--no-progress"]
    if register:
        args += ["--register", register]
    # as a user runs it: no MLFLOW_TRACKING_URI left in this process by an earlier test's mlflow.set_tracking_uri
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = _forked.run(args, cwd=folder, env=env, inherit=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"folder": folder, "csv": csv, "stderr": proc.stderr, "tracking_uri": f"sqlite:///{folder}/mlruns/mlflow.db",
            "storage": f"sqlite:///{folder}/mlruns/optuna.db"}


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


@pytest.mark.slow
def test_registered_model_is_served_by_mlflow_with_the_labels_of_best_model_and_predict(tmp_path, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    from tuner.study import Study

    made = tracked_study(tmp_path, register="shapes-model")
    assert "models:/shapes-model@champion" in made["stderr"]
    rows = pd.read_csv(made["csv"]).head(12)
    features = rows.drop(columns=["kind"])

    # 1. the Study in this process
    study = Study.from_storage("shapes", made["storage"], tracking_uri=made["tracking_uri"])
    expected = list(study.best_model().predict(features))

    # 2. python -m tuner predict
    (tmp_path / "rows.csv").write_text(rows.to_csv(index=False))
    proc = _forked.run(["predict", "shapes", "rows.csv", "--output", "out.csv"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(pd.read_csv(tmp_path / "out.csv")["label"]) == expected

    # 3. the registry: alias, version, signature, input example; the model is logged on its trial's run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", made["tracking_uri"])  # MLflow's fluent API, for this test only
    client = MlflowClient(tracking_uri=made["tracking_uri"])
    version = client.get_model_version_by_alias("shapes-model", "champion")
    best = study.best_trial()
    logged = mlflow.models.get_model_info(f"models:/{version.model_id}") if version.model_id else None
    if logged is not None:
        assert logged.run_id == best.mlflow_run_id
    info = mlflow.models.get_model_info("models:/shapes-model@champion")
    assert [c.name for c in info.signature.inputs.inputs] == ["size", "color", "count"]
    assert info.saved_input_example_info is not None

    # 4. MLflow's own scoring server on the registered model
    port = free_port()
    # the server execs `uvicorn` from PATH: the one of this environment (as in an activated virtualenv)
    env = dict(os.environ, MLFLOW_TRACKING_URI=made["tracking_uri"],
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/shapes-model@champion",
                               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping in time"
            time.sleep(1)
        answer = _post(f"http://127.0.0.1:{port}/invocations", {"dataframe_split": json.loads(
            features.to_json(orient="split", index=False))})
    finally:
        _stop(server)
    served = [p["label"] for p in answer["predictions"]]
    assert served == expected

    # 5. what the MLflow UI shows: the experiment kind, dataset inputs on the study run and the trial runs
    exp = client.get_experiment_by_name("shapes")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([exp.experiment_id])
    assert {r.data.tags.get("tuner.kind") for r in runs} == {"study", "trial"}
    for run in runs:
        inputs = run.inputs.dataset_inputs
        assert inputs and inputs[0].dataset.name == "shapes.csv" and inputs[0].dataset.digest
        assert "color" in inputs[0].dataset.schema
    trial_run = client.get_run(best.mlflow_run_id)
    steps = [m.step for m in client.get_metric_history(trial_run.info.run_id, "val_loss")]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= best.best_epoch  # a chart per metric
    assert any(a.path == "learning_curves.png" for a in client.list_artifacts(trial_run.info.run_id))
