"""Your own Keras model, tuned with your own hyperparameters declared under ``model_parameters``.

Built-in knobs (epochs, batch size, optimizer, learning rate) stay under ``parameters``; your model's own
go under ``model_parameters`` with the same value forms, and reach your builder in its ``params`` dict.

    python examples/own_keras_model.py
"""

from __future__ import annotations

import keras
from _smoke import size

import tuner

SPACE = f"""
name: mine
parameters:
  epochs: {size(15, 1)}
  batch_size: 64
  learning_rate: {{type: float, low: 1e-4, high: 1e-2, log: true}}
model_parameters:
  my_width: {{type: int, low: 16, high: 128, log: true}}
  my_activation: {{type: categorical, choices: [relu, tanh]}}
  my_dropout: {{type: float, low: 0.0, high: 0.5, regularizer_off: 0.0}}
"""


def build(params, input_shape, *, task, n_outputs):
    """An uncompiled model: tuner compiles it with its optimizer knobs and the task's loss."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(params["my_width"], activation=params["my_activation"])(inputs)
    x = keras.layers.Dropout(params["my_dropout"])(x)
    outputs = keras.layers.Dense(n_outputs, activation="softmax")(x)
    return keras.Model(inputs, outputs)


space = tuner.SearchSpace.from_yaml(SPACE, source="mine.yaml")
study = tuner.Study(space, "digits", builder=build, n_trials=size(10, 2))
study.run()
best = study.best_trial()
print(best.params["my_width"], best.params["my_activation"], best.verdict, best.metrics["gap_accuracy"])
