"""The model builder: a pure function from resolved parameters to a Keras model.

Each hidden block is laid out in the order a practitioner expects::

    Dense -> [BatchNormalization if batch_norm == "before"] -> Activation
          -> [BatchNormalization if batch_norm == "after"] -> [Dropout if rate > 0]

Layers have stable names (``dense_1``, ``bn_1``, ``act_1``, ``dropout_1``, ..., ``output``) so that a
test, or a person, can read the parameters back from ``model.layers``. Only ``keras`` and
``keras.ops`` are used, so the same code runs under the TensorFlow, JAX and torch backends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.errors import ConfigError, Problem
from tuner.knobs import KNOBS

__all__ = ["build_model", "layer_value", "output_activation", "resolve_loss", "check_task_fit", "TASKS"]

TASKS = ("binary", "multiclass", "regression")
_TASK_LOSS = {"binary": "binary_crossentropy", "multiclass": "sparse_categorical_crossentropy", "regression": "mse"}
_TASK_OUTPUT = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}
_CLASSIFICATION_LOSSES = {
    "binary": {"binary_crossentropy", "binary_focal_crossentropy", "hinge", "squared_hinge"},
    "multiclass": {"sparse_categorical_crossentropy", "categorical_crossentropy", "categorical_focal_crossentropy",
                   "categorical_hinge", "kl_divergence", "kld"},
}


def layer_value(params: Mapping[str, Any], name: str, layer: int) -> Any:
    """The value of a per-layer knob for hidden layer ``layer`` (1-based).

    ``name_<layer>`` wins over the shared ``name``, which wins over the knob's default.
    """
    key = f"{name}_{layer}"
    if key in params:
        return params[key]
    return params.get(name, KNOBS[name].default)


def _get(params: Mapping[str, Any], name: str) -> Any:
    return params.get(name, KNOBS[name].default)


def output_activation(params: Mapping[str, Any], task: str) -> str:
    act = _get(params, "output_activation")
    return _TASK_OUTPUT[task] if act == "auto" else act


def resolve_loss(params: Mapping[str, Any], task: str) -> str:
    """The loss name for ``task``: the knob's value, or the one the task implies when it is ``auto``."""
    loss = _get(params, "loss")
    return _TASK_LOSS[task] if loss == "auto" else loss


def check_task_fit(params: Mapping[str, Any], task: str, *, source: str = "parameters") -> None:
    """Check that the loss and output activation suit the task.

    Raises:
        ConfigError: e.g. ``binary_crossentropy`` on a regression task, or ``softmax`` output for binary.
    """
    problems = []
    loss = resolve_loss(params, task)
    if task == "regression":
        bad = set().union(*_CLASSIFICATION_LOSSES.values())
        if loss in bad:
            problems.append(Problem(source, "loss", "is a classification loss but the task is regression",
                                    value=loss))
    else:
        other = "multiclass" if task == "binary" else "binary"
        if loss in _CLASSIFICATION_LOSSES[other] - _CLASSIFICATION_LOSSES[task]:
            problems.append(Problem(source, "loss", f"is a {other} loss but the task is {task}", value=loss))
    act = output_activation(params, task)
    expected = {"binary": "sigmoid", "multiclass": "softmax"}.get(task)
    if expected is not None and act != expected:
        problems.append(Problem(source, "output_activation", f"must be {expected!r} (or auto) for a {task} task",
                                value=act))
    if task == "regression" and act == "softmax":
        problems.append(Problem(source, "output_activation", "must not be 'softmax' for a regression task",
                                value=act))
    if problems:
        raise ConfigError(problems)


def _regularizer(params: Mapping[str, Any], prefix: str) -> Any:
    import keras

    kind = _get(params, f"{prefix}_regularizer")
    if kind in (None, "none"):
        return None
    l1, l2 = float(_get(params, f"{prefix}_l1")), float(_get(params, f"{prefix}_l2"))
    regularizers = keras.regularizers
    return {"l1": lambda: regularizers.L1(l1), "l2": lambda: regularizers.L2(l2),
            "l1_l2": lambda: regularizers.L1L2(l1=l1, l2=l2)}[kind]()


def build_model(params: Mapping[str, Any], input_shape: tuple[int, ...], *, task: str, n_outputs: int,
                name: str = "mlp") -> Any:
    """Build an uncompiled multilayer perceptron from resolved parameters.

    Args:
        params: resolved parameters (see :meth:`tuner.SearchSpace.suggest`); missing knobs take their
            defaults.
        input_shape: the shape of one example, without the batch axis. Inputs of rank > 1 are flattened.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        n_outputs: output units (classes for multiclass, 1 for binary and regression).
        name: the model's name. Defaults to `"mlp"`.

    Returns:
        An uncompiled ``keras.Model``.

    Raises:
        ConfigError: when the parameters do not fit the task.
    """
    import keras

    if task not in TASKS:
        raise ConfigError([Problem("build_model", "task", f"must be one of {list(TASKS)}", value=task)])
    check_task_fit(params, task)

    kernel_init = _get(params, "kernel_initializer")
    bias_init = _get(params, "bias_initializer")
    bn = _get(params, "batch_norm")

    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = inputs
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    input_dropout = float(_get(params, "input_dropout"))
    if input_dropout > 0:
        x = keras.layers.Dropout(input_dropout, name="input_dropout")(x)

    for i in range(1, int(_get(params, "n_layers")) + 1):
        x = keras.layers.Dense(
            int(layer_value(params, "units", i)),
            activation=None,
            kernel_initializer=keras.initializers.get(kernel_init),
            bias_initializer=keras.initializers.get(bias_init),
            kernel_regularizer=_regularizer(params, "kernel"),
            bias_regularizer=_regularizer(params, "bias"),
            activity_regularizer=_regularizer(params, "activity"),
            name=f"dense_{i}",
        )(x)
        if bn == "before":
            x = _batch_norm(params, i)(x)
        x = keras.layers.Activation(keras.activations.get(layer_value(params, "activation", i)), name=f"act_{i}")(x)
        if bn == "after":
            x = _batch_norm(params, i)(x)
        rate = float(layer_value(params, "dropout", i))
        if rate > 0:
            x = keras.layers.Dropout(rate, name=f"dropout_{i}")(x)

    outputs = keras.layers.Dense(
        n_outputs,
        activation=keras.activations.get(output_activation(params, task)),
        kernel_initializer=keras.initializers.get(kernel_init),
        bias_initializer=keras.initializers.get(bias_init),
        kernel_regularizer=_regularizer(params, "kernel"),
        bias_regularizer=_regularizer(params, "bias"),
        dtype="float32",
        name="output",
    )(x)
    return keras.Model(inputs, outputs, name=name)


def _batch_norm(params: Mapping[str, Any], i: int) -> Any:
    import keras

    return keras.layers.BatchNormalization(momentum=float(_get(params, "bn_momentum")),
                                           epsilon=float(_get(params, "bn_epsilon")), name=f"bn_{i}")
