"""Optimizers and learning-rate schedules from resolved parameters, with Keras's own classes."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import keras
from keras import ops

from tuner.space import knob_value

__all__ = [
    "LinearWarmup",
    "OptimizerSlot",
    "ScaledSchedule",
    "StateCosineDecay",
    "build_optimizer",
    "build_schedule",
    "current_learning_rate",
]


@keras.saving.register_keras_serializable(package="tuner")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``peak / warmup_steps`` to ``peak``, then ``after`` (shifted by the warm-up).

    Args:
        peak: the learning rate reached at the end of the warm-up.
        warmup_steps: optimizer steps of warm-up.
        after: the schedule that follows, or None to stay at ``peak``. Defaults to `None`.
    """

    def __init__(self, peak: float, warmup_steps: int, after: Any = None) -> None:
        super().__init__()
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        if isinstance(after, dict):
            after = keras.optimizers.schedules.deserialize(after)
        self.after = after

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        warm = self.peak * ops.minimum((step + 1.0) / float(self.warmup_steps), 1.0)
        if self.after is None:
            return warm
        rest = self.after(ops.maximum(step - float(self.warmup_steps), 0.0))
        return ops.where(step < float(self.warmup_steps), warm, ops.cast(rest, "float32"))

    def get_config(self) -> dict[str, Any]:
        after = None if self.after is None else keras.optimizers.schedules.serialize(self.after)
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "after": after}


class OptimizerSlot:
    """A scalar a schedule reads (its learning rate, a cosine decay's final fraction), made a variable of the
    optimizer's once the optimizer is built (:meth:`bind`): both backends' train steps receive the optimizer's
    variables, JAX's stateless step those only, so the value is an input of the compiled step, not a constant."""

    def __init__(self, name: str, initial: float) -> None:
        self.name, self.initial = name, float(initial)
        self.variable: Any = None

    def bind(self, optimizer: Any) -> Any:
        """Create the variable in ``optimizer`` (built) and return it."""
        self.variable = optimizer.add_variable(
            shape=(), initializer=keras.initializers.Constant(self.initial), dtype="float32", name=self.name
        )
        return self.variable

    @property
    def value(self) -> Any:
        return self.variable.value

    def numpy(self) -> Any:
        return self.variable.numpy() if self.variable is not None else self.initial


class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``learning_rate * unit(step)``: a schedule built for a learning rate of 1, times a variable (issue 24).

    Every schedule tuner builds is proportional to its learning rate, so a state model's optimizer reads the rate
    from a variable (an :class:`OptimizerSlot`) and trials differing in it share one program. Not saved: exported
    models get the standard schedule, with the numbers.
    """

    def __init__(self, unit: Any, learning_rate: Any) -> None:
        super().__init__()
        self.unit, self.variable = unit, learning_rate

    def __call__(self, step: Any) -> Any:
        return ops.cast(self.variable.value, "float32") * ops.cast(self.unit(step), "float32")

    def get_config(self) -> dict[str, Any]:  # for display: a state model is not saved
        return {"unit": keras.optimizers.schedules.serialize(self.unit), "learning_rate": float(self.variable.numpy())}


class StateCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Keras's ``CosineDecay`` from 1, its final fraction ``alpha`` a variable: 1 holds the rate constant, so that a
    constant rate and a cosine decay run one program (:func:`tuner.model.cosine_is_state`). The same operations as
    Keras's, in the same order. Not saved: exported models get the standard schedule, with the numbers."""

    def __init__(self, decay_steps: int, alpha: Any) -> None:
        super().__init__()
        self.decay_steps, self.alpha = int(decay_steps), alpha

    def __call__(self, step: Any) -> Any:
        decay_steps = ops.cast(self.decay_steps, "float32")
        completed_fraction = ops.divide(ops.minimum(ops.cast(step, "float32"), decay_steps), decay_steps)
        cosine_decayed = 0.5 * (1.0 + ops.cos(ops.multiply(ops.array(math.pi, dtype="float32"), completed_fraction)))
        alpha = ops.cast(self.alpha.value, "float32")
        return (1 - alpha) * cosine_decayed + alpha

    def get_config(self) -> dict[str, Any]:  # for display: a state model is not saved
        return {"decay_steps": self.decay_steps, "alpha": float(self.alpha.numpy())}


def build_schedule(params: Mapping[str, Any], *, steps_per_epoch: int, epochs: int) -> Any:
    """The learning rate (a float) or a ``keras.optimizers.schedules.LearningRateSchedule``.

    ``decay_steps`` defaults to one epoch for exponential and inverse-time decay and to the whole run
    (after warm-up) for linear and cosine decay.
    """
    lr = float(knob_value(params, "learning_rate"))
    kind = knob_value(params, "lr_schedule")
    warmup_steps = round(float(knob_value(params, "warmup_epochs")) * steps_per_epoch)
    total = max(1, steps_per_epoch * epochs - warmup_steps)
    decay_steps = knob_value(params, "decay_steps")
    schedules = keras.optimizers.schedules
    if kind == "constant":
        after = None
    elif kind == "exponential":
        after = schedules.ExponentialDecay(
            lr,
            int(decay_steps or steps_per_epoch),
            float(knob_value(params, "decay_rate")),
            staircase=bool(knob_value(params, "staircase")),
        )
    elif kind == "inverse_time":
        after = schedules.InverseTimeDecay(
            lr,
            int(decay_steps or steps_per_epoch),
            float(knob_value(params, "decay_rate")),
            staircase=bool(knob_value(params, "staircase")),
        )
    elif kind == "linear":
        after = schedules.PolynomialDecay(
            lr, int(decay_steps or total), end_learning_rate=lr * float(knob_value(params, "end_lr_factor")), power=1.0
        )
    elif kind == "cosine":
        after = schedules.CosineDecay(lr, int(decay_steps or total), alpha=float(knob_value(params, "end_lr_factor")))
    else:  # validated by the space; a direct caller gets a clear message
        raise ValueError(f"Received an invalid value for `lr_schedule`. Received: lr_schedule={kind!r}")
    if warmup_steps > 0:
        return LinearWarmup(lr, warmup_steps, after)
    return lr if after is None else after


def build_optimizer(
    params: Mapping[str, Any], *, steps_per_epoch: int, epochs: int, learning_rate: Any = None, alpha: Any = None
) -> Any:
    """An optimizer looked up with ``keras.optimizers.get`` and configured from the parameters.

    Options the chosen optimizer does not take (``momentum`` for adam, ``nesterov`` for rmsprop) are
    left out. ``learning_rate``, a variable, makes a schedule read its rate from it (:class:`ScaledSchedule`);
    ``alpha``, a variable too, makes a constant rate or a cosine decay a cosine decay whose final fraction it is
    (:class:`StateCosineDecay`).
    """
    name = knob_value(params, "optimizer")
    cls = type(keras.optimizers.get(name))
    accepted = set(inspect.signature(cls.__init__).parameters)
    if alpha is not None:
        decay_steps = knob_value(params, "decay_steps") or max(1, steps_per_epoch * epochs)
        schedule = StateCosineDecay(int(decay_steps), alpha)
    else:
        schedule = build_schedule(
            {**params, "learning_rate": 1.0} if learning_rate is not None else params,
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
        )
    if learning_rate is not None:  # given for a schedule only: a constant rate is the optimizer's own variable
        schedule = ScaledSchedule(schedule, learning_rate)
    config: dict[str, Any] = {"learning_rate": schedule}
    if "momentum" in accepted and name.lower() in ("sgd", "rmsprop"):
        config["momentum"] = float(knob_value(params, "momentum"))
    if "nesterov" in accepted:
        config["nesterov"] = bool(knob_value(params, "nesterov"))
    weight_decay = knob_value(params, "weight_decay")
    if weight_decay is not None:
        config["weight_decay"] = float(weight_decay)
    clipnorm = knob_value(params, "clipnorm")
    if clipnorm is not None:
        config["clipnorm"] = float(clipnorm)
    return cls(**config)


def current_learning_rate(optimizer: Any) -> float:
    """The learning rate the optimizer uses at its current step."""
    lr = optimizer.learning_rate
    return float(ops.convert_to_numpy(lr))
