"""The same study on this checkout and on an earlier commit, side by side (issue 24).

    python benchmarks/against_commit.py --commit 39604a7                      # image_default, 12 trials, 1 round
    python benchmarks/against_commit.py --commit 39604a7 --rounds 2 --backend jax

Each run is a study through the Python API (``Study(space, dataset, settings).run()``, which ``python -m tuner
study`` runs too) in a fresh folder (SQLite storage and MLflow tracking in ``mlruns/``, as the default command
stores them), no pruner, one trial at a time (``$TUNER_WORKERS=1``), on the same space file (this checkout's
``--space``, given as a path so that both read the same file). The first run samples its configurations with
the random sampler (seed 0); every run after it trains those same configurations, enqueued
(``Study.enqueue``): since 8f42504 a trial's sampler is seeded from the study's seed and the trial's number, so
the same seed no longer proposes the same configurations on both sides of that commit. The script prints, for
every run after the first, how many configurations it trained alike and which objectives differ. The earlier
commit runs from a ``git worktree`` of it made in a temporary folder, with this environment's packages
(``PYTHONPATH``). Rounds alternate: earlier, this, earlier, this, so that a change in the machine's load touches
both. Printed per run: wall time, CPU time (user + system, the study's processes), the best validation score, and
the programs this checkout counts.
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

_DRIVER = """
import json, sys
from tuner.study import Study, StudySettings
space, dataset, n_trials, configs = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
settings = StudySettings(study_name="against-commit", n_trials=n_trials, sampler="random", pruner="none", seed=0)
study = Study(space, dataset, settings)  # $TUNER_WORKERS=1 where the API has workers: one trial at a time, here
for params in configs:  # the configurations every run trains: the first run's
    study.enqueue(params)
study.run()
trials = sorted(study.optuna_study.trials, key=lambda t: t.number)
print("RESULT " + json.dumps({"programs": getattr(study, "programs_compiled", None),
                              "values": [t.values[0] if t.values else None for t in trials],
                              "params": [t.params for t in trials]}))
"""


def _run(checkout: Path, space: Path, args: argparse.Namespace, configs: list[dict[str, Any]]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(checkout), TUNER_WORKERS="1", KERAS_BACKEND=args.backend)
    cmd = [sys.executable, "-c", _DRIVER, str(space), args.dataset, str(args.n_trials), json.dumps(configs)]
    with tempfile.TemporaryDirectory() as folder:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        stores = sorted(str(db.relative_to(folder)) for db in Path(folder).glob("**/*.db"))
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(lines[-1][len("RESULT "):])
    done = [v for v in result["values"] if v is not None]
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "best_val": max(done) if done else None,
        "programs": result.get("programs"),
        "stores": stores,  # the Optuna storage and MLflow's store, as the default command writes them
        "values": result["values"],
        "params": result["params"],
    }


def _compare_values(runs: list[dict[str, Any]]) -> None:
    """Print, for every run after the first, whether it trained the first run's configurations and which of their
    objectives differ (the same configurations and seeds: none should)."""
    first = runs[0]
    for run in runs[1:]:
        alike = sum(a == b for a, b in zip(first["params"], run["params"], strict=False))
        differ = [(i, a, b) for i, (a, b) in enumerate(zip(first["values"], run["values"], strict=False))
                  if a is None or b is None or abs(a - b) > 1e-9]
        print(f"round {run['round']}, {run['code']}: {alike} of {len(first['params'])} configurations as the first "
              f"run's, {len(run['values']) - len(differ)} of {len(run['values'])} objectives the same"
              + "".join(f"; trial {i}: {a} then {b}" for i, a, b in differ))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", required=True, help="the earlier commit (e.g. 39604a7)")
    parser.add_argument("--space", default=str(C.ROOT / "search_spaces" / "image_default.yaml"))
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--n-trials", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"))
    parser.add_argument("--json", metavar="FILE", help="also write the runs here")
    parser.add_argument("--configs-out", metavar="FILE",
                        help="write the configurations trained here (for trial_cost.py --configs-from)")
    args = parser.parse_args()
    space = Path(args.space).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        earlier = Path(tmp) / "earlier"
        subprocess.run(["git", "-C", str(C.ROOT), "worktree", "add", "--detach", str(earlier), args.commit],
                       check=True, capture_output=True)
        try:
            runs: list[dict[str, Any]] = []
            configs: list[dict[str, Any]] = []  # the first run samples them; every run after enqueues them
            for round_ in range(args.rounds):
                for name, checkout in ((args.commit, earlier), ("this checkout", C.ROOT)):
                    row = {"round": round_, "code": name, "load1": C.load1(), **_run(checkout, space, args, configs)}
                    configs = configs or row["params"]
                    runs.append(row)
                    print(json.dumps({k: v for k, v in row.items() if k != "params"}), flush=True)
        finally:
            subprocess.run(["git", "-C", str(C.ROOT), "worktree", "remove", "--force", str(earlier)],
                           capture_output=True)
    for name in (args.commit, "this checkout"):
        mine = [r for r in runs if r["code"] == name]
        print(f"{name}: wall {C.median([r['wall_s'] for r in mine]):.1f} s, cpu "
              f"{C.median([r['cpu_s'] for r in mine]):.1f} s (medians over {len(mine)} runs)")
    _compare_values(runs)
    ratio = C.median([r["wall_s"] for r in runs if r["code"] != args.commit]) / C.median(
        [r["wall_s"] for r in runs if r["code"] == args.commit])
    print(f"this checkout / {args.commit}: {ratio:.2f}x wall ({args.backend}, {args.dataset}, {args.n_trials} trials,"
          f" {C.commit()})")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    if args.configs_out:
        Path(args.configs_out).write_text(json.dumps(runs[0]["params"], indent=1))


if __name__ == "__main__":
    main()
