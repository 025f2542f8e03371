"""The project's tools that the tests run (docs, lint, types, notebooks, builds): found, or skipped outside CI.

They come with the test extra (``pip install -e ".[test]"``). Outside CI a checkout without them skips these
tests with the install line; in CI (``CI`` set) a missing tool fails, so a green run has really run them.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from tests import _forked

ROOT = Path(__file__).resolve().parents[1]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def require(*modules: str) -> None:
    """Skip (outside CI) or fail (in CI) unless every module can be imported."""
    missing = [m for m in modules if not _importable(m)]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed: pip install -e \".[test]\""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run(args: list[str], *, cwd: Path = ROOT, timeout: int = 600,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m ...`` (or any command) in the checkout and return it, output captured as text.

    ``python -m tuner ...`` and ``python SCRIPT.py ...`` are forked from a process that imported TensorFlow and
    tuner once (``tests/_forked.py``), as a fresh interpreter would run them but without its imports' cost.
    """
    if args[0] == "python":
        return _forked.python(args[1:], cwd=cwd, env=env, timeout=timeout)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


def explain(proc: subprocess.CompletedProcess, limit: int = 6000) -> str:
    """The command and the end of what it printed, for an assertion message."""
    return f"{' '.join(map(str, proc.args))}: exit {proc.returncode}\n{proc.stdout[-limit:]}\n{proc.stderr[-limit:]}"
