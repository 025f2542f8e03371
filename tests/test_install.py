"""The package as a user installs it: a wheel, installed without ``-e``, run from an empty folder.

The test virtual environment holds an editable install of this checkout, whose import hook would quietly
find any module the wheel forgot. So the wheel goes into a fresh virtual environment of its own
(``venv --without-pip``; it sees the test environment's packages through a ``.pth`` line, and ``.pth``
files found that way, such as the editable hook, are not processed), and every command runs there from
an empty folder: whatever it imports of ``tuner`` comes from the wheel or not at all. Nothing is
downloaded when this environment has setuptools to build the wheel with.

The sdist and the wheel are built once, by ``python -m build`` as a release would be (the wheel from the
sdist), and ``twine check`` reads both: the metadata the package index would show.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# what the sdist would hold for the build: the project file, the readme it names, the code, the shipped spaces
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "tuner", "search_spaces")
DISTRIBUTION = "honest-tuner"  # the name on the package index (`tuner` there is another project)
WHEEL_PREFIX = DISTRIBUTION.replace("-", "_")
SHIPPED_SPACES = sorted(p.stem for p in (ROOT / "search_spaces").glob("*.yaml"))


def _offline_build() -> bool:
    """Whether this environment's setuptools can build the project (77 reads the SPDX ``license`` string and
    builds wheels itself); else the isolated build fetches one from the package index (Python 3.12's venv
    installs no setuptools at all).
    """
    if importlib.util.find_spec("setuptools") is None:
        return False
    major = int(importlib.metadata.version("setuptools").split(".")[0])
    return major >= 77


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "MLFLOW_TRACKING_URI", "KERAS_BACKEND")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{' '.join(map(str, proc.args))}: exit {proc.returncode}\n" \
                                 f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The wheel built from a copy of the checkout and installed into a virtual environment of its own."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:  # a copy, so the build's own build/ and *.egg-info never land in the checkout
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    dist = tmp / "dist"
    offline = _offline_build()
    if importlib.util.find_spec("build") is not None:  # sdist, then the wheel from the sdist, as a release
        build = _run([sys.executable, "-m", "build", *(["--no-isolation"] if offline else []), "--outdir", str(dist),
                      str(src)], cwd=tmp)
    else:
        build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(src), "-w", str(dist),
                      *(["--no-build-isolation", "--no-index"] if offline else [])], cwd=tmp)
    _ok(build)
    wheels = sorted(dist.glob(f"{WHEEL_PREFIX}-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp))
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    purelib = Path(_ok(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            cwd=tmp)).stdout.strip())
    # the dependencies (TensorFlow, Optuna, MLflow, ...) come from the test environment, read-only
    deps = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if Path(p).is_dir()]
    (purelib / "_tuner_test_deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    _ok(_run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
              str(wheels[0])], cwd=tmp))
    empty = tmp / "empty"
    empty.mkdir()
    return {"src": src, "dist": dist, "build_log": build.stdout + build.stderr, "wheel": wheels[0], "python": python,
            "script": bindir / "tuner", "purelib": purelib, "cwd": empty}


def test_the_distributions_pass_twine_check_without_a_license_warning(installed):
    if importlib.util.find_spec("build") is None or importlib.util.find_spec("twine") is None:
        pytest.skip("build and twine are in the test extra: pip install -e '.[test]'")
    sdists = sorted(installed["dist"].glob(f"{WHEEL_PREFIX}-*.tar.gz"))
    assert len(sdists) == 1, sorted(installed["dist"].iterdir())
    out = _ok(_run([sys.executable, "-m", "twine", "check", "--strict", str(sdists[0]), str(installed["wheel"])],
                   cwd=installed["cwd"])).stdout
    assert out.count("PASSED") == 2, out
    # setuptools' deprecation of the table form of `license` (deadline 2027-02-18) is gone
    assert "License :: " not in installed["build_log"] and "project.license` as a TOML table" not in \
        installed["build_log"], installed["build_log"][-3000:]
    metadata = zipfile.ZipFile(installed["wheel"]).read(
        next(n for n in zipfile.ZipFile(installed["wheel"]).namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert f"Name: {DISTRIBUTION}" in metadata and "License-Expression: Apache-2.0" in metadata, metadata[:800]
    assert "License-File: LICENSE" in metadata


def test_the_version_comes_from_the_installed_metadata(installed):
    out = _ok(_run([str(installed["python"]), "-c", "import importlib.metadata as m, tuner; "
                    f"print(tuner.__version__, m.version({DISTRIBUTION!r}))"], cwd=installed["cwd"])).stdout.split()
    assert out[0] == out[1], out


def test_the_wheel_ships_every_module_every_space_and_the_command(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    src = installed["src"]  # the copy the wheel was built from (the checkout may move on meanwhile)
    modules = {p.relative_to(src).as_posix() for p in (src / "tuner").rglob("*.py")}
    assert sorted(modules - names) == [], "modules of tuner/ missing from the wheel (pyproject [tool.setuptools] packages)"
    spaces = {f"tuner/search_spaces/{name}.yaml" for name in SHIPPED_SPACES}
    assert sorted(spaces - names) == [], "shipped spaces missing from the wheel (package data tuner.search_spaces)"
    assert "tuner/py.typed" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "tuner = tuner.cli:main" in zipfile.ZipFile(installed["wheel"]).read(entry_points).decode()


def test_what_runs_is_the_installed_wheel_not_the_checkout(installed):
    code = ("import json, sys, tuner, tuner.cli, tuner.space; from importlib import resources; "
            "print(json.dumps({'tuner': tuner.__file__, 'cli': tuner.cli.__file__, "
            "'spaces': [str(f) for f in resources.files('tuner.search_spaces').iterdir()], 'path': sys.path, "
            "'finders': [repr(f) for f in sys.meta_path]}))")
    seen = json.loads(_ok(_run([str(installed["python"]), "-c", code], cwd=installed["cwd"])).stdout)
    purelib = installed["purelib"].resolve()
    for where in [seen["tuner"], seen["cli"], *seen["spaces"]]:
        assert Path(where).resolve().is_relative_to(purelib), (where, purelib)
    assert sorted(Path(f).stem for f in seen["spaces"] if f.endswith(".yaml")) == SHIPPED_SPACES
    assert not any(Path(p).resolve() in (ROOT, ROOT / "tuner") for p in seen["path"] if p), seen["path"]
    assert not any("editable" in f.lower() for f in seen["finders"]), seen["finders"]


def test_spaces_list_shows_every_shipped_space(installed):
    out = _ok(_run([str(installed["script"]), "spaces", "list"], cwd=installed["cwd"])).stdout
    listed = sorted(line.split()[0] for line in out.splitlines() if line.strip())
    assert listed == SHIPPED_SPACES, out


def test_a_short_study_runs_from_an_empty_folder(installed, tmp_path):
    proc = _ok(_run([str(installed["python"]), "-m", "tuner", "study", "--n-trials", "2", "--set", "epochs=2",
                     "--json"], cwd=tmp_path))
    summary = json.loads(proc.stdout)
    assert summary["counts"]["complete"] + summary["counts"]["pruned"] == 2, summary["counts"]
    assert (tmp_path / "mlruns" / "optuna.db").is_file()
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
