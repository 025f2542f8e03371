"""Shared test set-up: quiet TensorFlow, keep every store inside the test's temporary folder."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# studies on the small built-ins train one model a trial, as tests expect (module-scoped fixtures too, which run
# before the function-scoped fixture below); tests of --cv ask for it
os.environ["TUNER_CV_AUTO_ROWS"] = "0"
# studies run one trial at a time, as the tests expect and CI's time allows (--workers auto would start a worker
# process per core); tests of --workers auto unset it
os.environ["TUNER_WORKERS"] = "1"

# under pytest-xdist (addopts -n 2) each test process gets a temporary folder of its own, so that what a test
# finds there (join files, worker processes named after them) is its own process's, not the other's
if os.environ.get("PYTEST_XDIST_WORKER"):
    import atexit
    import shutil
    import tempfile

    _own_tmp = os.path.join(tempfile.gettempdir(), f"tuner-tests-{os.environ['PYTEST_XDIST_WORKER']}-{os.getpid()}")
    os.makedirs(_own_tmp, exist_ok=True)
    os.environ["TMPDIR"] = _own_tmp
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    atexit.register(shutil.rmtree, _own_tmp, ignore_errors=True)

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "tuner-cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # studies on the small built-ins train one model a trial, as tests expect; tests of --cv ask for it
    monkeypatch.setenv("TUNER_CV_AUTO_ROWS", "0")
    monkeypatch.setenv("TUNER_WORKERS", "1")
