"""The UIs users know, in headless Chromium: MLflow's (``tuner ui``) and optuna-dashboard (``tuner dashboard``).

A real study (``python -m tuner study`` on a CSV with a text column, tracking on) is opened in each UI
served on 127.0.0.1; the page is screenshotted and its rendered DOM checked. Chromium is Debian's
``chromium`` (see tests/test_report_html.py: installed in CI, skipped elsewhere without it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_best_model import _stop, free_port, tracked_study
from test_report_html import _chromium, _run


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return tracked_study(tmp_path_factory.mktemp("ui"))


def _serve(args: list[str], cwd: Path) -> tuple[subprocess.Popen, str]:
    """Start ``python -m tuner ARGS``; return the process and the URL it printed, once that URL answers."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the store beside the study
    proc = subprocess.Popen([sys.executable, "-m", "tuner", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True, env=env)
    try:
        line = proc.stdout.readline()
        url = next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
        root = url.split("#")[0]
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(root, timeout=3):
                    return proc, url
            except OSError:
                assert proc.poll() is None, f"`tuner {' '.join(args)}` exited with {proc.returncode}"
                assert time.monotonic() < deadline, f"{root} did not answer in time"
                time.sleep(1)
    except BaseException:
        _stop(proc)
        raise


def _wait_for_runs(url: str, count: int, timeout: float = 180.0) -> None:
    """Poll the MLflow server's REST API until the experiment of ``url`` lists ``count`` runs."""
    root, experiment = url.split("#")[0].rstrip("/"), url.split("/experiments/")[1].split("/")[0]
    body = json.dumps({"experiment_ids": [experiment], "max_results": 100}).encode()
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(f"{root}/api/2.0/mlflow/runs/search", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                if len(json.loads(response.read()).get("runs", [])) >= count:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{root} did not list {count} runs in time"
        time.sleep(2)


def _page(chromium: str, tmp_path: Path, url: str, name: str, *, expect: str) -> str:
    """Screenshot ``url`` to tmp_path/NAME.png and return its rendered DOM, once it shows ``expect``.

    A page whose data has not arrived yet (a server still warming up on a loaded machine) is loaded again,
    up to five times.
    """
    shot = tmp_path / f"{name}.png"
    for _ in range(5):
        dom = _run(chromium, tmp_path, "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        if expect in dom.stdout:
            break
        time.sleep(10)
    proc = _run(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1600,1000", url)
    assert shot.is_file() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    return dom.stdout


@pytest.mark.slow
def test_tuner_ui_opens_on_the_study_runs_with_nested_trials_and_datasets(study, chromium, tmp_path):
    port = free_port()
    proc, url = _serve(["ui", "shapes", "--port", str(port)], study["folder"])
    try:
        assert "/#/experiments/" in url and "workflowType=machine_learning" in url
        _wait_for_runs(url, 3)  # the server answers its API before the page asks it (slow first queries in CI)
        dom = _page(chromium, tmp_path, url, "mlflow-ui", expect="shapes @")
    finally:
        _stop(proc)
    text = re.sub(r"<[^>]+>", "", dom)
    assert "Model training" in text and "Runs" in text and "Token Usage" not in text  # not the GenAI overview
    assert "shapes @" in text  # the study run, its two trial runs nested (collapsed) under it
    assert "3 matching runs" in text
    assert "shapes.csv" in text  # the Dataset column is filled


@pytest.mark.slow
def test_tuner_dashboard_shows_the_study_trials(study, chromium, tmp_path):
    port = free_port()
    proc, url = _serve(["dashboard", "shapes", "--port", str(port)], study["folder"])
    try:
        assert url.startswith(f"http://127.0.0.1:{port}/dashboard/studies/")
        dom = _page(chromium, tmp_path, url, "optuna-dashboard", expect="val_accuracy")
    finally:
        _stop(proc)
    assert "shapes" in dom
    assert "val_accuracy" in dom  # the objective's name, not "Objective 0"
    assert "Objective 0" not in dom
