"""The docs say what the code does: the site builds strictly, the README stays a front page, and the code
blocks marked runnable run.

A block is runnable when the line before its opening fence is ``<!-- runnable -->``. The runnable blocks of a
page run in order, in one fresh folder per page, at tiny sizes (trials, epochs and seeds cut by
:func:`shrink`): ``python`` blocks together in one process, each line of a ``bash`` block as a command
(``python -m tuner ...`` with this checkout), and a ``yaml`` block whose first line is ``# NAME.yaml - ...``
is written to that file for the commands after it. A renamed option or function breaks a test here, not a
reader.
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
from pathlib import Path

import pytest

from tests._tools import ROOT, explain, require, run

DOCS = ROOT / "docs"
MARKER = "<!-- runnable -->"
FENCE = re.compile(r"^```(\w+)\s*$")


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def runnable_blocks(path: Path) -> list[tuple[str, str]]:
    """The ``(language, code)`` of each block of ``path`` marked runnable, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    for i, line in enumerate(lines[:-1]):
        if line.strip() != MARKER:
            continue
        match = FENCE.match(lines[i + 1])
        assert match, f"{path.name}:{i + 1}: {MARKER} must stand right above a fenced block"
        end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
        blocks.append((match.group(1), "\n".join(lines[i + 2:end]) + "\n"))
    return blocks


_SHRINK = [  # (pattern, replacement): the tiny sizes of a test run
    (r"(--n-trials )\d+", r"\g<1>2"), (r"(n_trials=)\d+", r"\g<1>2"),
    (r"(epochs=)\d+", r"\g<1>1"), (r"(\"epochs\": )\d+", r"\g<1>1"), (r"(\bepochs: )\d+", r"\g<1>1"),
    (r"(--seeds )\d+", r"\g<1>1"), (r"(\bseeds=)\d+", r"\g<1>1"),
    (r"(--confirm )\d+", r"\g<1>2"), (r"(confirm_top=)\d+", r"\g<1>2"),
    (r"(--workers )\d+", r"\g<1>2"),
]


def shrink(code: str) -> str:
    """``code`` with its numbers of trials, epochs, seeds and workers cut to a test's size."""
    for pattern, repl in _SHRINK:
        code = re.sub(pattern, repl, code, flags=re.MULTILINE)
    return code


def _command(line: str) -> list[str]:
    words = shlex.split(line, comments=True)
    if words[:3] == ["python", "-m", "tuner"] and words[3:4] == ["study"]:
        if "--n-trials" not in words:
            words += ["--n-trials", "2"]
        if not any(w.startswith("epochs=") for w in words):
            words += ["--set", "epochs=1"]
    return words


def _run_page(path: Path, tmp: Path) -> None:
    python: list[str] = []

    def flush() -> None:
        if not python:
            return
        script = tmp / f"blocks_{len(list(tmp.glob('blocks_*.py')))}.py"
        script.write_text("\n".join(python))
        python.clear()
        proc = run(["python", str(script)], cwd=tmp, timeout=900)
        assert proc.returncode == 0, f"{path.name}: python blocks\n{script.read_text()}\n{explain(proc)}"

    for lang, code in runnable_blocks(path):
        code = shrink(code)
        if lang == "python":
            python.append(code)
            continue
        flush()  # what ran before a command is done before it
        if lang == "yaml":
            first = code.splitlines()[0]
            name = re.match(r"#\s*(\S+\.ya?ml)\b", first)
            assert name, f"{path.name}: a runnable yaml block starts with '# NAME.yaml - ...'; got {first!r}"
            (tmp / name.group(1)).write_text(code)
        elif lang in ("bash", "console"):
            for line in code.splitlines():
                line = line.removeprefix("$ ").strip()
                if not line or line.startswith("#"):
                    continue
                proc = run(_command(line), cwd=tmp, timeout=900)
                assert proc.returncode == 0, f"{path.name}: {line}\n{explain(proc)}"
        else:
            pytest.fail(f"{path.name}: runnable blocks are python, bash or yaml; got {lang}")
    flush()


PAGES_WITH_BLOCKS = [p for p in _pages() if runnable_blocks(p)]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_BLOCKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_runnable_blocks_run(page: Path, tmp_path: Path) -> None:
    _run_page(page, tmp_path)


def test_the_runnable_blocks_are_valid_code() -> None:
    """Fast: every runnable python block parses, and shrinking leaves it valid (the slow test runs them)."""
    for page in PAGES_WITH_BLOCKS:
        for lang, code in runnable_blocks(page):
            if lang == "python":
                ast.parse(shrink(code), filename=str(page))
    assert PAGES_WITH_BLOCKS, "no runnable block found: the marker is <!-- runnable -->"


def test_shrink_cuts_trials_epochs_and_seeds() -> None:
    code = 'tuner.run_study(s, "digits", n_trials=8, fixed={"epochs": 15})\npython -m tuner explain x --seeds 3'
    assert shrink(code) == 'tuner.run_study(s, "digits", n_trials=2, fixed={"epochs": 1})\n' \
                           "python -m tuner explain x --seeds 1"
    assert _command("python -m tuner study --space x.yaml") == ["python", "-m", "tuner", "study", "--space",
                                                                 "x.yaml", "--n-trials", "2", "--set", "epochs=1"]


# -- the site ------------------------------------------------------------------------------------------
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """Broken links, missing anchors, a moved include or a docstring the reference cannot render: an error."""
    require("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
    proc = run(["python", "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
               env={"NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, explain(proc)
    assert (tmp_path / "site" / "reference" / "study" / "index.html").is_file()


def _nav_files(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [f for v in node.values() for f in _nav_files(v)]
    if isinstance(node, list):
        return [f for v in node for f in _nav_files(v)]
    return []


def test_every_page_is_in_the_nav_and_every_public_name_in_the_reference() -> None:
    import yaml

    nav = _nav_files(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages, "docs pages and the nav of mkdocs.yml differ"
    import tuner

    documented = set(re.findall(r"^::: tuner\.\w+\.(\w+)$", "\n".join(
        p.read_text() for p in (DOCS / "reference").glob("*.md")), re.MULTILINE))
    public = set(tuner.__all__) - {"__version__"}
    assert sorted(public - documented) == [], "public names missing from docs/reference/ (add a ::: line)"


# -- the README ----------------------------------------------------------------------------------------
def test_the_readme_is_a_front_page() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    for marker in ("<!-- run-line -->", "<!-- test-line -->"):  # .ci/run reads the test line after its marker
        assert text.count(marker) == 1, marker
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert missing == [], f"README links to files that do not exist: {missing}"
    moved = {"## Search-space reference", "## Command line", "## Python API", "## Benchmarks"}
    assert not [h for h in moved if h in text], "a section moved to docs/ is back in the README"


def test_the_version_is_the_project_version() -> None:
    import tuner

    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert tuner.__version__ == version, (tuner.__version__, version, sys.path[:3])


# -- the command line as the docs write it -----------------------------------------------------------------
def _options_of(parser: object) -> set[str]:
    return {o for action in getattr(parser, "_actions", []) for o in action.option_strings}


def test_every_option_the_docs_name_exists_and_every_study_option_is_documented() -> None:
    """A renamed or removed option fails here, and so does a new ``study`` option left out of docs/cli.md."""
    from tuner.cli import COMMANDS, build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and set(a.choices) >= set(COMMANDS)).choices
    known = _options_of(parser).union(*(_options_of(p) for p in subparsers.values()))
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(--[a-z][a-z0-9-]*)", cli))
    assert sorted(documented - known) == [], "docs/cli.md names options the command line does not have"
    commands = set(re.findall(r"^\| `([a-z]+)[ `]", cli, re.MULTILINE))
    assert sorted(set(COMMANDS) - commands) == [], "subcommands missing from docs/cli.md's table"
    # every page: `python -m tuner COMMAND --option` in a code block names real options of that command
    for page in _pages():
        for line in re.findall(r"python -m tuner ([a-z]+[^\n`]*)", page.read_text(encoding="utf-8")):
            words = line.split()
            if words[0] not in subparsers:
                continue
            options = {w.split("=")[0] for w in words[1:] if w.startswith("--")}
            unknown = options - _options_of(subparsers[words[0]]) - _options_of(parser)
            assert not unknown, f"{page.name}: python -m tuner {line.strip()}: no such option {sorted(unknown)}"
    study_options = _options_of(subparsers["study"]) - {"-h", "--help", "-v", "--verbose", "-q", "--quiet"}
    missing = sorted(o for o in study_options if o.startswith("--") and o not in documented)
    assert missing == [], f"options of `study` missing from docs/cli.md: {missing}"
