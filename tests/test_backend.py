"""``study --backend``: the Keras backend a study runs on, chosen before Keras is imported (issue 17)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuner._backend import BACKENDS, choose_backend
from tuner.errors import ConfigError
from tuner.study import StudySettings


def _tuner(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuner", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=400, env=env)


def _study_backend(cwd: Path, study: str) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id])
    return next(r.data.params["backend"] for r in runs if "backend" in r.data.params)


def test_bad_backend_is_one_usage_error(tmp_path: Path) -> None:
    proc = _tuner("study", "--backend", "theano", cwd=tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if ": error:" in line or line.startswith("error")]
    assert len(errors) == 1 and "--backend" in errors[0] and "'theano'" in errors[0] and "jax" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlruns").exists()  # nothing half-written


def test_settings_refuse_an_unknown_backend() -> None:
    with pytest.raises(ConfigError, match=r"backend: must be one of \['auto', 'tensorflow', 'jax', 'torch'\]; got 'mx'"):
        StudySettings(backend="mx").validate("multiclass")


def test_auto_is_keras_backend_else_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras  # this test process has imported Keras already: only its own backend can be chosen

    running = keras.backend.backend()
    monkeypatch.setenv("KERAS_BACKEND", running)
    assert choose_backend("auto") == running
    assert choose_backend(running) == running
    other = next(b for b in BACKENDS[1:] if b != running)
    with pytest.raises(ValueError, match=f"must be chosen before Keras is imported; this process runs '{running}'"):
        choose_backend(other)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_study_runs_and_records_its_backend(tmp_path: Path, backend: str) -> None:
    pytest.importorskip(backend)
    env = dict(os.environ)
    env.pop("KERAS_BACKEND", None)  # --backend alone decides
    proc = _tuner("study", "--backend", backend, "--dataset", "iris", "--n-trials", "1", "--set", "epochs=1",
                  "--set", "n_layers=1", "--set", "units=8", "--json", "--no-progress", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["counts"]["complete"] == 1
    assert _study_backend(tmp_path, summary["study"]) == backend
    assert "oneDNN" not in proc.stderr and "absl" not in proc.stderr, proc.stderr  # TensorFlow's start-up stays quiet
    if backend == "jax":  # JAX's persistent compilation cache, under the tuner cache folder
        assert any((Path(env["TUNER_CACHE_DIR"]) / "jax").iterdir())


@pytest.mark.parametrize(("keras_backend", "keras_json", "expected"), [
    (None, None, ("tensorflow", "auto: the backend tuner is tested under by default")),
    (None, "tensorflow", ("tensorflow", "auto: the backend tuner is tested under by default")),  # Keras writes it
    (None, "jax", ("jax", "auto: {home}/keras.json")),  # the user's own choice
    ("jax", "tensorflow", ("jax", "auto: $KERAS_BACKEND")),
])
def test_auto_picks_the_users_backend_else_the_measured_one(tmp_path: Path, keras_backend, keras_json, expected):
    """``--backend auto``: KERAS_BACKEND, else a keras.json naming another backend than the tensorflow Keras writes
    there itself, else the table's choice (TensorFlow, with what JAX measured)."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path)
    if keras_backend:
        env["KERAS_BACKEND"] = keras_backend
    if keras_json:
        (tmp_path / "keras.json").write_text(json.dumps({"backend": keras_json}))
    code = "import json; from tuner._backend import pick_backend; print(json.dumps(pick_backend()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    backend, why = json.loads(out)
    assert backend == expected[0] and why.startswith(expected[1].format(home=tmp_path)), why
    if expected[1].startswith("auto: the backend"):  # the figures, and where they come from
        assert "0.95-0.97x TensorFlow's time" in why and "benchmarks/RESULTS.md" in why
