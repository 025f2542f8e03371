"""A KerasTuner script switched over: only the tuner line changes (``keras_tuner.RandomSearch`` ->
``tuner.KerasTuner``); the HyperModel, the one-hot targets, the compile and the calls stay as they are.

Before (KerasTuner):

    tuner_ = keras_tuner.RandomSearch(MyHyperModel(), objective="val_accuracy", max_trials=6,
                                      directory="kt", project_name="digits")

After (below): ``tuner.KerasTuner(...)`` with the same arguments, and each trial gets its honest gap and
verdict, Optuna's TPE sampler and pruning, a held-out test split and an MLflow run.

    python examples/kerastuner_switch.py
"""

from __future__ import annotations

import keras
import keras_tuner
from _smoke import size
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

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
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        # a HyperModel's own fit runs each trial; **kwargs carries tuner's callbacks (the gap, pruning)
        return model.fit(*args, batch_size=hp.Choice("batch_size", [32, 64]), **kwargs)


x, y = load_digits(return_X_y=True)
x_train, x_val, y_train, y_val = train_test_split(
    x / 16.0, keras.utils.to_categorical(y, 10), test_size=0.2, random_state=0
)
tuner_ = tuner.KerasTuner(  # was: keras_tuner.RandomSearch(
    MyHyperModel(),
    objective="val_accuracy",
    max_trials=size(6, 2),
    directory="kt",
    project_name="digits",
    overwrite=True,
)
tuner_.search(x_train, y_train, epochs=size(10, 1), validation_data=(x_val, y_val))
tuner_.results_summary()  # with each trial's honest gap and verdict
best_hp = tuner_.get_best_hyperparameters(1)[0]
print(best_hp.values)
print(tuner_.get_best_models(1)[0].predict(x_val[:3], verbose=0).argmax(axis=1))
