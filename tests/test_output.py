"""Clean output: a log file gets the log lines alone, and the libraries' own INFO lines follow -v/-q.

Each test runs a real one-trial study in a subprocess with stderr (and stdout) sent to files, as a user's
``python -m tuner study 2>log.txt`` does: no progress bar's carriage returns, and no Optuna or MLflow INFO
line ("A new study created in RDB with name ...") unless ``-v`` asks for them.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTUNA_INFO = "A new study created"


def _run_to_files(args: list[str], cwd: Path) -> tuple[str, str]:
    """Run ``args`` with stdout and stderr each sent to a file (not a pipe, not a terminal); their contents."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLFLOW_LOGGING_LEVEL", None)  # the tests' conftest sets it; a user's shell does not
    out, err = cwd / "out.txt", cwd / "log.txt"
    with out.open("w") as fout, err.open("w") as ferr:
        proc = subprocess.run(args, cwd=cwd, stdout=fout, stderr=ferr, stdin=subprocess.DEVNULL, env=env,
                              timeout=600)
    stdout, stderr = out.read_text(), err.read_text()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{stdout[-3000:]}\n{stderr[-3000:]}"
    return stdout, stderr


@pytest.mark.slow
def test_a_log_file_gets_the_lines_alone_and_no_library_info(tmp_path: Path) -> None:
    stdout, log = _run_to_files([sys.executable, "-m", "tuner", "study", "--n-trials", "2", "--set", "epochs=1"],
                                tmp_path)
    assert "\r" not in log and "\r" not in stdout, repr(log[-1500:])
    assert "it/s" not in log and "trial/s" not in log, log  # no bar drawn to a file at all
    assert OPTUNA_INFO not in log and "[I " not in log, log
    assert " INFO " not in log and "alembic" not in log, log  # MLflow's store migrations (tracking is on)
    assert "study 'image_default-digits': digits" in log  # tuner's own line stays
    assert len(re.findall(r"^trial +\d+ +(?:complete|pruned)", stdout, re.MULTILINE)) == 2, stdout


def test_library_levels_follow_the_verbosity_and_are_put_back() -> None:
    import optuna  # noqa: F401  (imported first: its import sets its logger to INFO)

    from tuner._logging import library_logs

    names = ("optuna", "mlflow", "alembic")
    before = {n: logging.getLogger(n).level for n in names}
    with library_logs(1):
        assert all(logging.getLogger(n).level == logging.INFO for n in names)  # -v: their INFO lines show
    with library_logs(0):
        assert logging.getLogger("optuna").level == logging.WARNING  # default: "A new study created" hidden
        assert logging.getLogger("mlflow").level == logging.ERROR
    with library_logs(-1):
        assert all(logging.getLogger(n).level == logging.ERROR for n in names)
    assert {n: logging.getLogger(n).level for n in names} == before


@pytest.mark.slow
def test_the_api_hides_optuna_info_lines_and_draws_no_bar_into_a_file(tmp_path: Path) -> None:
    code = ("import logging, optuna, tuner\n"
            "before = logging.getLogger('optuna').level\n"
            "study = tuner.Study('default', 'iris', study_name='api', n_trials=1, fixed={'epochs': 1})\n"
            "study.run(progress=True)\n"
            "print('trials', len(study.trials()))\n"
            "print('optuna level unchanged' if logging.getLogger('optuna').level == before else 'changed')\n")
    stdout, log = _run_to_files([sys.executable, "-c", code], tmp_path)
    assert "trials 1" in stdout
    assert OPTUNA_INFO not in log and "[I " not in log, log
    assert " INFO mlflow" not in log, log  # e.g. "INFO mlflow.pyfunc: Validating input example" (tracking is on)
    assert "\r" not in log, repr(log[-1500:])
    assert "optuna level unchanged" in stdout
