"""The same study on this checkout and on an earlier commit, side by side (issue 24).

    python benchmarks/against_commit.py --commit 39604a7                      # image_default, 12 trials, 1 round
    python benchmarks/against_commit.py --commit 39604a7 --rounds 2 --backend jax

Each run is ``python -m tuner study`` in a fresh folder (SQLite storage and MLflow tracking, as the default
command stores them) with the random sampler (seed 0) and no pruner, so both checkouts train the same
configurations of the same space file (this checkout's ``--space``, given as a path so that both read the same
file), one trial at a time (``--workers 1``). The earlier commit runs from a ``git worktree`` of it made in a
temporary folder, with this environment's packages (``PYTHONPATH``). Rounds alternate: earlier, this, earlier,
this, so that a change in the machine's load touches both. Printed per run: wall time, CPU time (user + system,
the study's processes), the best validation score, and the programs this checkout's summary counts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C


def _run(checkout: Path, space: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(checkout), TUNER_WORKERS="1", KERAS_BACKEND=args.backend)
    cmd = [sys.executable, "-m", "tuner", "study", "--space", str(space), "--dataset", args.dataset,
           "--n-trials", str(args.n_trials), "--sampler", "random", "--pruner", "none", "--seed", "0",
           "--workers", "1", "--no-progress", "--json"]
    with tempfile.TemporaryDirectory() as folder:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    best = summary.get("best") or {}
    values = best.get("values") or [best.get("value")]
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "best_val": values[0],
        "programs": summary.get("programs_compiled"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", required=True, help="the earlier commit (e.g. 39604a7)")
    parser.add_argument("--space", default=str(C.ROOT / "search_spaces" / "image_default.yaml"))
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--n-trials", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"))
    parser.add_argument("--json", metavar="FILE", help="also write the runs here")
    args = parser.parse_args()
    space = Path(args.space).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        earlier = Path(tmp) / "earlier"
        subprocess.run(["git", "-C", str(C.ROOT), "worktree", "add", "--detach", str(earlier), args.commit],
                       check=True, capture_output=True)
        try:
            runs: list[dict[str, Any]] = []
            for round_ in range(args.rounds):
                for name, checkout in ((args.commit, earlier), ("this checkout", C.ROOT)):
                    row = {"round": round_, "code": name, "load1": C.load1(), **_run(checkout, space, args)}
                    runs.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            subprocess.run(["git", "-C", str(C.ROOT), "worktree", "remove", "--force", str(earlier)],
                           capture_output=True)
    for name in (args.commit, "this checkout"):
        mine = [r for r in runs if r["code"] == name]
        print(f"{name}: wall {C.median([r['wall_s'] for r in mine]):.1f} s, cpu "
              f"{C.median([r['cpu_s'] for r in mine]):.1f} s (medians over {len(mine)} runs)")
    ratio = C.median([r["wall_s"] for r in runs if r["code"] != args.commit]) / C.median(
        [r["wall_s"] for r in runs if r["code"] == args.commit])
    print(f"this checkout / {args.commit}: {ratio:.2f}x wall ({args.backend}, {args.dataset}, {args.n_trials} trials,"
          f" {C.commit()})")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
