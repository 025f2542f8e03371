"""Does memory grow over many trials, and does worker recycling bound it? (issue 6.5)

    python benchmarks/memory.py            # 100 trials in one process, 100 with recycled workers, 20 loop
                                           # trials: ~15 min on 2 idle cores, ~26 min at load 4
    python benchmarks/memory.py --quick    # 30 trials of 1 epoch, workers recycled after 10: ~3.5 min

Phase 0 (``--loop-trials``, 20 by default; run last in this process) calls ``tuner.train_model`` in a plain
loop on models drawn at random from the same space, with the study's clean-up after each
(``clear_session``, ``gc.collect``) but no ``Study`` and no Optuna storage: what grows there grows in
Keras and its backend, not in tuner's engine. (Its models are drawn at random, the study's by TPE, which
settles on other models; the growth per model depends on the model, so compare slopes with that in mind.)
Phase 1 runs a study of ``search_spaces/default.yaml`` on digits with ``epochs: 2``, ``patience: 0`` and
tracking off, in this process (``Study.run``), recording the resident memory (``tuner.study.rss_mb``)
after each trial, i.e. after tuner's own clean-up (``clear_session``, ``gc.collect``). Phase 2 runs the
same budget as a fresh study with ``tuner.study.run_workers(study, 1, recycle_after=25)``: the worker
processes are sampled from here (``VmRSS`` in ``/proc/<pid>/status``, every ``--sample-s`` seconds), and
each trial is matched to its worker (the ``worker_pid`` user attribute) and to the last sample taken
before it completed (``rss end``) and the largest sample while it ran (``rss peak``).

Printed: every 10th trial plus the first and last, the slope (MiB per trial, least squares, over all
trials and over the second half), and per worker process its trials, first, last and peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _common as C


def slope(ys: list[float]) -> float:
    """Least-squares slope of ``ys`` against 0, 1, 2, ... (MiB per trial)."""
    n = len(ys)
    if n < 2:
        return float("nan")
    mx, my = (n - 1) / 2, sum(ys) / n
    return sum((i - mx) * (y - my) for i, y in enumerate(ys)) / sum((i - mx) ** 2 for i in range(n))


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux ``/proc``)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(x) for x in f.read().split())
        return out
    except OSError:
        pass
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return out


def is_worker(pid: int) -> bool:
    """Whether ``pid`` runs ``tuner worker`` yet: between fork and exec a child is a copy of this process,
    and its RSS counts the pages it shares with it."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"worker" in f.read().split(b"\0")
    except OSError:
        return False


def vm_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class Sampler(threading.Thread):
    """Samples the RSS of this process's children every ``interval`` seconds: ``[(datetime, pid, MiB)]``."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[dt.datetime, int, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._stop_event.is_set():
            now = dt.datetime.now()  # Optuna's trial datetimes are naive local times too
            for pid in children(me):
                if not is_worker(pid):
                    continue
                rss = vm_rss_mb(pid)
                if rss is not None and rss > 0:
                    self.samples.append((now, pid, rss))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def series_rows(series: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Every 10th trial plus the first and the last."""
    keep = {0, len(series) - 1} | {i for i in range(len(series)) if (i + 1) % 10 == 0}
    return [series[i] for i in sorted(keep) if 0 <= i < len(series)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--recycle-after", type=int, default=25)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--space", default=str(C.ROOT / "search_spaces" / "default.yaml"))
    parser.add_argument("--sample-s", type=float, default=0.1, help="seconds between RSS samples of the workers")
    parser.add_argument("--loop-trials", type=int, default=20,
                        help="phase 0: train_model calls in a plain loop, to tell Keras's growth from tuner's; 0 skips")
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--quick", action="store_true",
                        help="30 trials of 1 epoch, workers recycled after 10, 12 loop trials")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.recycle_after, args.epochs, args.loop_trials = 30, 10, 1, 12
    if args.json:
        args.json = args.json.resolve()

    C.quiet_keras()
    from tuner.study import Study, StudySettings, rss_mb
    from tuner.study import run_workers

    info = C.machine()
    tmp = Path(tempfile.mkdtemp(prefix="tuner-memory-"))
    os.chdir(tmp)  # nothing lands in the repository
    fixed = {"epochs": args.epochs, "patience": 0}
    out: dict[str, Any] = {"machine": info, "settings": vars(args) | {"json": str(args.json)}}
    print(f"commit={info['commit']} cpus={info['cpus']} dataset={args.dataset} epochs={args.epochs} tracking off; "
          f"rss at start (imports done): {rss_mb():.0f} MiB; load1 {C.load1()}", flush=True)

    # -- phase 1: one process ----------------------------------------------------------------------
    if not args.skip_in_process:
        series: list[dict[str, Any]] = []
        t0 = time.perf_counter()

        def on_trial(report: Any) -> None:
            series.append({"trial": len(series) + 1, "rss": rss_mb(), "state": report.state,
                           "t_s": time.perf_counter() - t0, "load1": C.load1()})

        settings = StudySettings(study_name="memory-in-process", n_trials=args.trials,
                                 storage=f"sqlite:///{tmp}/in-process.db", tracking_uri="none")
        Study(args.space, args.dataset, settings, fixed=fixed).run(on_trial=on_trial)
        wall = time.perf_counter() - t0
        rss = [r["rss"] for r in series]
        half = rss[len(rss) // 2:]
        out["in_process"] = {"series": series, "wall_s": wall, "slope_all": slope(rss),
                             "slope_second_half": slope(half),
                             "first": rss[0], "last": rss[-1], "max": max(rss)}
        print(f"\nphase 1: {args.trials} trials in one process ({wall:.0f} s), RSS after each trial")
        C.table(series_rows(series, "rss"), [("trial", "trial"), ("rss", "rss MiB"), ("state", "state"),
                                             ("t_s", "t s"), ("load1", "load1")])
        print(f"first {rss[0]:.0f} MiB, last {rss[-1]:.0f} MiB, max {max(rss):.0f} MiB; slope {slope(rss):.2f} "
              f"MiB/trial over all, {slope(half):.2f} MiB/trial over trials {len(rss) - len(half) + 1}-{len(rss)}",
              flush=True)

    # -- phase 2: recycled workers ---------------------------------------------------------------
    if not args.skip_workers:
        settings = StudySettings(study_name="memory-workers", n_trials=args.trials,
                                 storage=f"sqlite:///{tmp}/workers.db", tracking_uri="none")
        study = Study(args.space, args.dataset, settings, fixed=fixed)
        sampler = Sampler(args.sample_s)
        sampler.start()
        t0 = time.perf_counter()
        try:
            run_workers(study, 1, recycle_after=args.recycle_after, verbosity=-1, in_process=False)
        finally:
            sampler.stop()
        wall = time.perf_counter() - t0
        trials = sorted((t for t in study.optuna_study.get_trials(deepcopy=False) if t.state.is_finished()),
                        key=lambda t: t.datetime_complete)
        by_pid: dict[int, list[tuple[dt.datetime, float]]] = {}
        for when, pid, rss in sampler.samples:
            by_pid.setdefault(pid, []).append((when, rss))
        wseries: list[dict[str, Any]] = []
        for i, t in enumerate(trials):
            pid = t.user_attrs.get("worker_pid")
            samples = by_pid.get(pid, [])
            during = [r for w, r in samples if t.datetime_start <= w <= t.datetime_complete]
            before = [r for w, r in samples if w <= t.datetime_complete]
            wseries.append({"trial": i + 1, "pid": pid, "rss": before[-1] if before else None,
                            "peak": max(during) if during else None, "state": t.state.name.lower()})
        workers = []
        for n, (pid, samples) in enumerate(sorted(by_pid.items(), key=lambda kv: kv[1][0][0])):
            ran = [r for r in wseries if r["pid"] == pid]
            workers.append({"worker": n + 1, "pid": pid, "trials": len(ran),
                            "rss_first_trial": ran[0]["rss"] if ran else None,
                            "rss_last_trial": ran[-1]["rss"] if ran else None,
                            "peak": max(r for _, r in samples),
                            "alive_s": (samples[-1][0] - samples[0][0]).total_seconds()})
        ends = [r["rss"] for r in wseries if r["rss"] is not None]
        out["workers"] = {"series": wseries, "processes": workers, "wall_s": wall, "max": max(ends) if ends else None,
                          "peak": max((w["peak"] for w in workers), default=None)}
        print(f"\nphase 2: {args.trials} trials with run_workers(study, 1, recycle_after={args.recycle_after}) "
              f"({wall:.0f} s), worker RSS at the end of each trial (sampled every {args.sample_s} s)")
        C.table(series_rows(wseries, "rss"), [("trial", "trial"), ("pid", "worker pid"), ("rss", "rss end MiB"),
                                              ("peak", "rss peak MiB"), ("state", "state")])
        print("\nper worker process")
        C.table(workers, [("worker", "worker"), ("pid", "pid"), ("trials", "trials"),
                          ("rss_first_trial", "rss after 1st trial"), ("rss_last_trial", "rss after last trial"),
                          ("peak", "peak MiB"), ("alive_s", "alive s")])
        for w in workers:
            ys = [r["rss"] for r in wseries if r["pid"] == w["pid"] and r["rss"] is not None]
            w["slope"] = slope(ys)
        print("slope within each worker (MiB/trial): " + ", ".join(f"{w['slope']:.2f}" for w in workers))
        if ends:
            print(f"workers: max RSS at a trial's end {max(ends):.0f} MiB, peak sample "
                  f"{out['workers']['peak']:.0f} MiB")
    # -- phase 0 (run last, so that its growth does not raise phase 1's start) ----------------------
    if args.loop_trials:
        import gc

        import keras
        import optuna

        from tuner.data import load_dataset
        from tuner.space import load_space
        from tuner.training import train_model

        space = load_space(args.space).with_fixed(fixed)
        dataset = load_dataset(args.dataset)
        sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        loop: list[dict[str, Any]] = []
        t0 = time.perf_counter()
        for i in range(args.loop_trials):
            params = space.suggest(sampler.ask())
            result = train_model(params, dataset, seed=i)
            result.model = None
            del result
            keras.backend.clear_session()  # the study's own clean-up after every trial
            gc.collect()
            loop.append({"trial": i + 1, "rss": rss_mb(), "t_s": time.perf_counter() - t0, "load1": C.load1()})
        rss = [r["rss"] for r in loop]
        out["loop"] = {"series": loop, "slope_all": slope(rss), "slope_second_half": slope(rss[len(rss) // 2:]),
                       "first": rss[0], "last": rss[-1]}
        print(f"\nphase 0: train_model {args.loop_trials} times in a loop (no Study, no Optuna storage; same space, "
              f"random sampler), RSS after each (after clear_session and gc.collect)")
        C.table(series_rows(loop, "rss"), [("trial", "trial"), ("rss", "rss MiB"), ("t_s", "t s"), ("load1", "load1")])
        print(f"first {rss[0]:.0f} MiB, last {rss[-1]:.0f} MiB; slope {slope(rss):.2f} MiB/trial over all, "
              f"{slope(rss[len(rss) // 2:]):.2f} over the second half", flush=True)

    if "in_process" in out and "workers" in out and out["workers"]["max"]:
        print(f"\nin one process RSS ends at {out['in_process']['last']:.0f} MiB after {args.trials} trials; "
              f"recycled workers never exceed {out['workers']['peak']:.0f} MiB")
    print(f"load1 at end: {C.load1()}")
    os.chdir(C.ROOT)
    shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
