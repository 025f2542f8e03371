"""tuner against KerasTuner on the same space, data and budget, plus an SVC baseline (issues 8.3 and 8.4).

    python benchmarks/vs_kerastuner.py                # 3 seeds x 4 contenders, 20 trials, 30 epochs: ~25 min on 2 cores
    python benchmarks/vs_kerastuner.py --quick        # 1 seed, 6 trials, 8 epochs (patience 3): ~4 min
    python benchmarks/vs_kerastuner.py --json vs_kt.json --seeds 0 1 2 3 4 --n-trials 30

Needs ``pip install keras-tuner tensorboard`` (KerasTuner 1.4 imports ``tensorboard`` in every trial under
TensorFlow, and TensorFlow 2.21 no longer installs it).

The contenders search the space of ``search_spaces/default.yaml`` on ``digits``:

- ``kt-hyperband``: ``keras_tuner.Hyperband(max_epochs=EPOCHS, factor=3)``, one Hyperband iteration;
- ``kt-bayes``: ``keras_tuner.BayesianOptimization(max_trials=N)`` with its defaults (note: its default
  ``num_initial_points`` is 3 x the number of hyperparameters, 30 here, so with N <= 30 every trial is random);
- ``tuner``: ``tuner.run_study(..., n_trials=N)`` (TPE + median pruner) with MLflow tracking on (SQLite in
  a temporary folder), as users run it: honest gap every epoch, best model logged and scored on test;
- ``tuner-2w``: the same study run by ``tuner.study.run_workers(study, 2)`` (this process as worker 0
  and one worker process, as ``python -m tuner study --workers 2``).

KerasTuner gets the same space, translated to ``HyperParameters`` (conditions as ``conditional_scope``), and
its ``HyperModel.build(hp)`` calls ``tuner.build_model`` and compiles as ``tuner.train_model`` does (same
optimizer, loss, metric, ``jit_compile``, ``steps_per_execution``), so both sides train identical models on
the same split (``tuner.load_dataset("digits", seed=SEED)``, scaled by ``tuner.training.prepare_data``) with
the same batch size, epoch budget and early stopping (patience on ``val_loss``, best weights restored).
KerasTuner scores a trial by its best epoch's ``val_accuracy``; tuner by ``val_accuracy`` at the epoch early
stopping keeps (best ``val_loss``), a slightly stricter figure.

Every run is a fresh Python process (the clock starts after the imports, before the data is loaded), and the
runs are interleaved (seed 0: kt-hyperband, kt-bayes, tuner, tuner-2w; seed 1: ...) since the machine's load
varies; the 1-minute load average is printed before and after each run. Per contender, medians over seeds:

- ``best val``: the best trial's validation accuracy; ``test``: that model's accuracy on the test split
  (KerasTuner: ``get_best_models(1)[0]``; tuner: ``study.best_test``);
- ``wall s``: the whole search, including tuner's tracking and test scoring, and KerasTuner's test scoring;
- ``to target s``: when the best validation accuracy so far first reaches the target (default: the median of
  the KerasTuner runs' best validation accuracies), from per-trial completion times (KerasTuner: recorded
  in an ``on_trial_end`` override; tuner: Optuna's ``datetime_complete``); ``reached`` counts the runs that
  reached it (a run that never does counts as infinitely slow); ``any-epoch s`` scores tuner's trials as
  KerasTuner scores its own (best epoch's ``val_accuracy``, pruned trials included), like for like.

The paper table (8.4) puts the tuned test accuracies next to an RBF ``sklearn.svm.SVC`` on the same split
and scaling: scikit-learn's defaults, and C x gamma chosen on the validation split.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C

CONTENDERS = ("kt-hyperband", "kt-bayes", "tuner", "tuner-2w")
KT = ("kt-hyperband", "kt-bayes")
OURS = ("tuner", "tuner-2w")
SVC_C = (0.3, 1.0, 3.0, 10.0, 30.0)
SVC_GAMMA = ("scale", 0.003, 0.01, 0.03)
TOL = 1e-6  # accuracies are counts over a few hundred rows, stored as float32 (KerasTuner) or float64 (tuner)


# --------------------------------------------------------------------------------------------------
# The space as KerasTuner hyperparameters


def _parents_first(space: Any) -> list[str]:
    """Names of ``space.params`` with every condition's parent before its children."""
    order: list[str] = []
    left = list(space.params)
    while left:
        for name in left:
            parents = [k for k in (space.params[name].condition or {}) if k in space.params]
            if all(k in order for k in parents):
                order.append(name)
                left.remove(name)
                break
        else:  # SearchSpace rejects cycles; keep the loop finite anyway
            raise ValueError(f"conditions of the space form a cycle among {left}")
    return order


def kt_params(space: Any, hp: Any) -> dict[str, Any]:
    """Sample ``space`` with KerasTuner's ``hp``, resolved exactly as ``SearchSpace.suggest`` resolves it.

    Integer and float ranges become ``hp.Int``/``hp.Float`` (``sampling="log"`` for ``log: true``),
    categoricals ``hp.Choice``; a condition on a searched parent opens ``hp.conditional_scope`` so KerasTuner
    knows the hyperparameter is conditional. Knobs the space does not name keep their defaults; a parameter
    whose condition fails is left out (the builder then uses the knob default), as in tuner.

    Raises:
        ValueError: for ``per_layer`` parameters, which this translation does not cover.
    """
    resolved = space.defaults()
    for name in _parents_first(space):
        p = space.params[name]
        if p.per_layer:
            raise ValueError(f"`per_layer` parameters are not translated to KerasTuner. Received: {name}")
        condition = p.condition or {}
        with contextlib.ExitStack() as scopes:
            for parent, values in condition.items():
                if parent in space.params and not space.params[parent].is_fixed:
                    scopes.enter_context(hp.conditional_scope(parent, list(values)))
            if p.is_fixed:
                value = p.value
            elif p.type == "categorical":
                value = hp.Choice(name, list(p.choices))
            elif p.type == "int":
                value = hp.Int(name, int(p.low), int(p.high), step=p.step, sampling="log" if p.log else "linear")
            else:
                value = hp.Float(name, float(p.low), float(p.high), step=p.step, sampling="log" if p.log else "linear")
        if condition and not all(resolved.get(k) in v for k, v in condition.items()):
            resolved.pop(name, None)
        else:
            resolved[name] = value
    return resolved


# --------------------------------------------------------------------------------------------------
# One run, in a child process


def _space(args: argparse.Namespace) -> Any:
    import tuner

    return tuner.load_space(args.space).with_fixed({"epochs": args.epochs, "patience": args.patience})


def child_kt(args: argparse.Namespace) -> dict[str, Any]:
    """One KerasTuner search; returns its figures."""
    keras = C.quiet_keras()
    import keras_tuner as kt

    from tuner import build_model, load_dataset
    from tuner.metrics import headline_metric
    from tuner.space import KNOBS
    from tuner.model import resolve_loss
    from tuner.model import build_optimizer
    from tuner.training import prepare_data

    space = _space(args)
    fixed = {n: p.value for n, p in space.params.items() if p.is_fixed and not p.condition}

    def knob(params: dict[str, Any], name: str) -> Any:
        return params.get(name, KNOBS[name].default)

    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    dataset = load_dataset("digits", seed=args.seed)
    data = prepare_data(dataset, {**space.defaults(), **fixed})
    task = data.task
    batch_size, epochs, patience = int(knob(fixed, "batch_size")), args.epochs, args.patience
    steps_per_epoch = max(1, math.ceil(len(data.x_train) / batch_size))

    class SpaceHyperModel(kt.HyperModel):
        def build(self, hp: Any) -> Any:
            params = kt_params(space, hp)
            previous = keras.config.dtype_policy()
            keras.config.set_dtype_policy(knob(params, "precision"))
            try:
                model = build_model(params, data.input_shape, task=task, n_outputs=data.n_outputs)
            finally:
                keras.config.set_dtype_policy(previous)
            jit = knob(params, "jit_compile")
            if jit is None:
                jit = keras.backend.backend() == "jax"
            model.compile(optimizer=build_optimizer(params, steps_per_epoch=steps_per_epoch, epochs=epochs),
                          loss=resolve_loss(params, task), metrics=[headline_metric(task)], jit_compile=bool(jit),
                          steps_per_execution=int(knob(params, "steps_per_execution")))
            return model

    base = kt.Hyperband if args.child == "kt-hyperband" else kt.BayesianOptimization
    curve: list[tuple[float, float | None]] = []
    epochs_run = [0]

    class Recording(base):  # type: ignore[misc, valid-type]
        """Records each trial's end time and score: KerasTuner's trials carry no timestamps."""

        def on_epoch_end(self, trial: Any, model: Any, epoch: int, logs: Any = None) -> None:
            super().on_epoch_end(trial, model, epoch, logs)
            epochs_run[0] += 1

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            score = self.oracle.trials[trial.trial_id].score
            curve.append((time.perf_counter() - start, None if score is None else float(score)))

    common = dict(objective=kt.Objective("val_accuracy", "max"), seed=args.seed, directory=os.getcwd(),
                  project_name=args.child, overwrite=True)
    if base is kt.Hyperband:
        search = Recording(SpaceHyperModel(), max_epochs=epochs, factor=3, **common)
    else:
        search = Recording(SpaceHyperModel(), max_trials=args.n_trials, **common)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", mode="min", patience=patience, restore_best_weights=True)
    search.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=epochs,
                  batch_size=batch_size, callbacks=[stop] if patience > 0 else [], verbose=0)
    best_val = float(search.oracle.get_best_trials(1)[0].score)
    model = search.get_best_models(1)[0]
    test = model.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0, return_dict=True)
    wall = time.perf_counter() - start
    return {"best_val": best_val, "test": float(test["accuracy"]),
            "wall_s": wall, "trials": len(curve), "pruned": 0, "epochs": epochs_run[0], "curve": curve,
            "curve_any": curve}


def child_tuner(args: argparse.Namespace) -> dict[str, Any]:
    """One tuner study (1 or 2 workers), tracking on; returns its figures."""
    if args.child != "tuner":  # as `tuner study --workers 2`: this process takes worker 0's thread share first
        from tuner.study import share_this_process

        share_this_process(2)
    C.quiet_keras()
    import optuna

    import tuner
    from tuner.study import run_workers

    space = _space(args)
    here = Path.cwd().as_posix()
    start, started = time.perf_counter(), datetime.datetime.now()
    study = tuner.Study(space, "digits", dataset_options={"seed": args.seed}, n_trials=args.n_trials, seed=args.seed,
                        study_name=f"vs-kt-{args.seed}", storage=f"sqlite:///{here}/optuna.db",
                        tracking_uri=f"sqlite:///{here}/mlflow.db")
    if args.child == "tuner":
        study.run()
    else:
        run_workers(study, 2, verbosity=-1)
    wall = time.perf_counter() - start
    trials = [t for t in study.optuna_study.get_trials(deepcopy=False) if t.state.is_finished()]
    trials.sort(key=lambda t: t.datetime_complete)
    seconds = [(t.datetime_complete - started).total_seconds() for t in trials]
    curve = [(s, t.value if t.state == optuna.trial.TrialState.COMPLETE else None) for s, t in zip(seconds, trials)]
    # KerasTuner's own definition of a trial's score: its best epoch's val_accuracy (pruned trials included)
    curve_any = [(s, max(t.intermediate_values.values(), default=None)) for s, t in zip(seconds, trials)]
    test = (study.best_test or {}).get("test_accuracy", math.nan)
    return {"best_val": float(study.optuna_study.best_value), "test": float(test), "wall_s": wall,
            "trials": len(trials), "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
            "epochs": sum(len(t.intermediate_values) for t in trials), "curve": curve, "curve_any": curve_any}


def child(args: argparse.Namespace) -> None:
    out = child_kt(args) if args.child in KT else child_tuner(args)
    Path(args.child_out).write_text(json.dumps(out))


# --------------------------------------------------------------------------------------------------
# The SVC baseline (8.4)


def svc_baseline(seed: int) -> dict[str, Any]:
    """Test accuracy of an RBF SVC: scikit-learn's defaults, and C x gamma chosen on the validation split."""
    from sklearn.svm import SVC

    from tuner import load_dataset
    from tuner.training import prepare_data

    data = prepare_data(load_dataset("digits", seed=seed), {"scaling": "standard"})
    default = SVC(kernel="rbf").fit(data.x_train, data.y_train)
    grid = [(SVC(kernel="rbf", C=c, gamma=g).fit(data.x_train, data.y_train), c, g) for c in SVC_C for g in SVC_GAMMA]
    best, c, g = max(grid, key=lambda m: m[0].score(data.x_val, data.y_val))  # first of the ties: smallest C
    return {"seed": seed, "svc_default_val": default.score(data.x_val, data.y_val),
            "svc_default_test": default.score(data.x_test, data.y_test),
            "svc_grid_val": best.score(data.x_val, data.y_val), "svc_grid_test": best.score(data.x_test, data.y_test),
            "svc_C": c, "svc_gamma": g}


# --------------------------------------------------------------------------------------------------
# The parent: interleaved runs, then the tables


def time_to(curve: list[list[Any]], target: float) -> float:
    """Seconds until the best score so far first reaches ``target`` (inf when it never does)."""
    for t, score in sorted(curve, key=lambda c: c[0]):
        if score is not None and score >= target - TOL:
            return float(t)
    return math.inf


def load3() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "-"


def run_one(args: argparse.Namespace, name: str, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"vs_kt_{name}_") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--child-out", str(out),
               "--seed", str(seed), "--n-trials", str(args.n_trials), "--epochs", str(args.epochs),
               "--patience", str(args.patience), "--space", str(Path(args.space).resolve())]
        load_start = load3()
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        process_s = time.perf_counter() - t
        if proc.returncode != 0 or not out.exists():
            sys.exit(f"{name} seed {seed} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        row = json.loads(out.read_text())
    row.update(contender=name, seed=seed, process_s=round(process_s, 1), load_start=load_start, load_end=load3())
    print(f"seed {seed}  {name:<12}  best_val={row['best_val']:.4f}  test={row['test']:.4f}  "
          f"wall={row['wall_s']:6.1f} s"
          f"  (process {process_s:.1f} s)  trials={row['trials']} pruned={row['pruned']} epochs={row['epochs']}"
          f"  load {row['load_start']} -> {row['load_end']}", flush=True)
    return row


def summarize(runs: list[dict[str, Any]], target: float) -> list[dict[str, Any]]:
    rows = []
    for name in CONTENDERS:
        mine = [r for r in runs if r["contender"] == name]
        if not mine:
            continue
        ttt = [time_to(r["curve"], target) for r in mine]
        any_epoch = [time_to(r["curve_any"], target) for r in mine]
        rows.append({"contender": name, "runs": len(mine), "best_val": C.median([r["best_val"] for r in mine]),
                     "test": C.median([r["test"] for r in mine]), "wall_s": C.median([r["wall_s"] for r in mine]),
                     "to_target_s": C.median(ttt), "reached": f"{sum(math.isfinite(x) for x in ttt)}/{len(ttt)}",
                     "any_epoch_s": C.median(any_epoch),
                     "trials": C.median([r["trials"] for r in mine]), "pruned": C.median([r["pruned"] for r in mine]),
                     "epochs": C.median([r["epochs"] for r in mine])})
    return rows


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """The targets of issue 8.3: at least as accurate as KerasTuner, at most a third of its time to target."""
    by = {r["contender"]: r for r in rows}
    lines = []
    for ours in OURS:
        for theirs in KT:
            if ours not in by or theirs not in by:
                continue
            a, b = by[ours], by[theirs]
            accurate = a["test"] >= b["test"] - TOL
            ratio = a["to_target_s"] / b["to_target_s"] if math.isfinite(b["to_target_s"]) else math.nan
            fast = ratio <= 1 / 3 if math.isfinite(ratio) else False
            ratio_text = f"{ratio:.2f}" if math.isfinite(ratio) else "n/a"
            lines.append(f"{ours} vs {theirs}: test {a['test']:.4f} vs {b['test']:.4f} "
                         f"({'holds' if accurate else 'MISSED'}: at least as accurate); time to target "
                         f"{a['to_target_s']:.1f} s vs {b['to_target_s']:.1f} s, ratio {ratio_text} "
                         f"({'holds' if fast else 'MISSED'}: <= 1/3)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-trials", type=int, default=20, help="tuner trials and KerasTuner's BayesianOptimization "
                        "max_trials (Hyperband runs one iteration)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per trial, and Hyperband's max_epochs")
    parser.add_argument("--patience", type=int, default=5, help="early stopping patience on val_loss")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--target", type=float, help="validation accuracy to time (default: median of KerasTuner's "
                        "runs' best validation accuracies)")
    parser.add_argument("--space", default=str(C.ROOT / "search_spaces" / "default.yaml"))
    parser.add_argument("--json", type=Path, help="write every run and the summaries here too")
    parser.add_argument("--quick", action="store_true", help="1 seed, 6 trials, 8 epochs, patience 3")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.seeds, args.n_trials, args.epochs, args.patience = args.seeds[:1], 6, 8, 3
    info = C.machine()
    print(f"cpus={info['cpus']} commit={info['commit']} load={load3()} seeds={args.seeds} n_trials={args.n_trials} "
          f"epochs={args.epochs} patience={args.patience} space={Path(args.space).name} dataset=digits", flush=True)
    settings = {k: v for k, v in vars(args).items() if not k.startswith("child") and k not in ("json", "seed")}
    start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        for name in args.contenders:
            runs.append(run_one(args, name, seed))
            if args.json:  # after every run, so an interrupted benchmark keeps what it measured
                args.json.write_text(json.dumps({"machine": info, "settings": settings, "complete": False,
                                                 "runs": runs}, indent=2, default=str))
    kt_runs = [r["best_val"] for r in runs if r["contender"] in KT]
    target = args.target
    if target is None:
        target = C.median(kt_runs) if kt_runs else max(r["best_val"] for r in runs)
    rows = summarize(runs, target)
    C.quiet_keras()  # tuner imports keras; keep TensorFlow's start-up lines off the tables
    svc = [svc_baseline(seed) for seed in args.seeds]

    print(f"\nmedians over {len(args.seeds)} seed(s); target val_accuracy {target:.4f} "
          f"({'given' if args.target is not None else 'median of the KerasTuner runs'}); "
          f"total {time.perf_counter() - start:.0f} s")
    C.table(rows, [("contender", "contender"), ("best_val", "best val"), ("test", "test"), ("wall_s", "wall s"),
                   ("to_target_s", "to target s"), ("reached", "reached"), ("any_epoch_s", "any-epoch s"),
                   ("trials", "trials"), ("pruned", "pruned"), ("epochs", "epochs")])
    print()
    for line in verdicts(rows):
        print(line)

    paper = [{"model": f"MLP tuned by {r['contender']}", "val": r["best_val"], "test": r["test"]} for r in rows]
    paper.append({"model": "RBF SVC, scikit-learn defaults", "val": C.median([s["svc_default_val"] for s in svc]),
                  "test": C.median([s["svc_default_test"] for s in svc])})
    paper.append({"model": f"RBF SVC, C x gamma on val ({len(SVC_C)}x{len(SVC_GAMMA)})",
                  "val": C.median([s["svc_grid_val"] for s in svc]),
                  "test": C.median([s["svc_grid_test"] for s in svc])})
    print("\ndigits (same train/val/test split and standard scaling; medians over seeds)")
    C.table(paper, [("model", "model"), ("val", "val accuracy"), ("test", "test accuracy")])
    print("SVC grid picks (seed: C, gamma): " + ", ".join(f"{s['seed']}: {s['svc_C']}, {s['svc_gamma']}" for s in svc))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "settings": settings, "complete": True, "target": target,
                                         "runs": runs, "summary": rows, "svc": svc, "paper": paper,
                                         "verdicts": verdicts(rows)}, indent=2, default=str))


if __name__ == "__main__":
    main()
