"""Hyperparameters as model state, so that trials differing only in them run one compiled program (issue 24).

A Keras layer built with ``Dropout(0.3)`` or ``L2(1e-4)`` bakes the number into the traced (TensorFlow) or
compiled (JAX) train step, so every trial is a new program. :func:`build_state_model` builds the same model as
:func:`tuner.model.build_model`, except that these values live in non-trainable variables the step reads
(:func:`tuner.model.state_values`):

- dropout, spatial dropout, input and head dropout rates (whether a layer is there is part of the program: its
  rate above 0, or the study varying the rate, :func:`dropout_is_there`);
- the L1 and L2 factors of the kernel and bias penalties (a penalty of factor 0 adds exactly 0, so "none",
  "l1", "l2" and "l1_l2" are one program where the study varies them, :func:`penalty_is_there`);
- batch normalization's momentum and epsilon, and, where the study varies it, whether it applies ("off" and
  "after" gated, :func:`batch_norm_is_gated`).

A constant learning rate is already a variable of the Keras optimizer; a schedule reads its rate from another
variable of the optimizer's (JAX's stateless step receives the optimizer's variables only), and a constant rate
and a cosine decay are one program when the study varies the schedule (:func:`cosine_is_state`). What is left
sets a shape or an operation (widths, depth, activations, batch-norm placement, the optimizer and a schedule's
constants, the batch size): :func:`program_signature` names it, and two trials with the same signature can share
one model object, its traced steps and compiled programs (``tuner.training``). Initial weights come from a model
built the standard way under the trial's seed, so results per configuration stay those of
:func:`tuner.model.build_model`.

The state model is a training vehicle only: what a study keeps and exports is the standard model, with the
trained weights copied in and every value a plain number.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import keras

from tuner.space import knob_of, knob_value

__all__ = [
    "HyperparameterState",
    "STATE_KNOBS",
    "batch_norm_is_gated",
    "building_with",
    "cosine_is_state",
    "current_state",
    "dropout_is_there",
    "learning_rate_is_state",
    "penalty_is_there",
    "program_signature",
]

STATE_KNOBS = frozenset(
    {
        "dropout",
        "input_dropout",
        "spatial_dropout",
        "head_dropout",
        "kernel_regularizer",
        "kernel_l1",
        "kernel_l2",
        "bias_regularizer",
        "bias_l1",
        "bias_l2",
        "bn_momentum",
        "bn_epsilon",
    }
)
"""Knobs whose values a state model reads from variables (per-layer values such as ``dropout_2`` included)."""

_DROPOUTS = frozenset({"dropout", "input_dropout", "spatial_dropout", "head_dropout"})  # see dropout_is_there

_OUTSIDE_THE_PROGRAM = frozenset({"kernel_initializer", "bias_initializer", "patience", "scaling"})
"""Knobs that never enter the compiled step: initial values (copied in), early stopping, the data's scaling."""

_REUSABLE_FAMILIES = ("mlp", "cnn")  # recurrent layers keep their dropout inside the cell: not (yet) state

_holder: contextvars.ContextVar[HyperparameterState | None] = contextvars.ContextVar("tuner_state", default=None)


def learning_rate_is_state(params: Mapping[str, Any], varying: Collection[str] = ()) -> bool:
    """A constant learning rate without warm-up is the optimizer's own learning-rate variable (unless
    :func:`cosine_is_state` makes it a cosine decay to 1). A schedule is built for a rate of 1 and multiplied by a
    variable of the optimizer's (:class:`tuner.model.ScaledSchedule`); its other values are baked in."""
    return (
        knob_value(params, "lr_schedule") == "constant"
        and float(knob_value(params, "warmup_epochs")) == 0
        and not cosine_is_state(params, varying)
    )


def cosine_is_state(params: Mapping[str, Any], varying: Collection[str] = ()) -> bool:
    """Where a study varies ``lr_schedule``, a constant rate and a cosine decay are one program: a cosine decay
    whose final fraction (``end_lr_factor``) is a variable of the optimizer's, 1 for a constant rate, which the decay
    then holds exactly (:class:`tuner.model.StateCosineDecay`)."""
    return (
        "lr_schedule" in varying
        and knob_value(params, "lr_schedule") in ("constant", "cosine")
        and float(knob_value(params, "warmup_epochs")) == 0
    )


def batch_norm_is_gated(params: Mapping[str, Any], varying: Collection[str] = ()) -> bool:
    """Where a study varies ``batch_norm``, "off" and "after" are one program: batch normalization after the
    activation, gated by the state's ``bn_gate``, 1 or 0 (exact either way; "before" is another program). Under
    TensorFlow the gate is a ``cond``, so batch norm that is off computes nothing; under JAX the output is
    ``gate * bn(x) + (1 - gate) * x``, which XLA fuses (benchmarks/RESULTS.md, "One program per shape")."""
    return "batch_norm" in varying and knob_value(params, "batch_norm") in ("off", "after")


def penalty_is_there(params: Mapping[str, Any], prefix: str, varying: Collection[str] = ()) -> bool:
    """A state model's ``prefix`` (kernel or bias) penalty is there where the trial asks for one, or where the study
    varies its kind or factors (``none`` is then a factor of 0). A penalty of 0 everywhere would still cost its sums
    every step."""
    knobs = {f"{prefix}_regularizer", f"{prefix}_l1", f"{prefix}_l2"}
    return knob_value(params, f"{prefix}_regularizer") not in (None, "none") or bool(knobs & set(varying))


def dropout_is_there(knob: str, rate: float, varying: Collection[str] = ()) -> bool:
    """A state model's dropout layer is there where its rate is above 0, or where the study varies the rate (a rate
    of 0 then keeps the layer, which passes its input through unchanged, so that its trials share a program)."""
    return rate > 0 or knob in varying


def program_signature(
    params: Mapping[str, Any],
    input_shape: tuple[int, ...],
    *,
    task: str,
    n_outputs: int,
    n_train: int,
    varying: Collection[str] = (),
) -> tuple[Any, ...] | None:
    """What sets the program of a state model built from ``params`` for ``n_train`` training rows: equal
    signatures, one program. None for a model that cannot be a state model (a family whose regularizers are not
    state). ``varying`` names the knobs the study samples: where it varies a dropout rate, batch normalization
    (off/after) or the schedule (constant/cosine), the values that would change the program's structure become
    state too (:func:`dropout_is_there`, :func:`batch_norm_is_gated`, :func:`cosine_is_state`)."""
    if knob_value(params, "family") not in _REUSABLE_FAMILIES:
        return None
    skip = STATE_KNOBS | _OUTSIDE_THE_PROGRAM | {"learning_rate"}  # the optimizer's variable, or one a schedule reads
    steps: Any = int(n_train)  # a schedule counts optimizer steps: the rows set how many an epoch has
    if learning_rate_is_state(params, varying):
        skip = skip | {"epochs"}  # epochs enter a schedule's steps only
        steps = None
    shown = dict(params)
    if cosine_is_state(params, varying):
        skip = skip | {"end_lr_factor"}
        shown["lr_schedule"] = "cosine (final fraction in the state)"
    if batch_norm_is_gated(params, varying):
        shown["batch_norm"] = "after (gated by the state)"
    kept = tuple(sorted((k, repr(v)) for k, v in shown.items() if knob_of(k) not in skip and k not in skip))
    present = tuple(
        sorted(
            k for k, v in params.items() if knob_of(k) in _DROPOUTS and dropout_is_there(knob_of(k), float(v), varying)
        )
    ) + tuple(f"{prefix}_penalty" for prefix in ("kernel", "bias") if penalty_is_there(params, prefix, varying))
    return (tuple(int(d) for d in input_shape), task, int(n_outputs), steps, kept, present)


class HyperparameterState:
    """The variables a state model reads its hyperparameters from, created on first use by name.

    They are tracked as non-trainable weights of the model's last layer (an identity, named ``hyperparameters``),
    so that JAX's stateless train step receives them as inputs instead of constants.
    """

    def __init__(self, values: Mapping[str, float], varying: Collection[str] = ()) -> None:
        self.values = dict(values)
        self.varying = frozenset(varying)  # the knobs the study samples (:func:`program_signature`)
        self.layer = _HyperparameterLayer(name="hyperparameters")
        self.variables: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        """The variable ``name`` (created with its value from :func:`state_values` the first time)."""
        if name not in self.variables:
            self.variables[name] = self.layer.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(self.values[name]),
                dtype="float32",
                trainable=False,
                autocast=False,  # read as float32 under mixed precision too: each reader casts it where it must
                name=name,
            )
        return self.variables[name]

    def assign(self, values: Mapping[str, float]) -> None:
        """Set every variable the model reads to this trial's value."""
        for name, variable in self.variables.items():
            variable.assign(values[name])


def current_state() -> HyperparameterState | None:
    """The state a model is being built with (within :func:`build_state_model`), else None."""
    return _holder.get()


@contextlib.contextmanager
def building_with(state: HyperparameterState) -> Iterator[None]:
    token = _holder.set(state)
    try:
        yield
    finally:
        _holder.reset(token)


# -- the layers and penalties of a state model ------------------------------------------------------------------


def state_dropout(kind: Any, variable: Any, name: str, **kwargs: Any) -> Any:
    """A dropout layer of class ``kind`` (Dropout, SpatialDropout1D/2D) whose rate is ``variable``."""
    cls = _STATE_DROPOUTS.get(kind)
    if cls is None:
        cls = _STATE_DROPOUTS[kind] = type(f"State{kind.__name__}", (_RateFromState, kind), {})
    layer = cls(0.5, name=name, **kwargs)  # a placeholder rate > 0, so Keras makes the layer's seed generator
    object.__setattr__(layer, "_rate_variable", variable)  # read in the step; tracked by the state's layer
    return layer


def state_batch_norm(momentum: Any, epsilon: Any, name: str, gate: Any = None) -> Any:
    """A batch normalization layer whose momentum and epsilon are variables; with ``gate``, a variable of 1 or 0, it
    normalizes where the gate is 1 and passes its input through where it is 0 (:func:`batch_norm_is_gated`)."""
    layer = _StateBatchNormalization(name=name)
    object.__setattr__(layer, "_momentum_variable", momentum)
    object.__setattr__(layer, "_epsilon_variable", epsilon)
    object.__setattr__(layer, "_gate_variable", gate)
    return layer


class StatePenalty:
    """``l1 * sum(|x|) + l2 * sum(x^2)`` with ``l1`` and ``l2`` variables (Keras's L1L2, as state)."""

    def __init__(self, l1: Any, l2: Any) -> None:
        self.l1, self.l2 = l1, l2

    def __call__(self, x: Any) -> Any:
        ops = keras.ops
        l1 = ops.cast(self.l1.value, x.dtype)
        l2 = ops.cast(self.l2.value, x.dtype)
        return l1 * ops.sum(ops.absolute(x)) + l2 * ops.sum(ops.square(x))

    def get_config(self) -> dict[str, Any]:
        return {}


class _HyperparameterLayer(keras.layers.Layer):
    """The identity, holding a state model's hyperparameter variables."""

    def call(self, inputs: Any) -> Any:
        return inputs


class _RateFromState:
    """A dropout whose rate is read from a variable in the step (a rate of 0 keeps every value)."""

    _rate_variable: Any
    seed_generator: Any
    noise_shape: Any

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training:
            return inputs
        ops = keras.ops
        if hasattr(self, "_get_noise_shape"):
            noise_shape = self._get_noise_shape(inputs)
        else:
            noise_shape = self.noise_shape or ops.shape(inputs)
        noise_shape = tuple(ops.shape(inputs)[i] if d is None else d for i, d in enumerate(noise_shape))
        rate = ops.cast(self._rate_variable.value, inputs.dtype)
        uniform = keras.random.uniform(noise_shape, dtype=inputs.dtype, seed=self.seed_generator)
        # the mask Keras's own dropout draws from the same seed on each backend (a rate of 0 keeps every value)
        if keras.backend.backend() == "jax":
            return ops.where(uniform < 1.0 - rate, inputs / (1.0 - rate), ops.zeros_like(inputs))
        return ops.where(uniform >= rate, inputs * (1.0 / (1.0 - rate)), ops.zeros_like(inputs))


class _StateBatchNormalization(keras.layers.BatchNormalization):
    """Batch normalization reading its momentum and epsilon (and, gated, whether it applies) from variables."""

    _gate_variable: Any = None

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        if self._gate_variable is not None and keras.backend.backend() == "tensorflow":
            # TensorFlow runs each small operation on its own: a cond runs one branch, where the arithmetic gate
            # below would compute the moments of a batch norm that is off every step
            return keras.ops.cond(
                self._gate_variable.value > 0.5,
                lambda: self._normalized(inputs, training, mask),
                lambda: keras.ops.cast(inputs, self.compute_dtype),
            )
        outputs = self._normalized(inputs, training, mask)
        if self._gate_variable is None:
            return outputs
        gate = keras.ops.cast(self._gate_variable.value, outputs.dtype)  # 1 or 0: either term is exactly 0
        return gate * outputs + (1.0 - gate) * keras.ops.cast(inputs, outputs.dtype)

    def _normalized(self, inputs: Any, training: Any, mask: Any) -> Any:
        momentum, epsilon = self.momentum, self.epsilon
        object.__setattr__(self, "momentum", self._momentum_variable.value)
        object.__setattr__(self, "epsilon", self._epsilon_variable.value)
        try:
            outputs = super().call(inputs, training=training, mask=mask)
        finally:
            object.__setattr__(self, "momentum", momentum)
            object.__setattr__(self, "epsilon", epsilon)
        return outputs


_STATE_DROPOUTS: dict[Any, type] = {}
