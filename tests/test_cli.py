"""The CLI as a user meets it: exit codes, messages, nothing half-written (the UI command: tests/test_ui.py and
tests/test_security.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import _forked


def _tuner(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return _forked.run(list(args), cwd=cwd, timeout=timeout)


@pytest.mark.parametrize(("args", "expected"), [
    (["--dataset", "digitz"], r"did you mean 'digits'\?\); got 'digitz'"),
    (["--dataset", "data.csv"], r"data.csv"),
    (["--set", "dropout=1.5"], r"--set: dropout: must be in \[0.0, 1.0\); got 1.5"),
    (["--set", "kernel_initializer=he_normall"], r"kernel_initializer: must be a name that keras.initializers.get\(\) knows; got 'he_normall'"),
    (["--set", "dropuot=0.1"], r"dropuot: unknown parameter \(did you mean 'dropout'\?\)"),
    (["--sampler", "annealing"], r"--sampler: sampler: must be one of"),
    (["--objective", "val_mae"], r"--objective: objective: must be one of"),
    (["--space", "nope.yaml"], r"nope.yaml: no such file"),
])
def test_bad_input_exits_2_with_one_readable_line_and_writes_nothing(tmp_path, args, expected):
    import re

    if "data.csv" in args:
        (tmp_path / "data.csv").write_text("a,b\n1,2\n3,4\n")
    proc = _tuner("study", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(expected, proc.stderr), proc.stderr
    assert proc.stderr.strip().startswith("error:")
    assert not (tmp_path / "mlruns" / "optuna.db").exists()
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


def test_debug_shows_the_traceback(tmp_path):
    proc = _tuner("study", "--set", "dropout=1.5", "--debug", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_study_json_then_best_then_missing_study(tmp_path):
    proc = _tuner("study", "--dataset", "iris", "--n-trials", "2", "--set", "epochs=2", "--json", "--tracking-uri",
                  "none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["study"] == "default-iris" and summary["counts"]["complete"] + summary["counts"]["pruned"] == 2
    assert summary["best"]["verdict"] in ("good_fit", "overfitting", "underfitting")
    best = _tuner("best", "default-iris", "--json", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    assert json.loads(best.stdout)["number"] == summary["best"]["number"]
    missing = _tuner("best", "no-such-study", cwd=tmp_path)
    assert missing.returncode == 2
    assert "study 'no-such-study': does not exist; studies here: ['default-iris']" in missing.stderr


def test_datasets_lists_builtins_without_tensorflow(tmp_path):
    proc = _tuner("datasets", "--json", cwd=tmp_path)
    assert proc.returncode == 0
    rows = {d["name"]: d for d in json.loads(proc.stdout)}
    assert {"digits", "breast_cancer", "wine", "iris", "diabetes", "mnist1d"} <= set(rows)
    for name in ("mnist", "fashion_mnist", "cifar10"):  # listed with where their files must be; never downloaded
        assert "Keras cache" in rows[name]["source"]
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    (tmp_path / "keras" / "datasets" / "mnist.npz").write_bytes(b"")
    listed = subprocess.run([sys.executable, "-m", "tuner", "datasets"], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "KERAS_HOME": str(tmp_path / "keras")}, timeout=120)
    lines = {line.split()[0]: line.rstrip() for line in listed.stdout.splitlines() if line.strip()}
    assert lines["mnist"].endswith(", cached")
    assert f"not cached: put the files in {tmp_path / 'keras' / 'datasets'}" in lines["cifar10"]
