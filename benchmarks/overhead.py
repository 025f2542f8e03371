"""What tuner's engine costs: one fixed configuration, bare ``model.fit`` vs a one-trial study (issue 8.1).

    python benchmarks/overhead.py             # digits, 2x64 MLP, 25 epochs, 7 repeats: ~3-5 min on 2 cores
    python benchmarks/overhead.py --quick     # 10 epochs, 3 repeats: ~1.5 min

Sides, run alternately in one process (the order rotates every repeat) after one warm-up round that
creates the Optuna and MLflow stores and is dropped:

- ``bare``: seed, ``build_model``, ``compile`` (as ``train_model`` does, with the same
  ``steps_per_execution``: the knob's default, 32), ``model.fit`` on the training split fed as
  ``train_model`` feeds it (``tuner.training._train._fit_input``: a ``tf.data`` pipeline under TensorFlow);
- ``bare+val``: the same with ``validation_data=`` the validation split (Keras's own per-epoch validation
  score, which any tuning loop needs for early stopping and pruning);
- ``bare spe=1``: ``bare`` compiled with Keras's default ``steps_per_execution=1`` and fed the NumPy
  arrays, as most hand-written loops are (what tuner's defaults buy);
- ``tuner``: ``Study(space with every value fixed, digits, StudySettings(n_trials=1, storage=SQLite in a
  temporary folder, tracking_uri=SQLite in the same folder))`` then ``run()`` - tracking and the gap on;
- ``tuner-notrack``: the same with ``tracking_uri="none"`` (the gap stays on: the engine has no switch to
  turn it off).

``trial s`` is the whole trial: for bare sides build + compile + fit; for tuner sides the Optuna trial's
start to completion (sampling, user attributes, MLflow child run, build, compile, fit with the gap,
pruning and stop callbacks, records, ``clear_session``, which collects garbage). ``study s`` adds the study
around it (``Study()`` and ``run()``: creating the study in the existing store, the MLflow parent run,
scoring the best model on the test split and logging it to MLflow). Process start-up, imports, loading
the dataset (passed in as an object) and creating the stores are left out. The breakdown table times
tuner's parts in the same runs (timing wrappers; tuner's code is not changed).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import _common as C


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--units", type=int, default=64, help="width of each of the 2 hidden layers")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--quick", action="store_true", help="10 epochs, 3 repeats")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats = 10, 3
    if args.json:
        args.json = args.json.resolve()

    keras = C.quiet_keras()
    import numpy as np
    import optuna

    from tuner.data import load_dataset
    from tuner.model import build_model, build_optimizer, resolve_loss
    from tuner.study import _best as best_module
    from tuner.study import _objective as objective_module
    from tuner.study import _record as record_module
    from tuner.tracking import _epochs as epochs_module
    from tuner.tracking import _mlflow as tracking_module
    from tuner.training import _gap as gap_module
    from tuner.training import _train as training_module
    from tuner.space import SearchSpace
    from tuner.study import Study, StudySettings
    from tuner.training._train import _fit_input, _targets, prepare_data

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    fixed = {"n_layers": 2, "units": args.units, "activation": "relu", "dropout": 0.1, "optimizer": "adam",
             "learning_rate": 1.0e-3, "batch_size": args.batch_size, "epochs": args.epochs, "patience": 0,
             "scaling": "standard"}
    space = SearchSpace.from_dict({"name": "fixed", "parameters": fixed})
    dataset = load_dataset(args.dataset)
    params = space.suggest(optuna.trial.FixedTrial({}))  # every knob resolved, as a trial sees them

    # -- timing wrappers around tuner's parts (this process only) ---------------------------------
    spent: dict[str, float] = defaultdict(float)
    spent_cpu: dict[str, float] = defaultdict(float)

    def wrap(owner: Any, attr: str, label: str) -> None:
        C.time_calls(owner, attr, label, spent, spent_cpu)

    wrap(objective_module.Objective, "__call__", "(the whole objective)")

    wrap(training_module, "train_model", "train_model: build+compile+fit (holds gap, report, ...)")
    wrap(gap_module.HonestGap, "on_epoch_end", "gap callback (all epochs)")
    wrap(tracking_module.MlflowTracker, "__init__", "MLflow: tracker/experiment")
    wrap(tracking_module.MlflowTracker, "start_study", "MLflow: parent run start")
    wrap(tracking_module.MlflowTracker, "end_study", "MLflow: parent run end")
    wrap(tracking_module.MlflowTracker, "start_trial", "MLflow: child run start + params")
    wrap(tracking_module.MlflowTracker, "end_trial", "MLflow: child run end + metrics")
    wrap(epochs_module.EpochLogger, "flush", "MLflow: epoch metrics")
    wrap(tracking_module.MlflowTracker, "log_model", "MLflow: log best model")
    wrap(best_module.BestModel, "keep", "save best model to tmp (.keras)")
    wrap(best_module.BestModel, "_score_and_log", "finish: load best, log, test score")
    wrap(record_module.TrialRecord, "write_result", "Optuna: trial user attrs")
    wrap(objective_module, "_device", "device lookup")
    wrap(optuna.trial.Trial, "report", "Optuna: report (every epoch)")
    wrap(optuna.trial.Trial, "should_prune", "Optuna: should_prune (every epoch)")
    wrap(keras.backend, "clear_session", "clear_session")

    data = prepare_data(dataset, params)
    loss = resolve_loss(params, dataset.task)
    y_train = _targets(data.y_train, dataset.task, loss, data.n_classes)
    y_val = _targets(data.y_val, dataset.task, loss, data.n_classes)
    steps = max(1, int(np.ceil(len(data.x_train) / args.batch_size)))

    spe = int(params["steps_per_execution"])

    def bare(validation: bool, steps_per_execution: int = spe, pipeline: str = "auto") -> dict[str, float]:
        t, c = time.perf_counter(), time.process_time()
        keras.utils.set_random_seed(0)
        model = build_model(params, data.input_shape, task=dataset.task, n_outputs=data.n_outputs)
        model.compile(optimizer=build_optimizer(params, steps_per_epoch=steps, epochs=args.epochs), loss=loss,
                      metrics=["accuracy"], jit_compile=keras.backend.backend() == "jax",
                      steps_per_execution=steps_per_execution)
        model.fit(**_fit_input(data.x_train, y_train, args.batch_size, 0, pipeline), epochs=args.epochs, verbose=0,
                  validation_data=(data.x_val, y_val) if validation else None)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        return {"trial_s": wall, "study_s": wall, "trial_cpu": cpu, "study_cpu": cpu}

    tmp = Path(tempfile.mkdtemp(prefix="tuner-overhead-"))
    os.chdir(tmp)  # nothing lands in the repository
    storage = f"sqlite:///{tmp}/optuna.db"
    tracking = f"sqlite:///{tmp}/mlflow.db"
    counter = iter(range(10**6))

    def tuner(tracking_uri: str) -> dict[str, float]:
        name = f"fixed-{next(counter)}"
        t, c = time.perf_counter(), time.process_time()
        study = Study(space, dataset, StudySettings(study_name=name, n_trials=1, storage=storage,
                                                    tracking_uri=tracking_uri))
        study.run()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        trial = study.optuna_study.trials[0]
        if trial.state != optuna.trial.TrialState.COMPLETE:
            raise SystemExit(f"the trial did not complete: {trial.state} {trial.user_attrs.get('fail_reason')}")
        return {"trial_s": (trial.datetime_complete - trial.datetime_start).total_seconds(), "study_s": wall,
                "trial_cpu": spent_cpu["(the whole objective)"], "study_cpu": cpu}

    sides = {"bare": lambda: bare(False), "bare+val": lambda: bare(True), "bare spe=1": lambda: bare(False, 1, "arrays"),
             "tuner": lambda: tuner(tracking), "tuner-notrack": lambda: tuner("none")}
    results: dict[str, list[dict[str, float]]] = {k: [] for k in sides}
    breakdown: dict[str, list[dict[str, float]]] = {k: [] for k in sides}
    names = list(sides)
    for rep in range(args.repeats + 1):  # round 0 creates the stores, traces, imports lazily: dropped
        order = names[rep % len(names):] + names[:rep % len(names)]
        for side in order:
            gc.collect()
            spent.clear()
            spent_cpu.clear()
            out = sides[side]()
            if side.startswith("bare"):
                keras.backend.clear_session()
            if rep:
                out["load1"] = C.load1()
                results[side].append(out)
                breakdown[side].append(dict(spent))
        if rep:
            last = {s: results[s][-1] for s in names}
            figures = ", ".join(f"{s} {last[s]['trial_s']:.2f}/{last[s]['study_s']:.2f} s" for s in names)
            print(f"# repeat {rep}: {figures} (load {C.load1()})", flush=True)

    base = C.median([r["trial_s"] for r in results["bare"]])
    base_cpu = C.median([r["trial_cpu"] for r in results["bare"]])
    base_val = C.median([r["trial_s"] for r in results["bare+val"]])
    rows = []
    for side in names:
        trial_s = C.median([r["trial_s"] for r in results[side]])
        study_s = C.median([r["study_s"] for r in results[side]])
        gap_s = C.median([b.get("gap callback (all epochs)", 0.0) for b in breakdown[side]])
        # per-repeat ratios against the bare run of the same repeat (paired), then the median
        paired = C.median([r["trial_s"] / b["trial_s"] for r, b in zip(results[side], results["bare"])])
        rows.append({"side": side, "trial_s": trial_s, "study_s": study_s, "ratio_trial": trial_s / base,
                     "ratio_paired": paired, "ratio_vs_val": trial_s / base_val,
                     "ratio_study": study_s / base, "no_gap_ratio": (trial_s - gap_s) / base,
                     "trial_cpu": C.median([r["trial_cpu"] for r in results[side]]),
                     "ratio_cpu": C.median([r["trial_cpu"] for r in results[side]]) / base_cpu,
                     "ratio_cpu_paired": C.median([r["trial_cpu"] / b["trial_cpu"]
                                                   for r, b in zip(results[side], results["bare"])]),
                     "study_cpu": C.median([r["study_cpu"] for r in results[side]]),
                     "load1": C.median([r["load1"] for r in results[side]])})
    tuner_sides = [s for s in names if s.startswith("tuner")]
    parts = sorted({k for side in tuner_sides for b in breakdown[side] for k in b})
    part_rows = [{"part": p, **{side: C.median([b.get(p, 0.0) for b in breakdown[side]]) for side in tuner_sides}}
                 for p in parts]

    print()
    print(f"backend={keras.backend.backend()} cpus={os.cpu_count()} commit={C.commit()} dataset={args.dataset} "
          f"model=2x{args.units} dropout 0.1 adam batch={args.batch_size} epochs={args.epochs} patience=0 "
          f"steps_per_execution={spe} "
          f"repeats={args.repeats} (medians)")
    C.table(rows, [("side", "side"), ("trial_s", "trial s"), ("ratio_trial", "/bare"),
                   ("ratio_paired", "/bare paired"), ("ratio_vs_val", "/bare+val"),
                   ("no_gap_ratio", "/bare w/o gap"), ("study_s", "study s"), ("ratio_study", "study/bare"),
                   ("load1", "load1")])
    print("\n'/bare w/o gap': (trial s - time inside HonestGap.on_epoch_end) / bare: the engine without the gap")
    print("\nthe same in CPU time of this process (all threads; tuner sides: the objective function)")
    C.table(rows, [("side", "side"), ("trial_cpu", "trial cpu s"), ("ratio_cpu", "/bare"),
                   ("ratio_cpu_paired", "/bare paired"), ("study_cpu", "study cpu s"), ("load1", "load1")])
    print("\ntuner's parts, seconds per study (median)")
    C.table(part_rows, [("part", "part")] + [(side, side) for side in tuner_sides])
    print("(clear_session includes its gc.collect: since issue 17 tuner does not collect a second time)")
    print(f"\nload1 at end: {C.load1()}")
    if args.json:
        args.json.write_text(json.dumps({"machine": C.machine(), "settings": vars(args) | {"json": str(args.json)},
                                         "rows": rows, "parts": part_rows, "raw": results}, indent=2, default=str))
    os.chdir(C.ROOT)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
