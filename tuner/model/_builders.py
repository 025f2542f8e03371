"""The model builder: a pure function from resolved parameters to a Keras model.

Three families (knob ``family``), each laid out in the order a practitioner expects.

``mlp``, one hidden block per layer (inputs of rank > 1 are flattened first)::

    Dense -> [BatchNormalization if batch_norm == "before"] -> Activation
          -> [BatchNormalization if batch_norm == "after"] -> [Dropout if rate > 0]

``cnn``, one block per layer (``Conv1D`` on sequences ``(T, F)``, ``Conv2D`` on images ``(H, W, C)``),
then flatten (or global pooling) and the head::

    Conv -> [BN before] -> Activation -> [BN after] -> [Pooling] -> [SpatialDropout] -> [Dropout]

``rnn``, stacked ``LSTM`` or ``GRU`` layers (each optionally ``Bidirectional``), with ``dropout`` and
``recurrent_dropout`` in the layer, then the head. The head of cnn and rnn is one dense layer laid out as
an mlp block (``head``, ``bn_head``, ``act_head``, ``head_dropout``), unless ``head_units`` is 0.

Augmentation layers (:func:`tuner.model.augmentation_layers`), active in training only, come right after the input.

Layers have stable names (``augment_rotation``, ``dense_1``, ``conv_1``, ``bn_1``, ``act_1``, ``pool_1``,
``spatial_dropout_1``, ``dropout_1``, ``rnn_1``, ``head``, ..., ``output``) so that a test, or a person,
can read the parameters back from ``model.layers``. Only ``keras`` and ``keras.ops`` are used, so the
same code runs under the TensorFlow, JAX and torch backends.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from tuner.errors import ConfigError, Problem
from tuner.model._state import (
    HyperparameterState,
    StatePenalty,
    batch_norm_is_gated,
    building_with,
    current_state,
    dropout_is_there,
    penalty_is_there,
    state_batch_norm,
    state_dropout,
)
from tuner.model._task import check_task_fit, output_activation
from tuner.space import FAMILIES, KNOBS, TASKS, knob_of, knob_value, layer_key

__all__ = ["build_model", "build_state_model", "check_model_fit", "layer_value", "state_values"]


def layer_value(params: Mapping[str, Any], name: str, layer: int) -> Any:
    """The value of a per-layer knob for hidden layer ``layer`` (1-based).

    ``name_<layer>`` wins over the shared ``name``, which wins over the knob's default.
    """
    key = layer_key(name, layer)
    if key in params:
        return params[key]
    return params.get(name, KNOBS[name].default)


def _regularizer(params: Mapping[str, Any], prefix: str) -> Any:
    import keras

    state = current_state()
    if state is not None and prefix in ("kernel", "bias") and penalty_is_there(params, prefix, state.varying):
        return StatePenalty(state.get(f"{prefix}_l1"), state.get(f"{prefix}_l2"))  # factors in variables, 0 for none
    kind = knob_value(params, f"{prefix}_regularizer")
    if kind in (None, "none"):
        return None
    l1, l2 = float(knob_value(params, f"{prefix}_l1")), float(knob_value(params, f"{prefix}_l2"))
    regularizers = keras.regularizers
    return {
        "l1": lambda: regularizers.L1(l1),
        "l2": lambda: regularizers.L2(l2),
        "l1_l2": lambda: regularizers.L1L2(l1=l1, l2=l2),
    }[kind]()


def build_model(
    params: Mapping[str, Any], input_shape: tuple[int, ...], *, task: str, n_outputs: int, name: str | None = None
) -> Any:
    """Build an uncompiled model of the family ``params["family"]`` from resolved parameters.

    Args:
        params: resolved parameters (see :meth:`tuner.SearchSpace.suggest`); missing knobs take their
            defaults.
        input_shape: the shape of one example, without the batch axis: ``(F,)`` flat, ``(T, F)`` a
            sequence, ``(H, W, C)`` an image (see :func:`tuner.model.as_view`). The mlp flattens inputs
            of rank > 1; cnn needs a sequence or an image, rnn a sequence.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        n_outputs: output units (classes for multiclass, 1 for binary and regression).
        name: the model's name. Defaults to the family's name.

    Returns:
        An uncompiled ``keras.Model``.

    Raises:
        ConfigError: when the parameters do not fit the task, or the family or an augmentation does not fit
            the input shape.

    Examples:

        >>> model = build_model({"family": "cnn", "n_layers": 2, "conv_filters": 8}, (8, 8, 1), task="multiclass",
        ...                     n_outputs=10)
        >>> [layer.name for layer in model.layers][:6]
        ['inputs', 'conv_1', 'act_1', 'pool_1', 'conv_2', 'act_2']
    """
    import keras

    from tuner.model._augmentation import augmentation_layers

    if task not in TASKS:
        raise ConfigError([Problem("build_model", "task", f"must be one of {list(TASKS)}", value=task)])
    check_task_fit(params, task)
    family = knob_value(params, "family")
    input_shape = tuple(int(d) for d in input_shape)
    _check_family_fit(family, input_shape)
    augment = augmentation_layers(params, input_shape)

    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    for layer in augment:
        x = layer(x)
    x = _BODIES[family](params, x, len(input_shape))
    outputs = _output_layer(params, task, n_outputs)(x)
    return keras.Model(inputs, outputs, name=name or family)


def _output_layer(params: Mapping[str, Any], task: str, n_outputs: int) -> Any:
    """The output layer: the task's activation, the shared initializers and penalties, always float32."""
    import keras

    return keras.layers.Dense(
        n_outputs,
        activation=keras.activations.get(output_activation(params, task)),
        kernel_initializer=keras.initializers.get(knob_value(params, "kernel_initializer")),
        bias_initializer=keras.initializers.get(knob_value(params, "bias_initializer")),
        kernel_regularizer=_regularizer(params, "kernel"),
        bias_regularizer=_regularizer(params, "bias"),
        dtype="float32",
        name="output",
    )


def check_model_fit(params: Mapping[str, Any], input_shape: tuple[int, ...], *, source: str = "parameters") -> None:
    """What :func:`build_model` refuses about ``params`` on an input of ``input_shape``, checked without
    building anything: the family must fit the input's rank, image augmentations need an image, the shift
    a sequence.

    Raises:
        ConfigError: naming the knob, its value and the input's shape.
    """
    from tuner.model._augmentation import check_augmentation_fit

    _check_family_fit(knob_value(params, "family"), tuple(input_shape))
    check_augmentation_fit(params, tuple(input_shape), source=source)


def _check_family_fit(family: str, input_shape: tuple[int, ...]) -> None:
    rank = len(input_shape)
    rule = None
    if family not in FAMILIES:
        rule = f"must be one of {list(FAMILIES)}"
    elif family == "cnn" and rank not in (2, 3):
        rule = (
            f"needs a sequence (T, F) or image (H, W, C) input, but the model's input has shape {input_shape}; "
            "set view: sequence or image (auto picks one where the data has such a shape)"
        )
    elif family == "rnn" and rank != 2:
        rule = (
            f"needs a sequence (T, F) input, but the model's input has shape {input_shape}; set view: sequence "
            "(auto picks it where the data has a sequence or image shape)"
        )
    if rule:
        raise ConfigError([Problem("parameters", "family", rule, value=family)])


def _input_dropout(params: Mapping[str, Any], x: Any) -> Any:
    import keras

    rate = float(knob_value(params, "input_dropout"))
    return _dropout(keras.layers.Dropout, rate, "input_dropout", x)


def _dropout(kind: Any, rate: float, name: str, x: Any, variable: str | None = None) -> Any:
    """``kind(rate)`` applied to ``x`` where the rate is above 0; in a state model its rate is the variable
    ``variable`` (default: ``name``), and the layer is there where :func:`tuner.model._state.dropout_is_there`."""
    state = current_state()
    if state is not None and dropout_is_there(knob_of(variable or name), rate, state.varying):
        return state_dropout(kind, state.get(variable or name), name)(x)
    if rate <= 0:
        return x
    return kind(rate, name=name)(x)


def _dense_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """Initializers and penalties shared by dense, convolution and recurrent layers."""
    import keras

    return {
        "kernel_initializer": keras.initializers.get(knob_value(params, "kernel_initializer")),
        "bias_initializer": keras.initializers.get(knob_value(params, "bias_initializer")),
        "kernel_regularizer": _regularizer(params, "kernel"),
        "bias_regularizer": _regularizer(params, "bias"),
        "activity_regularizer": _regularizer(params, "activity"),
    }


def _normalized_activation(params: Mapping[str, Any], x: Any, suffix: Any, activation: str) -> Any:
    """``[BN before] -> Activation -> [BN after]``, the layers named ``bn_<suffix>`` and ``act_<suffix>``."""
    import keras

    bn = knob_value(params, "batch_norm")
    if bn == "before":
        x = _batch_norm(params, suffix)(x)
    x = keras.layers.Activation(keras.activations.get(activation), name=f"act_{suffix}")(x)
    state = current_state()
    if state is not None and batch_norm_is_gated(params, state.varying):  # off or after: one program
        x = state_batch_norm(
            state.get("bn_momentum"), state.get("bn_epsilon"), f"bn_{suffix}", gate=state.get("bn_gate")
        )(x)
    elif bn == "after":
        x = _batch_norm(params, suffix)(x)
    return x


def _mlp_blocks(params: Mapping[str, Any], x: Any) -> Any:
    import keras

    for i in range(1, int(knob_value(params, "n_layers")) + 1):
        x = keras.layers.Dense(
            int(layer_value(params, "units", i)), activation=None, **_dense_kwargs(params), name=f"dense_{i}"
        )(x)
        x = _normalized_activation(params, x, i, layer_value(params, "activation", i))
        x = _dropout(keras.layers.Dropout, float(layer_value(params, "dropout", i)), f"dropout_{i}", x)
    return x


def _conv_blocks(params: Mapping[str, Any], x: Any, *, rank: int) -> Any:
    import keras

    two_d = rank == 3
    conv = keras.layers.Conv2D if two_d else keras.layers.Conv1D
    pools = {
        "max": keras.layers.MaxPooling2D if two_d else keras.layers.MaxPooling1D,
        "average": keras.layers.AveragePooling2D if two_d else keras.layers.AveragePooling1D,
    }
    spatial = keras.layers.SpatialDropout2D if two_d else keras.layers.SpatialDropout1D
    pooling = knob_value(params, "pooling")
    spatial_rate = float(knob_value(params, "spatial_dropout"))
    kernel_size = int(knob_value(params, "kernel_size"))
    for i in range(1, int(knob_value(params, "n_layers")) + 1):
        x = conv(
            int(layer_value(params, "conv_filters", i)),
            kernel_size,
            padding="same",
            activation=None,
            **_dense_kwargs(params),
            name=f"conv_{i}",
        )(x)
        x = _normalized_activation(params, x, i, layer_value(params, "activation", i))
        if pooling != "none":
            x = pools[pooling](pool_size=2, padding="same", name=f"pool_{i}")(x)
        x = _dropout(spatial, spatial_rate, f"spatial_dropout_{i}", x, variable="spatial_dropout")
        x = _dropout(keras.layers.Dropout, float(layer_value(params, "dropout", i)), f"dropout_{i}", x)
    how = knob_value(params, "global_pooling")
    if how == "flatten":
        return keras.layers.Flatten(name="flatten")(x)
    if how == "average":
        return (keras.layers.GlobalAveragePooling2D if two_d else keras.layers.GlobalAveragePooling1D)(
            name="global_pool"
        )(x)
    return (keras.layers.GlobalMaxPooling2D if two_d else keras.layers.GlobalMaxPooling1D)(name="global_pool")(x)


def _recurrent_layers(params: Mapping[str, Any], x: Any) -> Any:
    import keras

    cell = knob_value(params, "cell")
    layer_class = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    n = int(knob_value(params, "n_layers"))
    if n == 0:
        return keras.layers.Flatten(name="flatten")(x)
    kwargs = _dense_kwargs(params)
    kwargs["recurrent_regularizer"] = _regularizer(params, "kernel")  # the kernel penalty covers both kernels
    bidirectional = bool(knob_value(params, "bidirectional"))
    recurrent_rate = float(knob_value(params, "recurrent_dropout"))
    for i in range(1, n + 1):
        layer = layer_class(
            int(layer_value(params, "rnn_units", i)),
            dropout=float(layer_value(params, "dropout", i)),
            recurrent_dropout=recurrent_rate,
            return_sequences=i < n,
            **kwargs,
            name=f"{cell}_{i}" if bidirectional else f"rnn_{i}",
        )
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"rnn_{i}")
        x = layer(x)
    return x


def _head(params: Mapping[str, Any], x: Any) -> Any:
    """The dense layer between the convolution or recurrent layers and the output (cnn, rnn)."""
    import keras

    units = int(knob_value(params, "head_units"))
    if units == 0:
        return x
    x = keras.layers.Dense(units, activation=None, **_dense_kwargs(params), name="head")(x)
    x = _normalized_activation(
        params, x, "head", layer_value(params, "activation", int(knob_value(params, "n_layers")))
    )
    return _dropout(keras.layers.Dropout, float(knob_value(params, "head_dropout")), "head_dropout", x)


def _batch_norm(params: Mapping[str, Any], i: Any) -> Any:
    import keras

    state = current_state()
    if state is not None:
        return state_batch_norm(state.get("bn_momentum"), state.get("bn_epsilon"), f"bn_{i}")
    return keras.layers.BatchNormalization(
        momentum=float(knob_value(params, "bn_momentum")),
        epsilon=float(knob_value(params, "bn_epsilon")),
        name=f"bn_{i}",
    )


# --------------------------------------------------------------------------------------------------
# One body per family: the layers between the (augmented) input and the output layer


def _mlp_body(params: Mapping[str, Any], x: Any, rank: int) -> Any:
    import keras

    if rank > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    return _mlp_blocks(params, _input_dropout(params, x))


def _cnn_body(params: Mapping[str, Any], x: Any, rank: int) -> Any:
    return _head(params, _conv_blocks(params, _input_dropout(params, x), rank=rank))


def _rnn_body(params: Mapping[str, Any], x: Any, rank: int) -> Any:
    return _head(params, _recurrent_layers(params, _input_dropout(params, x)))


_BODIES: dict[str, Callable[[Mapping[str, Any], Any, int], Any]] = {
    "mlp": _mlp_body,
    "cnn": _cnn_body,
    "rnn": _rnn_body,
}
"""The builders per family (every name of :data:`tuner.space.FAMILIES`), by family."""


# --------------------------------------------------------------------------------------------------
# Hyperparameters as state (issue 24): the same model, its regularization values in variables (tuner.model._state)


def state_values(params: Mapping[str, Any]) -> dict[str, float]:
    """The values a state model reads from its variables, by variable name, for resolved ``params``."""
    values = {
        name: float(knob_value(params, name))
        for name in ("input_dropout", "spatial_dropout", "head_dropout", "bn_momentum", "bn_epsilon", "learning_rate")
    }
    values["bn_gate"] = 1.0 if knob_value(params, "batch_norm") == "after" else 0.0
    constant = knob_value(params, "lr_schedule") == "constant"
    values["lr_alpha"] = 1.0 if constant else float(knob_value(params, "end_lr_factor"))
    for i in range(1, int(knob_value(params, "n_layers")) + 1):
        values[f"dropout_{i}"] = float(layer_value(params, "dropout", i))
    for prefix in ("kernel", "bias"):
        kind = knob_value(params, f"{prefix}_regularizer") or "none"
        values[f"{prefix}_l1"] = float(knob_value(params, f"{prefix}_l1")) if kind in ("l1", "l1_l2") else 0.0
        values[f"{prefix}_l2"] = float(knob_value(params, f"{prefix}_l2")) if kind in ("l2", "l1_l2") else 0.0
    return values


def build_state_model(
    params: Mapping[str, Any],
    input_shape: tuple[int, ...],
    *,
    task: str,
    n_outputs: int,
    varying: Collection[str] = (),
) -> tuple[Any, HyperparameterState]:
    """The model :func:`tuner.model.build_model` builds, with its hyperparameters in variables; and those.
    ``varying``: the knobs the study samples (:func:`tuner.model.program_signature`).

    Raises:
        ConfigError: as :func:`tuner.model.build_model`.
    """
    import keras

    state = HyperparameterState(state_values(params), varying)
    with building_with(state):
        model = build_model(params, input_shape, task=task, n_outputs=n_outputs)
    return keras.Model(model.input, state.layer(model.output), name=model.name), state
