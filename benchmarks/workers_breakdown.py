"""Where the wall time of ``python -m tuner study --workers N`` goes: start-up, trials, teardown (issue 8).

    python benchmarks/workers_breakdown.py            # 1 and 2 workers, 12 trials each, 3 interleaved repeats: ~4 min on 2 cores
    python benchmarks/workers_breakdown.py --quick    # 2 trials per worker, 3 epochs, 1 repeat: ~1.5 min

The same runs as ``benchmarks/workers_throughput.py`` (a fresh study of ``search_spaces/default.yaml``
through the CLI, ``n_trials`` = workers x ``--trials-per-worker``, ``epochs=10``, ``patience=0``, pruning
off), repeated with the settings interleaved (1, 2, 1, 2, ...) and read back from the study's storage:

- ``start s``: from launching the command to the first trial's start (imports, stores, worker processes);
- ``span s``: from the first trial's start to the last one's end; ``steady/h`` = trials / span;
- ``end s``: from the last trial's end to the command's exit (test score, best model to MLflow, closing);
- ``trial s``, ``fit s``: median trial duration (Optuna's start to end) and ``model.fit`` time within it;
- ``between s``: median time a worker spends between the end of one trial and the start of its next.

``speedup`` compares trials per hour of the whole command with one worker's (median over repeats);
``steady x`` compares the span rates. The CLI process is worker 0 in both cases; ``--workers 2`` also
starts one ``python -m tuner worker`` process at once (threads split between the two).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C


def run_once(args: argparse.Namespace, n: int) -> dict[str, Any]:
    import optuna

    with tempfile.TemporaryDirectory() as tmp:
        total = n * args.trials_per_worker
        cmd = [sys.executable, "-m", "tuner", "study", "--space", args.space, "--dataset", args.dataset,
               "--workers", str(n), "--n-trials", str(total), "--pruner", "none", "--no-progress", "-q"]
        for o in args.overrides:
            cmd += ["--set", o]
        if args.tracking_uri:
            cmd += ["--tracking-uri", args.tracking_uri]
        load = C.load1()
        t0 = dt.datetime.now()
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - start
        t_end = dt.datetime.now()
        if proc.returncode != 0:
            sys.exit(f"workers={n} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        study = optuna.load_study(study_name=f"default-{args.dataset}", storage=f"sqlite:///{tmp}/mlruns/optuna.db")
        trials = [t for t in study.trials if t.state.is_finished()]
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    span = (last - first).total_seconds()
    between = []
    for pid in {t.user_attrs.get("worker_pid") for t in trials}:
        mine = sorted((t for t in trials if t.user_attrs.get("worker_pid") == pid), key=lambda t: t.datetime_start)
        between += [(b.datetime_start - a.datetime_complete).total_seconds() for a, b in zip(mine, mine[1:])]
    return {"workers": n, "trials": len(trials), "wall_s": wall, "start_s": (first - t0).total_seconds(),
            "span_s": span, "end_s": (t_end - last).total_seconds(),
            "trial_s": C.median([(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]),
            "fit_s": C.median([t.user_attrs.get("wall_time", float("nan")) for t in trials]),
            "between_s": C.median(between), "per_hour": 3600 * len(trials) / wall,
            "steady_per_hour": 3600 * len(trials) / span if span > 0 else float("nan"),
            "processes": len({t.user_attrs.get("worker_pid") for t in trials}), "load1": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--trials-per-worker", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--space", default=str(C.ROOT / "search_spaces" / "default.yaml"))
    parser.add_argument("--set", action="append", default=None, dest="overrides",
                        help="fix a knob, as the CLI's --set (repeatable). Defaults to epochs=10, patience=0.")
    parser.add_argument("--tracking-uri", default=None, help="MLflow URI; 'none' for no tracking")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--quick", action="store_true", help="2 trials per worker, 3 epochs, 1 repeat")
    args = parser.parse_args()
    if args.overrides is None:
        args.overrides = ["epochs=10", "patience=0"]
    if args.quick:
        args.trials_per_worker, args.overrides, args.repeats = 2, ["epochs=3", "patience=0"], 1

    info = C.machine()
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        for n in (args.workers if rep % 2 == 0 else list(reversed(args.workers))):
            r = run_once(args, n)
            r["repeat"] = rep + 1
            runs.append(r)
            print(f"# repeat {rep + 1}: {n} worker(s) {r['wall_s']:.1f} s, {r['per_hour']:.0f} trials/h "
                  f"(load {r['load1']})", file=sys.stderr, flush=True)
    keys = ["wall_s", "start_s", "span_s", "end_s", "trial_s", "fit_s", "between_s", "per_hour", "steady_per_hour",
            "load1"]
    rows = []
    for n in args.workers:
        mine = [r for r in runs if r["workers"] == n]
        rows.append({"workers": n, "trials": mine[0]["trials"], "processes": max(r["processes"] for r in mine),
                     **{k: C.median([r[k] for r in mine]) for k in keys}})
    for r in rows:
        r["speedup"] = r["per_hour"] / rows[0]["per_hour"]
        r["steady_x"] = r["steady_per_hour"] / rows[0]["steady_per_hour"]
    print(f"cpus={info['cpus']} commit={info['commit']} dataset={args.dataset} sets={args.overrides} "
          f"tracking={args.tracking_uri or 'default (SQLite)'} repeats={args.repeats} (medians)")
    C.table(rows, [("workers", "workers"), ("trials", "trials"), ("processes", "procs"), ("wall_s", "wall s"),
                   ("start_s", "start s"), ("span_s", "span s"), ("end_s", "end s"), ("trial_s", "trial s"),
                   ("fit_s", "fit s"), ("between_s", "between s"), ("per_hour", "trials/h"), ("speedup", "speedup"),
                   ("steady_per_hour", "steady/h"), ("steady_x", "steady x"), ("load1", "load1")])
    print(f"\nload1 at end: {C.load1()}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "settings": vars(args) | {"json": str(args.json)},
                                         "rows": rows, "runs": runs}, indent=2, default=str))


if __name__ == "__main__":
    main()
