"""A KerasTuner script switched over: the same HyperModel, run by tuner instead of ``RandomSearch``.

Before (KerasTuner):

    tuner_ = keras_tuner.RandomSearch(MyHyperModel(), objective="val_accuracy", max_trials=6, directory="kt")
    tuner_.search(x, y, epochs=10, validation_split=0.2)
    best_hp = tuner_.get_best_hyperparameters()[0]

After (below): ``tuner.Study(hypermodel=MyHyperModel(), dataset=(x, y))``, and each trial gets its honest
gap and verdict, Optuna's TPE sampler and pruning, a held-out test split and an MLflow run.

    python examples/kerastuner_switch.py
"""

from __future__ import annotations

import keras
import keras_tuner
from _smoke import size
from sklearn.datasets import load_digits

import tuner


class MyHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(hp.Int("units", 32, 256, step=32), activation="relu"),
                keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1)),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            keras.optimizers.Adam(hp.Choice("lr", [1e-2, 1e-3, 1e-4])),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        # a HyperModel's own fit runs each trial; **kwargs carries tuner's callbacks (the gap, pruning)
        return model.fit(*args, batch_size=hp.Choice("batch_size", [32, 64]), **kwargs)


x, y = load_digits(return_X_y=True)
study = tuner.Study(
    hypermodel=MyHyperModel(), dataset=(x / 16.0, y), n_trials=size(6, 2), fixed={"epochs": size(10, 1)}
)
study.run()
print(study.best_trial())  # what KerasTuner's get_best_hyperparameters gave, with the gap and the verdict
