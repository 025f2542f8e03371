"""The larger fuzz run (issue 15): random YAML documents and texts into the space loader, random CSV files
into the table reader, with the strategies and checks of ``tests/test_fuzz.py``.

    python benchmarks/fuzz.py                 # 2,000 examples each: ~2 min on 2 shared cores
    python benchmarks/fuzz.py --examples 200  # a quick look

Every example must give a space or dataset, or one ConfigError with one problem per thing wrong; anything
else (another exception, a failed check) counts as a traceback and is printed (there must be none).
Prints, per input kind: examples run, inputs refused, problems reported, tracebacks, seconds.
"""

from __future__ import annotations

from _common import load1, machine, table  # first: quiets TensorFlow, puts the repository on sys.path

import argparse
import time
import traceback
from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.test_fuzz import csv_files, documents, load_yaml_text, read_csv_bytes


def _as_yaml(doc: Any) -> str:
    return yaml.safe_dump({"parameters": doc} if isinstance(doc, dict) else doc)


KINDS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "space loader: random YAML documents": (documents, lambda doc: load_yaml_text(_as_yaml(doc))),
    "space loader: random text": (st.text(max_size=300), load_yaml_text),
    "table reader: random CSV files (utf-8, latin-1, utf-16)": (csv_files(), read_csv_bytes),
}


def run(kind: str, strategy: Any, check: Callable[[Any], Any], examples: int) -> dict[str, Any]:
    counts = {"input": kind, "examples": 0, "refused": 0, "problems": 0, "tracebacks": 0}
    shown: list[str] = []

    @seed(0)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(value: Any) -> None:
        counts["examples"] += 1
        try:
            err = check(value)
        except Exception:  # the run goes on: every failure is counted, the first few printed
            counts["tracebacks"] += 1
            if len(shown) < 3:
                shown.append(f"{value!r:.300}\n{traceback.format_exc()}")
            return
        if err is not None:
            counts["refused"] += 1
            counts["problems"] += len(err.problems)

    start = time.perf_counter()
    one()
    counts["seconds"] = round(time.perf_counter() - start, 1)
    for text in shown:
        print(f"--- traceback ({kind}):\n{text}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="examples per input kind (default: 2000).")
    args = parser.parse_args()
    print(machine())
    rows = [run(kind, strategy, check, args.examples) for kind, (strategy, check) in KINDS.items()]
    table(rows, [("input", "input"), ("examples", "examples"), ("refused", "refused (ConfigError)"),
                 ("problems", "problems reported"), ("tracebacks", "tracebacks"), ("seconds", "s")])
    print(f"load1 at the end: {load1()}")
    if any(r["tracebacks"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
