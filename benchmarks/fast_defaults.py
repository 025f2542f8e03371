"""Which ``steps_per_execution``, ``jit_compile`` and data input make small models train fastest on CPU (issue 8.2).

    python benchmarks/fast_defaults.py            # TensorFlow and JAX, digits and mnist1d, batch 32 and 64:
                                                  # ~7 min on 2 idle cores, ~12 min at load 4
    python benchmarks/fast_defaults.py --quick    # batch 32, fewer epochs, one repeat: ~3 min

Every cell is ``tuner.train_model`` on the default-ish 2x64 MLP as a study runs it (the gap on, the study's
per-batch stop callback ``tuner.study._callbacks.stop_callback`` added; ``patience: 0``), with ``steps_per_execution``
in {1, 8, 32} and ``jit_compile`` in {false, true} passed in its parameters. The default cell (``spe`` 32 since
the second session, ``jit_compile`` auto) is also run without the stop callback, to show what it costs (it
checks at batch begin: a callback with ``on_train_batch_end`` would turn off Keras's asynchronous batch-end
dispatch under JAX, so that every step waited for its result).

Data input (TensorFlow only, a bare ``model.fit`` of the same model and compile settings, gap off): the
in-memory NumPy arrays a study passes (the datasets are loaded once per worker and kept in memory) against a
``tf.data`` pipeline over the same arrays (``from_tensor_slices``, shuffle, batch, prefetch), the usual
alternative; under JAX, NumPy arrays only (``tf.data`` needs TensorFlow).
Each backend runs in its own subprocess (``KERAS_BACKEND``); inside it the cells run in an order that
rotates every repeat, after one dropped warm-up fit per dataset. Figures are medians over repeats:

- ``ep1 s``: the first epoch (tracing, and XLA compilation when ``jit_compile`` is on);
- ``ms/epoch``: the median of the later epochs (training plus the honest-gap evaluation); ``cpu ms/ep``
  the same in CPU time of the process (all threads), less disturbed by other work on the machine;
- ``20-ep s``: ``ep1 + 19 * ms/epoch``, the fit time of a 20-epoch trial (the knob default);
- ``val_acc``: the final honest validation accuracy, to show the knobs do not change what is learned.

Under JAX, ``jit_compile: false`` runs every step eagerly and is 50-300x slower, so it is timed once over
``--eager-epochs`` epochs (``--no-jax-eager`` skips it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common as C

CONFIGS = [(spe, jit) for jit in (False, True) for spe in (1, 8, 32)]


def default_spe() -> int:
    from tuner.space import KNOBS

    return int(KNOBS["steps_per_execution"].default)


def input_rows(args: argparse.Namespace, keras: Any, datasets: dict[str, Any]) -> list[dict[str, Any]]:
    """Bare fits from NumPy arrays vs from a tf.data pipeline (TensorFlow only)."""
    import numpy as np
    import tensorflow as tf

    from tuner.model import build_model, resolve_loss
    from tuner.model import build_optimizer
    from tuner.training._train import _targets, prepare_data

    raw: dict[tuple, list[dict[str, float]]] = {}
    for rep in range(args.repeats):
        for name, ds in datasets.items():
            for batch in args.batch_sizes:
                params = {"n_layers": 2, "units": 64, "batch_size": batch, "epochs": args.epochs, "patience": 0}
                data = prepare_data(ds, params)
                loss = resolve_loss(params, ds.task)
                y = _targets(data.y_train, ds.task, loss, data.n_classes)
                steps = max(1, int(np.ceil(len(data.x_train) / batch)))
                kinds = ["numpy", "tf.data"] if rep % 2 == 0 else ["tf.data", "numpy"]
                for kind in kinds:
                    keras.utils.set_random_seed(0)
                    model = build_model(params, data.input_shape, task=ds.task, n_outputs=data.n_outputs)
                    model.compile(optimizer=build_optimizer(params, steps_per_epoch=steps, epochs=args.epochs),
                                  loss=loss, metrics=["accuracy"], jit_compile=False,
                                  steps_per_execution=default_spe())
                    timer = C.EpochTimer()
                    if kind == "numpy":
                        model.fit(data.x_train, y, batch_size=batch, epochs=args.epochs, shuffle=True, verbose=0,
                                  callbacks=[timer])
                    else:
                        pipe = (tf.data.Dataset.from_tensor_slices((data.x_train, y))
                                .shuffle(len(y), seed=0, reshuffle_each_iteration=True)
                                .batch(batch).prefetch(tf.data.AUTOTUNE))
                        model.fit(pipe, epochs=args.epochs, verbose=0, callbacks=[timer])
                    raw.setdefault((name, batch, kind), []).append(
                        {"ep1_s": timer.times[0], "epoch_ms": 1000 * C.median(timer.times[1:]),
                         "cpu_ms": 1000 * C.median(timer.cpu_times[1:]), "load1": C.load1()})
                    keras.backend.clear_session()
    return [{"dataset": name, "batch": batch, "input": kind, "spe": default_spe(),
             **{k: C.median([r[k] for r in runs]) for k in ("ep1_s", "epoch_ms", "cpu_ms", "load1")}}
            for (name, batch, kind), runs in raw.items()]


def child(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Measure every cell in this process (one backend); return the rows."""
    keras = C.quiet_keras()

    from tuner.training import _gap as gap_module
    from tuner.data import load_dataset
    from tuner.training import train_model

    gap_times: list[float] = []
    original = gap_module.HonestGap.on_epoch_end

    def timed_on_epoch_end(self: Any, epoch: int, logs: dict | None = None) -> None:
        t = time.perf_counter()
        try:
            original(self, epoch, logs)
        finally:
            gap_times.append(time.perf_counter() - t)

    gap_module.HonestGap.on_epoch_end = timed_on_epoch_end
    backend = keras.backend.backend()
    datasets = {name: load_dataset(name) for name in args.datasets}
    for ds in datasets.values():  # warm-up: lazy imports, first traces, the backend's one-off start-up
        train_model({"epochs": 2, "patience": 0}, ds)
        keras.backend.clear_session()

    from tuner.study._callbacks import stop_callback

    default_jit = backend == "jax"
    cells = [(name, batch, spe, jit, True) for name in args.datasets for batch in args.batch_sizes
             for spe, jit in CONFIGS]
    # the same default cell without the study's per-batch stop callback, to show what that callback costs
    cells += [(name, batch, default_spe(), default_jit, False) for name in args.datasets for batch in args.batch_sizes]
    eager = backend == "jax"
    raw: dict[tuple, list[dict[str, float]]] = {c: [] for c in cells}
    for rep in range(args.repeats):
        shift = (rep * 5) % len(cells)
        for cell in cells[shift:] + cells[:shift]:
            name, batch, spe, jit, study_cb = cell
            if eager and not jit and (rep > 0 or not args.jax_eager):
                continue
            epochs = args.eager_epochs if eager and not jit else args.epochs
            params = {"n_layers": 2, "units": 64, "batch_size": batch, "epochs": epochs, "patience": 0,
                      "steps_per_execution": spe, "jit_compile": jit}
            timer = C.EpochTimer()
            gap_times.clear()
            extra = [stop_callback()] if study_cb else []
            result = train_model(params, datasets[name], seed=0, callbacks=[*extra, timer])
            raw[cell].append({"ep1_s": timer.times[0], "epoch_ms": 1000 * C.median(timer.times[1:]),
                              "cpu_ms": 1000 * C.median(timer.cpu_times[1:]),
                              "gap_ms": 1000 * C.median(gap_times[1:]), "epochs": epochs,
                              "val_acc": result.final_metrics["val_accuracy"], "load1": C.load1()})
            keras.backend.clear_session()
        print(f"# {backend}: repeat {rep + 1}/{args.repeats} done (load {C.load1()})", file=sys.stderr, flush=True)
    rows = []
    for cell, runs in raw.items():
        if not runs:
            continue
        name, batch, spe, jit, study_cb = cell
        ep1 = C.median([r["ep1_s"] for r in runs])
        epoch_ms = C.median([r["epoch_ms"] for r in runs])
        rows.append({"backend": backend, "dataset": name, "batch": batch, "spe": spe, "jit": jit, "stop_cb": study_cb,
                     "ep1_s": ep1,
                     "epoch_ms": epoch_ms, "gap_ms": C.median([r["gap_ms"] for r in runs]),
                     "cpu_ms": C.median([r["cpu_ms"] for r in runs]),
                     "trial20_s": ep1 + 19 * epoch_ms / 1000, "val_acc": runs[-1]["val_acc"],
                     "epochs": runs[-1]["epochs"], "n": len(runs), "load1": C.median([r["load1"] for r in runs])})
    inputs = input_rows(args, keras, datasets) if backend == "tensorflow" else []
    return {"rows": rows, "inputs": inputs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eager-epochs", type=int, default=3, help="epochs of the JAX jit_compile=false cells")
    parser.add_argument("--no-jax-eager", dest="jax_eager", action="store_false")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--quick", action="store_true", help="batch 32, 6 epochs, 1 repeat, 2 eager epochs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.batch_sizes, args.epochs, args.repeats, args.eager_epochs = [32], 6, 1, 2
    if args.child:
        print(json.dumps(child(args)))
        return

    info = C.machine()
    rows: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    for backend in args.backends:
        cmd = [sys.executable, __file__, "--child", "--datasets", *args.datasets, "--batch-sizes",
               *map(str, args.batch_sizes), "--epochs", str(args.epochs), "--repeats", str(args.repeats),
               "--eager-epochs", str(args.eager_epochs)] + ([] if args.jax_eager else ["--no-jax-eager"])
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit(f"{backend} failed with exit code {proc.returncode}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.extend(out["rows"])
        inputs.extend(out["inputs"])
        print(f"# {backend}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    all_rows, rows = rows, [r for r in rows if r["stop_cb"]]
    print(f"cpus={info['cpus']} commit={info['commit']} model=2x64 relu adam(1e-3) epochs={args.epochs} "
          f"repeats={args.repeats} (medians; the gap and the study's stop callback on, as in a study)")
    C.table(rows, [("backend", "backend"), ("dataset", "dataset"), ("batch", "batch"), ("spe", "spe"),
                   ("jit", "jit"), ("ep1_s", "ep1 s"), ("epoch_ms", "ms/epoch"), ("cpu_ms", "cpu ms/ep"),
                   ("gap_ms", "gap ms"),
                   ("trial20_s", "20-ep s"), ("val_acc", "val_acc"), ("n", "n"), ("load1", "load1")])
    print(f"\nfastest 20-epoch fit per backend, dataset and batch (vs spe 1, Keras's default; tuner's is {default_spe()})")
    best_rows = []
    for key in sorted({(r["backend"], r["dataset"], r["batch"]) for r in rows}):
        group = [r for r in rows if (r["backend"], r["dataset"], r["batch"]) == key]
        default_jit = key[0] == "jax"
        default = next((r for r in group if r["spe"] == 1 and r["jit"] == default_jit), None)
        best = min(group, key=lambda r: r["trial20_s"])
        best_rows.append({"backend": key[0], "dataset": key[1], "batch": key[2],
                          "best": f"spe={best['spe']} jit={best['jit']}",
                          "best_s": best["trial20_s"], "default_s": default["trial20_s"] if default else None,
                          "speedup": default["trial20_s"] / best["trial20_s"] if default else None})
    C.table(best_rows, [("backend", "backend"), ("dataset", "dataset"), ("batch", "batch"), ("best", "fastest"),
                        ("best_s", "20-ep s"), ("default_s", "default 20-ep s"), ("speedup", "speed-up")])
    print("\nthe study's per-batch stop callback (tuner.study._callbacks.stop_callback, on_train_batch_begin) at the defaults")
    cb_rows = []
    for r in (r for r in all_rows if not r["stop_cb"]):
        twin = next(x for x in rows if all(x[k] == r[k] for k in ("backend", "dataset", "batch", "spe", "jit")))
        cb_rows.append({**{k: r[k] for k in ("backend", "dataset", "batch", "spe", "jit")}, "without_ms": r["epoch_ms"],
                        "with_ms": twin["epoch_ms"], "pct": 100 * (twin["epoch_ms"] / r["epoch_ms"] - 1),
                        "without_cpu": r["cpu_ms"], "with_cpu": twin["cpu_ms"],
                        "cpu_pct": 100 * (twin["cpu_ms"] / r["cpu_ms"] - 1),
                        "load1": r["load1"]})
    C.table(cb_rows, [("backend", "backend"), ("dataset", "dataset"), ("batch", "batch"), ("spe", "spe"),
                      ("jit", "jit"), ("without_ms", "ms/epoch without"), ("with_ms", "with"), ("pct", "extra %"),
                      ("without_cpu", "cpu ms without"), ("with_cpu", "cpu with"), ("cpu_pct", "cpu extra %"),
                      ("load1", "load1")])
    if inputs:
        print("\ndata input, TensorFlow, bare fit (gap off): in-memory NumPy arrays (what a study passes) vs tf.data")
        C.table(inputs, [("dataset", "dataset"), ("batch", "batch"), ("input", "input"), ("spe", "spe"),
                         ("ep1_s", "ep1 s"), ("epoch_ms", "ms/epoch"), ("cpu_ms", "cpu ms/ep"), ("load1", "load1")])
    print(f"\nload1 at end: {C.load1()}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "settings": vars(args) | {"json": str(args.json)},
                                         "rows": all_rows, "best": best_rows, "stop_callback": cb_rows,
                                         "inputs": inputs}, indent=2, default=str))


if __name__ == "__main__":
    main()
