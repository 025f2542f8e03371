"""What a task implies for a model: its loss, its output activation, and the check that the two fit it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner._backend import import_keras_for_api
from tuner.errors import ConfigError, Problem
from tuner.space import knob_value

__all__ = ["ONE_HOT_LOSSES", "canonical_loss", "check_task_fit", "output_activation", "resolve_loss"]

_TASK_LOSS = {"binary": "binary_crossentropy", "multiclass": "sparse_categorical_crossentropy", "regression": "mse"}
_TASK_OUTPUT = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}

ONE_HOT_LOSSES = frozenset(
    {"categorical_crossentropy", "categorical_focal_crossentropy", "categorical_hinge", "kl_divergence"}
)
"""Multiclass losses that take one-hot targets (the others take class indices), as :func:`canonical_loss` names them."""

_CLASSIFICATION_LOSSES = {
    "binary": {"binary_crossentropy", "binary_focal_crossentropy", "hinge", "squared_hinge"},
    "multiclass": {"sparse_categorical_crossentropy", *ONE_HOT_LOSSES},
}


def output_activation(params: Mapping[str, Any], task: str) -> str:
    """The output activation for ``task``: the knob's value, or the one the task implies when it is ``auto``."""
    act = knob_value(params, "output_activation")
    return _TASK_OUTPUT[task] if act == "auto" else act


def resolve_loss(params: Mapping[str, Any], task: str) -> str:
    """The loss name for ``task``: the knob's value, or the one the task implies when it is ``auto``."""
    loss = knob_value(params, "loss")
    return _TASK_LOSS[task] if loss == "auto" else loss


def canonical_loss(name: str) -> str:
    """The name of the loss function that ``keras.losses.get(name)`` resolves to: Keras's own aliases and class
    names map to it (``BCE`` and ``BinaryCrossentropy`` -> ``binary_crossentropy``, ``KLD`` -> ``kl_divergence``);
    a name Keras does not know is returned as it is."""
    keras = import_keras_for_api()
    try:
        loss = keras.losses.get(name)
    except (ValueError, TypeError):
        return name
    return getattr(getattr(loss, "fn", loss), "__name__", name)  # a Loss object (a class name) wraps its function


def check_task_fit(params: Mapping[str, Any], task: str, *, source: str = "parameters") -> None:
    """Check that the loss and output activation suit the task.

    Raises:
        ConfigError: e.g. ``binary_crossentropy`` on a regression task, or ``softmax`` output for binary.
    """
    problems = []
    loss = resolve_loss(params, task)
    canonical = canonical_loss(loss)
    if task == "regression":
        bad = set().union(*_CLASSIFICATION_LOSSES.values())
        if canonical in bad:
            problems.append(Problem(source, "loss", "is a classification loss but the task is regression", value=loss))
    else:
        other = "multiclass" if task == "binary" else "binary"
        if canonical in _CLASSIFICATION_LOSSES[other] - _CLASSIFICATION_LOSSES[task]:
            problems.append(Problem(source, "loss", f"is a {other} loss but the task is {task}", value=loss))
    act = output_activation(params, task)
    expected = None if task == "regression" else _TASK_OUTPUT.get(task)
    if expected is not None and act != expected:
        problems.append(
            Problem(source, "output_activation", f"must be {expected!r} (or auto) for a {task} task", value=act)
        )
    if task == "regression" and act == "softmax":
        problems.append(Problem(source, "output_activation", "must not be 'softmax' for a regression task", value=act))
    if problems:
        raise ConfigError(problems)
