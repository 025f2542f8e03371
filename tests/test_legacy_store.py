"""A study made by the code before the move into subpackages still reads: ``best`` and ``report``.

tests/data/legacy_store/ holds the stores that commit (see MADE_BY_COMMIT) wrote for ``python -m tuner
study --n-trials 3 --set epochs=2`` on ``digits`` under the study name ``legacy``: ``optuna.db`` and
``mlflow.db`` (MLflow's artifacts were not kept). The trial attributes in it are the old code's keys
and types, so this is where a change to the trial record that forgets old studies shows up.

Every expected value is read from ``optuna.db`` with Optuna itself, never written down here. The CLI
runs on a copy: MLflow may migrate a database it opens, and the fixture must stay as it was made.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import _forked

FIXTURE = Path(__file__).resolve().parent / "data" / "legacy_store"
STUDY = "legacy"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the legacy store, its Optuna storage URL and what Optuna itself reads from it."""
    import optuna

    folder = tmp_path_factory.mktemp("legacy_store")
    for name in ("optuna.db", "mlflow.db"):
        shutil.copy2(FIXTURE / name, folder / name)
    storage = f"sqlite:///{(folder / 'optuna.db').as_posix()}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=STUDY, storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return {"folder": folder, "storage": storage, "study": study, "complete": complete, "best": study.best_trial}


def _tuner(store: dict[str, Any], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "KERAS_BACKEND")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", COLUMNS="200")
    proc = _forked.run([*args, "--storage", store["storage"]], cwd=store["folder"], env=env, inherit=False)
    assert proc.returncode == 0, f"tuner {' '.join(args)}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
    return a == b


def _same_numbers(got: dict[str, Any], expected: dict[str, Any]) -> bool:
    return set(got) == set(expected) and all(_close(got[k], expected[k]) for k in expected)


def test_the_fixture_is_what_the_docstring_says(store):
    """A guard on the fixture itself: three complete trials of one single-objective study."""
    study = store["study"]
    assert len(study.trials) == 3 and len(store["complete"]) == 3
    assert len(study.directions) == 1
    for trial in store["complete"]:
        assert {"verdict", "metrics"} <= set(trial.user_attrs), sorted(trial.user_attrs)


def test_best_json_is_the_stored_best_trial(store):
    best = store["best"]
    data = json.loads(_tuner(store, "best", STUDY, "--json").stdout)
    assert data["study"] == STUDY
    assert data["number"] == best.number
    assert [float(v) for v in data["values"]] == pytest.approx(best.values)
    assert _same_numbers(data["params"], best.params), (data["params"], best.params)
    assert _same_numbers(data["metrics"], best.user_attrs["metrics"]), (data["metrics"], best.user_attrs["metrics"])
    assert data["verdict"] == best.user_attrs["verdict"]
    stored_test = store["study"].user_attrs.get("best_test")
    if stored_test is not None and store["study"].user_attrs.get("best_test_trial") == best.number:
        assert _same_numbers(data["test"], stored_test), (data["test"], stored_test)


def test_best_prints_the_stored_best_trial(store):
    best = store["best"]
    out = _tuner(store, "best", STUDY).stdout
    assert re.search(rf"\btrial {best.number}\b", out), out
    assert f"{best.value:.4f}" in out, out
    assert best.user_attrs["verdict"] in out, out


def test_report_json_lists_every_stored_trial_with_its_metrics_and_verdict(store):
    data = json.loads(_tuner(store, "report", STUDY, "--json").stdout)
    study, best = store["study"], store["best"]
    assert data["study"] == STUDY
    assert data["counts"]["complete"] == len(store["complete"])
    assert data["best"]["number"] == best.number
    sign = -1 if study.direction.name == "MAXIMIZE" else 1
    expected_order = [t.number for t in sorted(store["complete"], key=lambda t: (sign * t.value, t.number))]
    assert [row["number"] for row in data["top"]] == expected_order
    by_number = {t.number: t for t in store["complete"]}
    for row in data["top"]:
        trial = by_number[row["number"]]
        assert list(row["objective"].values()) == pytest.approx(trial.values), (row["objective"], trial.values)
        assert _same_numbers(row["metrics"], trial.user_attrs["metrics"]), (row["metrics"], trial.user_attrs["metrics"])
        assert row["verdict"] == trial.user_attrs["verdict"]
    stored_test = study.user_attrs.get("best_test")
    if stored_test is not None and study.user_attrs.get("best_test_trial") == best.number:
        assert _same_numbers(data["test"], stored_test), (data["test"], stored_test)
    # the MLflow store beside optuna.db is found, without its artifacts
    assert data["mlflow"]["tracking_uri"].endswith(f"{store['folder'].as_posix()}/mlflow.db")


def test_report_prints_every_stored_trial_with_its_objective_and_verdict(store):
    out = _tuner(store, "report", STUDY).stdout
    lines = out.splitlines()
    assert f"'{STUDY}'" in out, out
    best = store["best"]
    assert re.search(rf"(?i)\bbest trial {best.number}\b", out), out
    for trial in store["complete"]:
        # one table row per trial: it starts with the trial number and holds its objective and verdict
        rows = [line for line in lines if re.match(rf"^[^\w.-]*{trial.number}\b", line)]
        assert any(f"{trial.value:.4g}" in row and trial.user_attrs["verdict"] in row for row in rows), (
            f"trial {trial.number} (value {trial.value:.4g}, {trial.user_attrs['verdict']}) has no row:\n{out}")
