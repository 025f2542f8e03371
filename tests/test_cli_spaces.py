"""Tests of ``python -m tuner spaces`` (in subprocesses, as a user runs it) and of ``--set`` parsing.

Each subprocess imports Keras (seconds), so all bad files are validated in one invocation and the runs
are started together by one module fixture.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tuner.errors import SpaceError
from tuner.space import SearchSpace, load_space, parse_override, shipped_spaces

ROOT = Path(__file__).resolve().parent.parent
BAD_DIR = ROOT / "tests" / "data" / "bad_spaces"
BAD_FILES = sorted(BAD_DIR.glob("*.yaml"))


def expected_problems(file: Path) -> list[tuple[str, str, str | None]]:
    """The ``(path, rule, value repr or None)`` triples a bad file declares in its ``# expect:`` header."""
    out = []
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect: "):
            path, rule, value = (part.strip() for part in line.removeprefix("# expect: ").split(" | "))
            out.append((path, rule, None if value == "-" else value))
    return out


def is_expected_line(line: str, source: str, path: str, rule: str, value: str | None) -> bool:
    prefix = f"error: {source}: {path}: {rule}"
    if not line.startswith(prefix):
        return False
    rest = line[len(prefix):]
    return "; got " not in rest if value is None else rest.endswith(f"; got {value}")


def tuner(*args: str, cwd: Path = ROOT, extra: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """Start ``python [extra] -m tuner ARGS`` (with the default backend) without waiting for it."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    return subprocess.Popen([sys.executable, *extra, "-m", "tuner", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


SHIPPED_FILES = sorted((ROOT / "search_spaces").glob("*.yaml"))


@dataclasses.dataclass
class Runs:
    procs: dict[str, subprocess.CompletedProcess[str]]
    bad_cwd: Path  # where the run over the bad files was started
    weird: Path  # a file with an unhashable key

    def __getitem__(self, key: str) -> subprocess.CompletedProcess[str]:
        return self.procs[key]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Every ``spaces`` run of this module, started at once: each one spends seconds importing Keras."""
    bad_cwd = tmp_path_factory.mktemp("validate-bad")  # the Python tag would write here if it were executed
    (bad_cwd / "sub").mkdir()
    (bad_cwd / "sub" / "typo.yaml").write_bytes((BAD_DIR / "unknown_parameter.yaml").read_bytes())
    weird = tmp_path_factory.mktemp("weird") / "weird.yaml"
    weird.write_text("parameters:\n  ? [a, b]\n  : 1\n", encoding="utf-8")
    started = {
        "bad": tuner("spaces", "validate", *map(str, BAD_FILES), "sub/typo.yaml", "missing.yaml",
                     str(ROOT / "search_spaces" / "default.yaml"), cwd=bad_cwd),
        "two_problems": tuner("spaces", "validate", str(BAD_DIR / "two_problems.yaml")),
        "shipped": tuner("spaces", "validate", *(str(f.relative_to(ROOT)) for f in SHIPPED_FILES)),
        "list": tuner("spaces", "list"),
        "show": tuner("spaces", "show", "default"),
        "weird": tuner("spaces", "validate", str(weird), "search_spaces/default.yaml"),
    }
    return Runs({key: finish(proc) for key, proc in started.items()}, bad_cwd, weird)


# -- spaces validate -------------------------------------------------------------------------------------
def test_validate_reports_every_bad_file_in_one_run(runs: Runs) -> None:
    proc = runs["bad"]
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    errors = error_lines(proc.stderr)
    for file in BAD_FILES:
        for path, rule, value in expected_problems(file):
            hits = [line for line in errors if is_expected_line(line, str(file), path, rule, value)]
            assert len(hits) == 1, f"{file.name}: no single line for {path} | {rule} | {value} in:\n{proc.stderr}"
    # a file is named as it was given
    assert ("error: sub/typo.yaml: parameters.dropuot: unknown parameter (did you mean 'dropout'?); see the "
            "knob reference in docs/search-spaces.md; got 'dropuot'") in errors
    assert any(line.startswith("error: missing.yaml: no such file (shipped spaces: ") for line in errors)
    assert len(errors) == sum(len(expected_problems(f)) for f in BAD_FILES) + 2
    # the good file is still validated and reported, after all the bad ones
    assert len(proc.stdout.splitlines()) == 1
    assert proc.stdout.startswith(f"{ROOT / 'search_spaces' / 'default.yaml'}: ok (")


def test_python_tag_was_never_executed(runs: Runs) -> None:
    cwd = runs.bad_cwd
    assert "python/object/apply:os.system" in runs["bad"].stderr
    assert not (cwd / "pwned_by_yaml_tag").exists()
    assert sorted(p.name for p in cwd.iterdir()) == ["sub"]


def test_validate_one_file_with_two_problems(runs: Runs) -> None:
    file = BAD_DIR / "two_problems.yaml"
    proc = runs["two_problems"]
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert error_lines(proc.stderr) == [
        f"error: {file}: parameters.dropout: must be in [0.0, 1.0); got 1.5",
        f"error: {file}: parameters.activation: must be a name that keras.activations.get() knows; got 'rellu'",
    ]


def test_every_shipped_space_validates(runs: Runs) -> None:
    assert SHIPPED_FILES
    proc = runs["shipped"]
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(SHIPPED_FILES)
    for file, line in zip(SHIPPED_FILES, lines):
        space = load_space(file)
        assert line == (f"{file.relative_to(ROOT)}: ok ({len(space.searched)} searched parameters: "
                        f"{', '.join(space.searched)})")


def test_spaces_list(runs: Runs) -> None:
    proc = runs["list"]
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert names == list(shipped_spaces())
    default = next(line for line in proc.stdout.splitlines() if line.split()[0] == "default")
    space = load_space("default")
    assert f"{len(space.searched)} searched" in default
    assert space.description in default


def test_spaces_show_default_prints_the_canonical_yaml(runs: Runs) -> None:
    proc = runs["show"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == load_space("default").to_yaml()
    assert SearchSpace.from_yaml(proc.stdout) == load_space("default")


def test_validate_survives_an_unhashable_key(runs: Runs) -> None:
    proc = runs["weird"]
    weird = runs.weird
    assert proc.returncode == 2, proc.stderr
    assert re.search(rf"^error: {re.escape(str(weird))}: line 2, column \d+: must be valid YAML", proc.stderr, re.M)
    assert "search_spaces/default.yaml: ok" in proc.stdout


# -- help and start-up ----------------------------------------------------------------------------------
def test_help_exits_zero() -> None:
    proc = finish(tuner("--help"))
    assert proc.returncode == 0
    assert "spaces" in proc.stdout and "study" in proc.stdout
    proc = finish(tuner("spaces", "--help"))
    assert proc.returncode == 0
    assert "{list,validate,show}" in proc.stdout


def test_help_does_not_import_tensorflow_or_keras() -> None:
    proc = finish(tuner("--help", extra=("-X", "importtime")))
    assert proc.returncode == 0
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "tuner.cli._main" in imported  # the import log is really there
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "optuna", "mlflow")]
    assert "tensorflow" not in proc.stderr


BEFORE_KERAS = {  # bad input the command line refuses before Keras, workers or stores start: args, message
    "space file": (("--space", "{bad}"), "{bad}: parameters.units: `low <= high` must hold"),
    "--set typo": (("--set", "unitz=3"), "--set: unitz: unknown parameter (did you mean 'units'?)"),
    "--sampler": (("--sampler", "tpee"), "--sampler: sampler: must be one of ['tpe', "),
    "--cv": (("--cv", "1"), "--cv: cv: must be 0 (off) or a number of folds >= 2; got 1"),
    "--dataset name": (("--dataset", "digitz"), "(did you mean 'digits'?); got 'digitz'"),
    "--dataset file": (("--dataset", "gone.csv"), "gone.csv: file not found"),
    "--target on a built-in": (("--dataset", "iris", "--target", "y"), "built-in datasets have their own target"),
}


@pytest.mark.parametrize("case", list(BEFORE_KERAS))
def test_bad_input_is_refused_before_keras_workers_or_stores_start(tmp_path, case) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  units: {type: int, low: 10, high: 5}\n")
    args, expected = BEFORE_KERAS[case]
    args = tuple(a.format(bad=bad) for a in args)
    # -v: a Keras import would replay its captured stderr, import log included
    proc = finish(tuner("study", *args, "--workers", "2", "-v", extra=("-X", "importtime"), cwd=tmp_path))
    assert proc.returncode == 2
    assert expected.format(bad=bad) in proc.stderr, proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "tuner.space._spaces" in imported  # the import log is really there
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "mlflow")]
    assert not (tmp_path / "mlruns").exists()  # no store touched


def test_keras_names_in_a_space_are_checked_by_keras_quietly(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  activation: {type: categorical, choices: [relu, relux]}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    proc = subprocess.run([sys.executable, "-m", "tuner", "study", "--space", str(bad)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "parameters.activation" in proc.stderr and "relux" in proc.stderr
    assert "oneDNN" not in proc.stderr and "I0000" not in proc.stderr  # TensorFlow's start-up chatter stays captured
    assert "Traceback" not in proc.stderr


def test_unknown_subcommand_is_a_usage_error() -> None:
    proc = finish(tuner("spaces", "check", "default"))
    assert proc.returncode == 2
    assert "invalid choice: 'check'" in proc.stderr


# -- --set PARAM=VALUE ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("dropout=0.2", ("dropout", 0.2)),
    ("epochs=3", ("epochs", 3)),
    (" epochs = 3", ("epochs", 3)),
    ("batch_norm=off", ("batch_norm", "off")),  # YAML 1.2: off stays a string
    ("nesterov=true", ("nesterov", True)),
    ("nesterov=yes", ("nesterov", "yes")),
    ("weight_decay=null", ("weight_decay", None)),
    ("activation=relu", ("activation", "relu")),
    ("learning_rate=0.01", ("learning_rate", 0.01)),
    ("activation=", ("activation", "")),
    ("loss={bad", ("loss", "{bad")),  # not YAML: kept as the raw text
    ("units=[16, 32]", ("units", [16, 32])),
])
def test_parse_override(text: str, expected: tuple[str, object]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["dropout", "=0.2", "  =1"])
def test_parse_override_needs_param_equals_value(text: str) -> None:
    pattern = rf"^--set: {re.escape(text)}: must be PARAM=VALUE; got {re.escape(repr(text))}$"
    with pytest.raises(SpaceError, match=pattern):
        parse_override(text)


def test_override_fixes_a_parameter_of_the_space() -> None:
    space = load_space("default").with_fixed(dict(parse_override(t) for t in ["dropout=0.2", "epochs=3"]))
    assert space.params["dropout"].is_fixed and space.params["dropout"].value == 0.2
    assert space.params["epochs"].value == 3
    with pytest.raises(SpaceError, match=r"^--set: units: must be a fixed value or a mapping with 'type' .*; "
                                         r"got \[16, 32\]$"):
        load_space("default").with_fixed(dict([parse_override("units=[16, 32]")]))


def test_parse_override_reads_exponents_as_floats() -> None:
    assert parse_override("learning_rate=1e-3") == ("learning_rate", 0.001)
    assert parse_override("kernel_l2=5E-4") == ("kernel_l2", 0.0005)
    space = load_space("default").with_fixed(dict([parse_override("learning_rate=1e-3")]))
    assert space.params["learning_rate"].value == 0.001
