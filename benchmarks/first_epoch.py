"""Why a trial that traces nothing still pays for its first epoch under TensorFlow (issue 24).

    python benchmarks/first_epoch.py          # about 1 min on 2 cores

A small CNN on digits-sized images (8x8x1, 1,077 rows, batch 64, ``steps_per_execution`` 32) is compiled once and
fitted four times, as the trials of one program fit a worker's shared model: a new ``tf.data`` pipeline each time,
the traced train step reused (no retrace). Between two fits, each row of the table does one thing a trial does
before it trains, then the first epoch of the next fit is timed (median of the three fits after the first):

- ``nothing``: the fit alone;
- ``assign weights``, ``reset optimizer``, ``reset metrics``, ``set learning rate``: what
  ``tuner.training._reuse.adopt`` does to the shared model;
- ``clear_session``: what a study does after every trial (``keras.backend.clear_session``);
- ``set_random_seed``: what a trial does before it builds its model (``keras.utils.set_random_seed``).

Each row runs in a child process of its own. Under TensorFlow both ``clear_session`` and ``set_random_seed`` clear
the eager runtime's caches (``TFE_ContextClearCaches``: ``set_random_seed`` does it to reset the seeds of stateful
random kernels), so the next call of the already traced step instantiates its function again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import _common as C  # quiets TensorFlow, puts the repository on sys.path

STEPS = [
    "nothing",
    "assign weights",
    "reset optimizer",
    "reset metrics",
    "set learning rate",
    "clear_session",
    "set_random_seed",
]


def child(step: str) -> dict[str, float]:
    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x, y = rng.random((1077, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 1077)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=32)
    firsts: list[float] = []

    class FirstEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            if epoch == 0:
                firsts.append(time.perf_counter() - self.start)

    from tuner.training._programs import count_model_programs

    start: list[np.ndarray] = []
    traces = 0
    for k in range(4):
        if k:
            if step == "assign weights":
                for variable in model.variables:
                    variable.assign(variable.numpy())
            elif step == "reset optimizer":
                for variable, value in zip(model.optimizer.variables, start, strict=True):
                    variable.assign(value)
            elif step == "reset metrics":
                model.reset_metrics()
            elif step == "set learning rate":
                model.optimizer.learning_rate = 0.002
            elif step == "clear_session":
                keras.backend.clear_session()
            elif step == "set_random_seed":
                keras.utils.set_random_seed(k)
        pipe = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=k).batch(64).prefetch(tf.data.AUTOTUNE)
        model.fit(pipe, epochs=2, verbose=0, callbacks=[FirstEpoch()])
        traces += count_model_programs(model)  # TensorFlow's own count: traced in the first fit only
        if not start:
            start = [np.array(v.numpy()) for v in model.optimizer.variables]
    return {"first_fit_s": firsts[0], "first_epoch_s": statistics.median(firsts[1:]), "traces": traces}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child)))
        return
    print(f"load {C.load1()}, commit {C.commit()}")
    print(f"{'between two fits':<20} {'first epoch ms':>15} {'traces':>7}")
    for step in STEPS:
        env = {**C.os.environ, "KERAS_BACKEND": "tensorflow"}
        out = subprocess.run(
            [sys.executable, __file__, "--child", step], capture_output=True, text=True, env=env, check=True
        ).stdout
        row = json.loads(next(x for x in out.splitlines() if x.startswith("RESULT "))[len("RESULT ") :])
        print(f"{step:<20} {row['first_epoch_s'] * 1000:>15.0f} {row['traces']:>7}", flush=True)


if __name__ == "__main__":
    main()
