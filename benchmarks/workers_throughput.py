"""Trials per hour with 1, 2, 4 ... worker processes on one machine (CPU or GPUs).

Each setting runs a fresh study of the same space through the CLI (`python -m tuner study --workers N`)
with a trial budget proportional to N, and reports trials per hour, the speed-up over one worker and the
devices the trials ran on. Under `KERAS_BACKEND=jax` on a GPU machine this is the GPU benchmark.

    python benchmarks/workers_throughput.py                     # 1 and 2 workers, CPU, digits
    KERAS_BACKEND=jax python benchmarks/workers_throughput.py --workers 1 2 4 --tracking-uri none

`--as-default` runs the default study instead (`python -m tuner study --n-trials N`: its space, pruner and
tracking), with `--n-trials` trials for every setting; `auto` among `--workers` runs it with no `--workers`
option (the default, `--workers auto`, with `$TUNER_WORKERS` unset). `--repeats R` interleaves the settings R
times. Issue 24:

    python benchmarks/workers_throughput.py --as-default --workers 1 auto --n-trials 24 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parent.parent


def _run_one(args: argparse.Namespace, n: str) -> dict:
    """One study in a fresh folder: its wall time, trials, fit time per trial, devices and best value."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "tuner", "study", "--no-progress", "-q"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env.pop("TUNER_WORKERS", None)
        if args.as_default:
            total, name = args.n_trials, f"image_default-{args.dataset}"
            cmd += ["--dataset", args.dataset, "--n-trials", str(total)]
        else:
            total, name = int(n) * args.trials_per_worker, f"default-{args.dataset}"
            cmd += ["--space", args.space, "--dataset", args.dataset, "--n-trials", str(total), "--pruner", "none"]
            for o in args.overrides:
                cmd += ["--set", o]
        if n != "auto":
            cmd += ["--workers", n]
        if args.tracking_uri:
            cmd += ["--tracking-uri", args.tracking_uri]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"workers={n} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp}/mlruns/optuna.db")
        trials = [t for t in study.trials if t.state.is_finished()]
        devices = sorted({t.user_attrs.get("device", "?") for t in trials})
        train_time = sum(t.user_attrs.get("wall_time", 0.0) for t in trials)
        first = next((line for line in proc.stderr.splitlines() if line.startswith("study ")), "")
        said = re.search(r"\d+ workers? \(.*\)$", first)
        return {"workers": n, "trials": len(trials), "wall_s": round(wall, 1),
                "trials_per_hour": round(3600 * len(trials) / wall, 1),
                "fit_s_per_trial": round(train_time / max(1, len(trials)), 2), "devices": devices,
                "processes": len({t.user_attrs.get("worker_pid") for t in trials}),
                "best": round(study.best_value, 4), "said": said.group(0) if said else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", nargs="+", default=["1", "2"], help="numbers of workers, or auto")
    parser.add_argument("--trials-per-worker", type=int, default=12)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--space", default=str(ROOT / "search_spaces" / "default.yaml"))
    parser.add_argument("--set", action="append", default=["epochs=10", "patience=0"], dest="overrides")
    parser.add_argument("--tracking-uri", default=None, help="MLflow URI; 'none' for no tracking")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--quick", action="store_true", help="2 trials per worker, 3 epochs")
    parser.add_argument("--as-default", action="store_true", help="the default study, --n-trials trials each")
    parser.add_argument("--n-trials", type=int, default=24, help="with --as-default (default: 24)")
    parser.add_argument("--repeats", type=int, default=1, help="run the settings this many times, interleaved")
    args = parser.parse_args()
    if args.quick:
        args.trials_per_worker, args.overrides = 2, ["epochs=3", "patience=0"]
    rows = [_run_one(args, n) for _ in range(args.repeats) for n in args.workers]
    base = rows[0]["trials_per_hour"]
    for r in rows:
        r["speedup"] = round(r["trials_per_hour"] / base, 2)
    import keras

    print(f"backend={keras.backend.backend()} cpus={os.cpu_count()} dataset={args.dataset} "
          f"{'default study' if args.as_default else f'sets={args.overrides}'} load={os.getloadavg()[0]:.2f}")
    print(f"{'workers':>7} {'trials':>6} {'wall s':>8} {'trials/h':>9} {'speedup':>7} {'fit s/trial':>11} "
          f"{'procs':>5} {'best':>7}  devices; the study's own words")
    for r in rows:
        print(f"{r['workers']:>7} {r['trials']:>6} {r['wall_s']:>8} {r['trials_per_hour']:>9} {r['speedup']:>7} "
              f"{r['fit_s_per_trial']:>11} {r['processes']:>5} {r['best']:>7}  {', '.join(r['devices'])}; {r['said']}")
    for n in args.workers:
        walls = [r["wall_s"] for r in rows if r["workers"] == n]
        print(f"workers={n}: wall {sum(walls) / len(walls):.1f} s mean of {len(walls)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
