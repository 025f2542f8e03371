"""Models a user brings, for tests/test_bring_your_own.py (and `python -m tuner study --model` on a file).

Each is tiny and fits the digits dataset (64 features, 10 classes).
"""

from __future__ import annotations

import json
import os

import keras
import keras_tuner as kt
import numpy as np


def build_params(params, input_shape, *, task, n_outputs):
    """tuner's builder shape, reading a parameter of its own (``my_width``) next to built-in knobs."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(params["my_width"], activation=params.get("my_activation", "relu"))(inputs)
    outputs = keras.layers.Dense(n_outputs, activation="softmax" if task == "multiclass" else "sigmoid")(x)
    return keras.Model(inputs, outputs)


def build_hp(hp):
    """Define-by-run, as for KerasTuner: a conditional scope, a log-scaled learning rate, compiled."""
    kind = hp.Choice("kind", ["wide", "deep"])
    model = keras.Sequential([keras.Input((64,))])
    with hp.conditional_scope("kind", ["wide"]):
        if kind == "wide":
            model.add(keras.layers.Dense(hp.Int("wide_units", 32, 64, step=32), activation="relu"))
    with hp.conditional_scope("kind", ["deep"]):
        if kind == "deep":
            for i in range(hp.Int("depth", 1, 2)):
                model.add(keras.layers.Dense(16, activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    lr = hp.Float("lr", 1e-3, 1e-2, sampling="log")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _seen(hp):
    """Append what build saw to the file named by $BYO_SEEN (worker processes too)."""
    path = os.environ.get("BYO_SEEN")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"pid": os.getpid(), "values": dict(hp.values)}) + "\n")


class ScopedHyperModel(kt.HyperModel):
    """A KerasTuner HyperModel with a conditional scope, defaults, parent_name/parent_values and its own fit()."""

    def build(self, hp):
        act = hp.Choice("activation", ["relu", "tanh"], default="tanh")
        model = keras.Sequential([keras.Input((64,))])
        model.add(keras.layers.Dense(hp.Int("units", 16, 48, step=16, default=32), activation=act))
        extra = hp.Boolean("extra_layer")
        extra_units = hp.Int("extra_units", 8, 16, step=8, parent_name="extra_layer", parent_values=[True])
        if extra:
            model.add(keras.layers.Dense(extra_units, activation=act))
        with hp.conditional_scope("activation", ["relu"]):
            if act == "relu":
                model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.3, step=0.1)))
        model.add(keras.layers.Dense(10, activation="softmax"))
        model.compile(optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-3, 1e-2, sampling="log")),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        _seen(hp)
        return model

    def fit(self, hp, model, *args, **kwargs):
        self.fitted_with = hp.Choice("batch_size", [32, 64])
        return model.fit(*args, batch_size=self.fitted_with, **kwargs)


not_a_model = 42


class LiteralFitHyperModel(ScopedHyperModel):
    """A HyperModel whose fit() passes its own batch_size and epochs to model.fit (a NumPy integer, a literal)."""

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, **{**kwargs, "batch_size": np.int64(16), "epochs": 2})
