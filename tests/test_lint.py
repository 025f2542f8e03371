"""The habits of the code: ruff (lint and format) and mypy on ``tuner/``, with the configuration in pyproject.toml.

The same tools run before a commit (``.pre-commit-config.yaml``). A finding here is fixed in the code, or the
rule is changed in pyproject.toml with the reason beside it: never silenced line by line without one.
"""

from __future__ import annotations

from tests._tools import explain, require, run


def test_ruff_finds_nothing_in_the_package() -> None:
    require("ruff")
    proc = run(["python", "-m", "ruff", "check", "--no-fix", "--output-format", "concise", "tuner", "examples"])
    assert proc.returncode == 0, explain(proc)


def test_the_package_is_formatted_as_ruff_formats_it() -> None:
    require("ruff")
    proc = run(["python", "-m", "ruff", "format", "--check", "--diff", "tuner", "examples"])
    assert proc.returncode == 0, explain(proc)


def test_mypy_finds_nothing_in_the_package() -> None:
    require("mypy")
    # the files and every option come from [tool.mypy] in pyproject.toml
    proc = run(["python", "-m", "mypy", "--no-error-summary"], timeout=900)
    assert proc.returncode == 0, explain(proc)
