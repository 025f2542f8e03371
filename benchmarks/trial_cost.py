"""Where a trial's time goes: its epochs against its fixed cost, per backend (issue 17).

    python benchmarks/trial_cost.py                  # digits + mnist1d, TensorFlow + JAX, 12 configurations: ~8 min on 2 cores
    python benchmarks/trial_cost.py --quick          # digits only, 3 configurations: ~1.5 min
    python benchmarks/trial_cost.py --datasets digits --configs 12 --backends tensorflow jax --json tc.json

For every (dataset, backend) one child process (``KERAS_BACKEND`` set in its environment before Keras
is imported) runs a real study of ``--configs`` trials of ``search_spaces/default.yaml``: random sampler
with seed 0, so both backends train the same configurations, no pruner (every trial runs until its own
early stopping), storage and MLflow tracking in SQLite in a temporary folder, as ``python -m tuner
study`` stores them. Timing wrappers (wall and CPU time of this process, all threads: CPU time is much
less disturbed by other work on a shared machine) (tuner's code is not changed) split every trial into:

- ``build``: seeding and ``build_model`` (``tuner.training._train._build``);
- ``compile``: ``model.compile`` with the optimizer (``_compile``);
- ``epoch 1``: the first epoch's training (its trace and, under JAX, XLA compilation), from the first
  callback's ``on_epoch_begin`` to the honest-gap callback's ``on_epoch_end``;
- ``later epochs``: the same for every other epoch;
- ``gap``: the honest-gap pass (``HonestGap.on_epoch_end``, all epochs; its first call traces predict);
- ``optuna``: ``Trial.report``, ``should_prune``, ``set_user_attr`` inside the objective, and ``ask``/``tell``
  outside it (Optuna's trial duration minus the objective's);
- ``mlflow``: the trial's child run (start, parameters, per-epoch metrics, end);
- ``end``: ``keras.backend.clear_session`` after the trial (it collects garbage; before issue 17 tuner then
  collected a second time);
- ``other``: the rest (data scaling and targets, the fit's own start and end, callbacks, the verdict).

``epochs alone`` is what the trial's epochs would cost without any fixed cost: the number of epochs run
times the median of its later epochs (steady state). ``trial / epochs`` is the whole trial over that
(the issue's target: at most 1.5 under the default backend). ``trial/(epochs+gap)`` counts each epoch with its
honest-gap pass, as Keras counts an epoch with its validation pass: what is left over is the trial's fixed cost. ``study s`` is the child's whole
``Study.run`` (including the study's own start and end). ``floor s`` is that study with every trial cut to its
epochs alone and their honest-gap passes (``study s`` - the trials + their epochs and gap): what no cut of a
trial's fixed cost can go below while the epochs and the gap stay. Figures are medians over the configurations;
shares are medians of each trial's share. Wall times are those of a machine that may be shared: the
script prints the load average next to them.

``--program-cache 0 4`` runs every (dataset, backend) once per value of ``TUNER_PROGRAM_CACHE`` (issue 24): 0
builds a new model, so new traced or compiled steps, for every trial (tuner before issue 24); 4 lets trials of
one program share a model. ``programs`` is what the backend traced or compiled in the study (the trials'
``programs_compiled``). ``--space`` picks the space (default ``default``; ``image_default`` is the default study's
on digits).

``--keras-gap-loss`` computes the gap's loss with the backend's eager op, as before issue 17 (for a
before/after comparison). ``--jax-cache DIR`` sets ``TUNER_JAX_CACHE`` for the JAX children (``none`` turns the persistent compile
cache off); by default each child gets an empty cache folder, so only reuse inside the study counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import _common as C

PARTS = ("build", "compile", "epoch 1", "later epochs", "gap", "optuna", "mlflow", "end", "other")


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Run one study in this process and return its per-trial parts."""
    keras = C.quiet_keras()
    import optuna

    import tuner.training as training_pkg
    from tuner.study import Study, StudySettings
    from tuner.study import _objective as objective_module
    from tuner.tracking import _mlflow as mlflow_module
    from tuner.training import _gap as gap_module
    from tuner.training import _train as train_module

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.keras_gap_loss:
        gap_module.numpy_loss = lambda loss_fn: None
    state: dict[str, Any] = {"depth": 0}
    parts: dict[str, float] = defaultdict(float)
    parts_cpu: dict[str, float] = defaultdict(float)
    per_trial: dict[int, dict[str, Any]] = {}

    def wrap(owner: Any, attr: str, label: str) -> None:
        C.time_calls(owner, attr, label, parts, parts_cpu, nest=state)

    wrap(train_module, "_build", "build")
    wrap(train_module, "_compile", "compile")
    wrap(gap_module.HonestGap, "on_epoch_end", "gap")
    for name in ("report", "should_prune", "set_user_attr"):
        wrap(optuna.trial.Trial, name, "optuna")
    for name in ("start_trial", "end_trial", "log_metrics"):
        wrap(mlflow_module.MlflowTracker, name, "mlflow")
    wrap(keras.backend, "clear_session", "end")

    epochs: list[float] = []
    epochs_cpu: list[float] = []
    original_end = gap_module.HonestGap.on_epoch_end

    def on_epoch_begin(self: Any, epoch: int, logs: dict | None = None) -> None:
        state["epoch_t"], state["epoch_c"] = time.perf_counter(), time.process_time()

    def on_epoch_end(self: Any, epoch: int, logs: dict | None = None) -> None:
        epochs.append(time.perf_counter() - state["epoch_t"])
        epochs_cpu.append(time.process_time() - state["epoch_c"])
        original_end(self, epoch, logs)

    gap_module.HonestGap.on_epoch_begin = on_epoch_begin
    gap_module.HonestGap.on_epoch_end = on_epoch_end  # wraps the timed one: the gap is counted after the epoch

    original_call = objective_module.Objective.__call__

    def objective(self: Any, trial: Any) -> Any:
        for x in (parts, parts_cpu, epochs, epochs_cpu):
            x.clear()
        t, c = time.perf_counter(), time.process_time()
        try:
            return original_call(self, trial)
        finally:
            per_trial[trial.number] = {"objective": time.perf_counter() - t, "objective_cpu": time.process_time() - c,
                                       "parts": dict(parts), "parts_cpu": dict(parts_cpu), "epochs": list(epochs),
                                       "epochs_cpu": list(epochs_cpu)}

    objective_module.Objective.__call__ = objective
    original_train = training_pkg.train_model

    def train_model(*a: Any, **k: Any) -> Any:
        result = original_train(*a, **k)
        state["val_accuracy"] = result.metrics.get("val_accuracy")
        return result

    training_pkg.train_model = train_model

    tmp = Path(tempfile.mkdtemp(prefix="tuner-trial-cost-"))
    os.chdir(tmp)
    settings = StudySettings(study_name="trial-cost", n_trials=args.configs, sampler="random", pruner="none", seed=0,
                             storage=f"sqlite:///{tmp}/optuna.db",
                             tracking_uri="none" if args.no_tracking else f"sqlite:///{tmp}/mlflow.db")
    study = Study(args.space, args.dataset, settings, workers=1)  # every trial in this process, where it is timed
    for params in json.loads(Path(args.configs_from).read_text()) if args.configs_from else []:
        study.enqueue(params)  # these configurations instead of the sampler's
    start = time.perf_counter()
    study.run()
    study_s = time.perf_counter() - start
    trials = []
    for t in study.optuna_study.trials:
        if t.state != optuna.trial.TrialState.COMPLETE or t.number not in per_trial:
            continue
        rec = per_trial[t.number]
        whole = (t.datetime_complete - t.datetime_start).total_seconds()
        outside = max(0.0, whole - rec["objective"])  # Optuna's ask and tell (counted as CPU time too)
        out: dict[str, Any] = {"number": t.number, "epochs_run": len(rec["epochs"])}
        for clock, total, suffix in (("wall", whole, ""), ("cpu", rec["objective_cpu"] + outside, "_cpu")):
            ep = rec["epochs" + suffix]
            split = dict(rec["parts" + suffix])
            split["epoch 1"] = ep[0] if ep else 0.0
            split["later epochs"] = sum(ep[1:])
            split["optuna"] = split.get("optuna", 0.0) + outside
            split["other"] = total - sum(split.get(p, 0.0) for p in PARTS if p != "other")
            out[clock] = {"whole": total, "epochs_alone": len(ep) * C.median(ep[1:] or ep), "parts": split}
        trials.append({**out,
                       "value": t.value, "params": dict(t.params)})
    programs = sum(int(t.user_attrs.get("programs_compiled") or 0) for t in study.optuna_study.trials)
    return {"backend": keras.backend.backend(), "dataset": args.dataset, "study_s": study_s, "trials": trials,
            "load1": C.load1(), "programs": programs, "cache": os.environ.get("TUNER_PROGRAM_CACHE", "4")}


def summarize(run: dict[str, Any], clock: str = "wall") -> dict[str, Any]:
    trials = [{**t, **t[clock]} for t in run["trials"]]
    row: dict[str, Any] = {"dataset": run["dataset"], "backend": run["backend"], "trials": len(trials),
                           "study_s": run["study_s"], "load1": run["load1"], "cache": run.get("cache"),
                           "programs": run.get("programs")}
    row["trial_s"] = C.median([t["whole"] for t in trials])
    row["epochs_s"] = C.median([t["epochs_alone"] for t in trials])
    row["ratio"] = C.median([t["whole"] / t["epochs_alone"] for t in trials if t["epochs_alone"] > 0])
    row["ratio_cpu"] = C.median([t["cpu"]["whole"] / t["cpu"]["epochs_alone"] for t in trials
                                 if t["cpu"]["epochs_alone"] > 0])
    # an epoch as Keras counts one with its validation pass: the epochs with the honest gap's passes
    row["ratio_gap"] = C.median([t["whole"] / (t["epochs_alone"] + t["parts"].get("gap", 0.0)) for t in trials
                                 if t["epochs_alone"] > 0])
    row["epoch_ms"] = 1000 * C.median([t["epochs_alone"] / t["epochs_run"] for t in trials if t["epochs_run"]])
    row["epochs_run"] = C.median([t["epochs_run"] for t in trials])
    # the study's floor: every trial cut to its epochs and their honest-gap passes, all else kept
    row["sum_trials_s"] = sum(t["whole"] for t in trials)
    row["sum_epochs_gap_s"] = sum(t["epochs_alone"] + t["parts"].get("gap", 0.0) for t in trials)
    row["floor_s"] = run["study_s"] - row["sum_trials_s"] + row["sum_epochs_gap_s"]
    for p in PARTS:
        row[p] = C.median([t["parts"].get(p, 0.0) for t in trials])
        row[f"{p} %"] = 100 * C.median([t["parts"].get(p, 0.0) / t["whole"] for t in trials])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--configs", type=int, default=12, help="random configurations of the default space")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved repeats of every (dataset, backend)")
    parser.add_argument("--no-tracking", action="store_true", help="tracking_uri='none' (no MLflow part)")
    parser.add_argument("--jax-cache", default=None, help="TUNER_JAX_CACHE for the children ('none': off)")
    parser.add_argument("--keras-gap-loss", action="store_true",
                        help="the gap's loss by the backend's eager op, as before issue 17 (not its NumPy twin)")
    parser.add_argument("--quick", action="store_true", help="digits only, 3 configurations")
    parser.add_argument("--space", default="default", help="the search space (a shipped name or a file)")
    parser.add_argument("--program-cache", nargs="+", default=["4"],
                        help="TUNER_PROGRAM_CACHE values to compare (0: a new model every trial)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--configs-from", help="a JSON list of parameter sets to train (e.g. against_commit.py's "
                        "configurations) instead of the random sampler's")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return
    if args.quick:
        args.datasets, args.configs = ["digits"], 3
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        for dataset in args.datasets:
            combos = [(b, c) for b in args.backends for c in args.program_cache]
            order = combos if rep % 2 == 0 else combos[::-1]
            for backend, program_cache in order:
                env = dict(os.environ, KERAS_BACKEND=backend, TUNER_PROGRAM_CACHE=program_cache)
                with tempfile.TemporaryDirectory(prefix="tuner-jax-cache-") as cache:
                    if args.jax_cache is not None:
                        env["TUNER_JAX_CACHE"] = args.jax_cache
                    else:
                        env["TUNER_JAX_CACHE"] = cache
                    cmd = [sys.executable, __file__, "--child", "--dataset", dataset, "--configs", str(args.configs),
                           "--space", args.space]
                    cmd += ["--configs-from", args.configs_from] if args.configs_from else []
                    cmd += ["--no-tracking"] * args.no_tracking + ["--keras-gap-loss"] * args.keras_gap_loss
                    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
                if out.returncode or not lines:
                    raise SystemExit(f"{backend}/{dataset} failed ({out.returncode}):\n{out.stderr[-3000:]}")
                run = json.loads(lines[-1][len("RESULT "):])
                runs.append(run)
                row = summarize(run)
                print(f"# {dataset} {backend} cache={program_cache}: trial {row['trial_s']:.2f} s, epochs alone "
                      f"{row['epochs_s']:.2f} s, x{row['ratio']:.2f}, study {row['study_s']:.1f} s, "
                      f"{row['programs']} programs (load {run['load1']})", flush=True)
    rows = [summarize(r) for r in runs]
    print(f"\ncpus={os.cpu_count()} commit={C.commit()} configs={args.configs} ({args.space} space, random sampler seed 0, "
          f"no pruner) tracking={'off' if args.no_tracking else 'MLflow SQLite'} load1 now {C.load1()}")
    C.table(rows, [("dataset", "dataset"), ("backend", "backend"), ("cache", "program cache"),
                   ("programs", "programs"), ("trial_s", "trial s"),
                   ("epochs_s", "epochs alone s"), ("ratio", "trial/epochs"), ("ratio_cpu", "same, CPU time"),
                   ("ratio_gap", "trial/(epochs+gap)"), ("epoch_ms", "ms/epoch"), ("epochs_run", "epochs"), ("study_s", "study s"), ("load1", "load1")])
    print("\nthe study if every trial were its epochs and their honest-gap passes alone (its start and end kept)")
    C.table(rows, [("dataset", "dataset"), ("backend", "backend"), ("cache", "program cache"), ("study_s", "study s"),
                   ("sum_trials_s", "trials s"), ("sum_epochs_gap_s", "their epochs+gap s"), ("floor_s", "floor s")])
    for clock in ("wall", "cpu"):
        print(f"\nmedian seconds per trial by part (and median share of the trial, %), {clock} time")
        C.table([summarize(r, clock) for r in runs], [("dataset", "dataset"), ("backend", "backend"), ("cache", "cache")]
                + [c for p in PARTS for c in ((p, p), (f"{p} %", "%"))])
    print("\nobjective (val_accuracy) of every configuration, by run (the same configuration on every run)")
    values: dict[tuple[str, int], dict[str, Any]] = defaultdict(dict)
    for i, r in enumerate(runs):
        for t in r["trials"]:
            values[(r["dataset"], t["number"])][f"{r['backend']}/{r.get('cache')}#{i}"] = t["value"]
    keys = sorted({k for v in values.values() for k in v}, key=lambda k: int(k.split("#")[1]))
    C.table([{"dataset": d, "trial": n, **v} for (d, n), v in sorted(values.items())],
            [("dataset", "dataset"), ("trial", "trial")] + [(k, k) for k in keys])
    if args.json:
        args.json.write_text(json.dumps({"machine": C.machine(), "settings": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows, "runs": runs}, indent=2, default=str))


if __name__ == "__main__":
    main()
