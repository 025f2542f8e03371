"""Every example in ``examples/`` runs, at tiny sizes (``TUNER_EXAMPLE_SMOKE=1``: a few trials of one epoch).

Scripts (``.py``, ``.sh``) run from a fresh folder, as a reader would run them from theirs; notebooks are
executed by nbclient on an ipykernel, and must show the progress bar (a widget), the trials table, and the
learning curves and the gap plot as inline images.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests._tools import ROOT, explain, require, run

EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".py", ".sh") and not p.name.startswith("_"))
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
SMOKE = {"TUNER_EXAMPLE_SMOKE": "1"}


def test_the_examples_are_there() -> None:
    names = {p.name for p in SCRIPTS + NOTEBOOKS}
    assert {"quickstart.py", "csv_to_served_model.py", "own_keras_model.py", "define_by_run.py",
            "kerastuner_switch.py", "several_workers.sh", "quickstart.ipynb"} <= names, names


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_example_runs(script: Path, tmp_path: Path) -> None:
    if script.suffix == ".sh":
        # `python` in the script is this interpreter, as in an activated virtual environment
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        proc = run(["bash", str(script)], cwd=tmp_path, env={**SMOKE, "PATH": path}, timeout=900)
    else:
        proc = run(["python", str(script)], cwd=tmp_path, env=SMOKE, timeout=900)
    assert proc.returncode == 0, explain(proc)
    assert "Traceback" not in proc.stderr, explain(proc)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_the_notebook_runs_and_shows_its_figures(notebook: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    require("nbclient", "nbformat", "ipykernel", "ipywidgets")
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("TUNER_EXAMPLE_SMOKE", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    kinds = [mime for o in outputs for mime in o.get("data", {})]
    assert "application/vnd.jupyter.widget-view+json" in kinds, "no progress bar widget"
    assert any("text/html" in o.get("data", {}) and "verdict" in o["data"]["text/html"] for o in outputs), \
        "no trials table"
    assert kinds.count("image/png") >= 2, "the learning curves and the gap plot are not shown inline"
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert errors == [], json.dumps(errors)[:3000]
