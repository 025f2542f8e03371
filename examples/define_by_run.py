"""Define-by-run: a ``build(hp)`` function asks for its hyperparameters as it builds, KerasTuner's way.

No space file: tuner learns what the function asks for, and each Optuna trial answers.

    python examples/define_by_run.py
"""

from __future__ import annotations

import keras
from _smoke import size

import tuner


def build(hp):
    model = keras.Sequential([keras.Input((64,))])
    for i in range(hp.Int("layers", 1, 3)):
        units = hp.Int(f"units_{i}", 16, 128, step=16)
        model.add(keras.layers.Dense(units, activation=hp.Choice("act", ["relu", "tanh"])))
    if hp.Boolean("dropout"):
        with hp.conditional_scope("dropout", [True]):
            model.add(keras.layers.Dropout(hp.Float("rate", 0.1, 0.5)))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


study = tuner.Study(hypermodel=build, dataset="digits", n_trials=size(10, 2), fixed={"epochs": size(15, 1)})
study.run()
best = study.best_trial()
print(best.params, best.verdict, best.metrics["gap_accuracy"])
