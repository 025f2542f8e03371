"""The public Python API: every export resolves, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import tuner


def test_every_public_name_resolves():
    missing = [name for name in tuner.__all__ if name != "__version__" and getattr(tuner, name, None) is None]
    assert missing == []


def test_import_tuner_does_not_import_tensorflow_or_keras():
    code = "import sys, tuner; tuner.load_space; print(sorted(m for m in ('tensorflow', 'keras', 'optuna', 'mlflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
