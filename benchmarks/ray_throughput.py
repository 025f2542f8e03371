"""The same 12-trial study through the process pool (`--workers 2`) and through a local Ray instance
(`--ray --workers 2`), interleaved: trials per minute, the ratio, and Ray's fixed start-up cost.

Each repeat runs both commands in a fresh folder, in alternating order (the machine may be shared: the
1-minute load average is printed beside every run). For each run:

- *wall*: the whole command, from start to exit;
- *study*: from the first trial's start of training (its end minus its wall time, from the trial record) to
  the last trial's end: the time the trials took, with imports, Ray's start-up and the final model's
  scoring left out;
- *start-up*: the time before the first trial trained (wall minus study minus the time after the last trial).

Target (issue 21): Ray's *study* time within 1.15x of the pool's, start-up excluded.

    python benchmarks/ray_throughput.py                 # 3 interleaved repeats, 12 trials, 3 epochs
    python benchmarks/ray_throughput.py --repeats 1 --trials 6
"""

from __future__ import annotations

import _common  # noqa: F401  (quiet TensorFlow, the repository on the path)

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parent.parent


def _run(kind: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"tuner-bench-{kind}-") as tmp:
        cmd = [sys.executable, "-m", "tuner", "study", "--dataset", args.dataset, "--workers", "2",
               "--n-trials", str(args.trials), "--pruner", "none", "--no-progress", "-q", "--study", "bench",
               "--tracking-uri", args.tracking_uri]
        for o in args.overrides:
            cmd += ["--set", o]
        if kind == "ray":
            cmd += ["--ray"]
        load = _common.load1()
        start = time.perf_counter()
        began = time.time()
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"{kind} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        study = optuna.load_study(study_name="bench", storage=f"sqlite:///{tmp}/mlruns/optuna.db")
        done = [t for t in study.trials if t.state.name == "COMPLETE"]
        starts = [(t.datetime_complete - timedelta(seconds=t.user_attrs["wall_time"])).timestamp() for t in done]
        ends = [t.datetime_complete.timestamp() for t in done]
        study_s = max(ends) - min(starts)
        return {"kind": kind, "trials": len(done), "wall_s": round(wall, 1), "study_s": round(study_s, 1),
                "startup_s": round(min(starts) - began, 1), "after_s": round(began + wall - max(ends), 1),
                "trials_per_min": round(60 * len(done) / study_s, 2), "load1": load,
                "processes": len({t.user_attrs["worker_pid"] for t in done})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--set", action="append", default=None, dest="overrides")
    parser.add_argument("--tracking-uri", default="none", help="MLflow URI of both runs (default: none)")
    parser.add_argument("--json", type=Path, help="write the runs here too")
    args = parser.parse_args()
    args.overrides = args.overrides or ["epochs=3", "patience=0", "n_layers=1", "units=32"]
    rows = []
    for i in range(args.repeats):
        for kind in (("pool", "ray") if i % 2 == 0 else ("ray", "pool")):
            row = _run(kind, args)
            rows.append(row)
            print(f"repeat {i}: {kind:<4} trials={row['trials']} wall={row['wall_s']} s study={row['study_s']} s "
                  f"start-up={row['startup_s']} s after={row['after_s']} s {row['trials_per_min']} trials/min "
                  f"processes={row['processes']} load1={row['load1']}", flush=True)
    med = {k: {m: statistics.median(r[m] for r in rows if r["kind"] == k)
               for m in ("wall_s", "study_s", "startup_s", "trials_per_min")} for k in ("pool", "ray")}
    print(f"\ncpus={os.cpu_count()} dataset={args.dataset} trials={args.trials} sets={args.overrides} "
          f"tracking={args.tracking_uri} repeats={args.repeats} (medians)")
    for k in ("pool", "ray"):
        m = med[k]
        print(f"  {k:<4} study {m['study_s']:>6.1f} s  {m['trials_per_min']:>6.2f} trials/min  "
              f"wall {m['wall_s']:>6.1f} s  start-up {m['startup_s']:>5.1f} s")
    ratio = med["ray"]["study_s"] / med["pool"]["study_s"]
    print(f"  Ray / pool study time: {ratio:.2f}x (target <= 1.15x); Ray's extra start-up: "
          f"{med['ray']['startup_s'] - med['pool']['startup_s']:+.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "medians": med, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
