"""The catalogue of parameters a search space may set: their type, domain, default and meaning.

Every knob here is read by the model builder or the training step. A space file that does not name a
knob gets its default. Names of Keras objects (activations, initializers, optimizers, losses) are not
listed here: they are checked with Keras's own ``get()`` lookups.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from tuner._backend import import_keras_for_api

__all__ = [
    "CATEGORICAL",
    "FAMILIES",
    "KNOBS",
    "Knob",
    "SCALINGS",
    "TASKS",
    "VIEWS",
    "check_value",
    "knob_value",
    "reference_markdown",
]

Check = Callable[[Any], "str | None"]


@dataclasses.dataclass(frozen=True)
class Knob:
    name: str
    kind: str  # "int", "float", "str", "bool"
    default: Any
    doc: str
    check: Check | None = None
    per_layer: bool = False
    nullable: bool = False
    group: str = "model"


def _interval(low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False) -> Check:
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    text = f"must be in {lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"

    def check(value: Any) -> str | None:
        if not math.isfinite(value):
            return "must be a finite number"
        if low is not None and (value < low or (low_open and value == low)):
            return text
        if high is not None and (value > high or (high_open and value == high)):
            return text
        return None

    upper = "inf)" if high is None else f"{high}{hi}"
    check.domain = f"`{lo}{'-inf' if low is None else low}, {upper}`"  # type: ignore[attr-defined]
    return check


def _options(*options: str) -> Check:
    def check(value: Any) -> str | None:
        if value not in options:
            return f"must be one of {list(options)}"
        return None

    check.domain = ", ".join(f"`{o}`" for o in options)  # type: ignore[attr-defined]
    return check


_ASK_KERAS = contextvars.ContextVar("tuner_ask_keras_for_names", default=True)


@contextlib.contextmanager
def names_known_to_keras() -> Iterator[None]:
    """Within this block, names of Keras objects (activations, initializers, losses, optimizers) are taken as
    valid without asking Keras, which would import it (seconds). For the spaces that ship with tuner, whose
    names ``tests/test_cli_spaces.py`` checks with Keras: a typo in ``--set`` is refused before Keras starts."""
    token = _ASK_KERAS.set(False)
    try:
        yield
    finally:
        _ASK_KERAS.reset(token)


def _keras_name(module: str, *, extra: tuple[str, ...] = ()) -> Check:
    """Check a name with Keras's own ``get()`` (``keras.activations.get`` and friends)."""

    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be the name of a Keras {module[:-1]}"
        if value in extra or not _ASK_KERAS.get():
            return None
        keras = import_keras_for_api()  # quiet, as the rest of tuner imports it

        getter = getattr(keras, module).get
        try:
            obj = getter(value)
        except Exception:
            obj = None
        if obj is None:
            return f"must be a name that keras.{module}.get() knows"
        return None

    known = f"any name `keras.{module}.get()` knows"
    domain = f"{' or '.join(f'`{e}`' for e in extra)} or {known}" if extra else known
    check.domain = domain  # type: ignore[attr-defined]
    return check


def _optimizer_name(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be the name of a Keras optimizer"
    if not _ASK_KERAS.get():
        return None
    keras = import_keras_for_api()

    try:
        keras.optimizers.get(value)
    except Exception:
        return "must be a name that keras.optimizers.get() knows (adam, adamw, sgd, rmsprop, nadam, ...)"
    return None


_optimizer_name.domain = "any name `keras.optimizers.get()` knows"  # type: ignore[attr-defined]


REGULARIZER_KINDS = ("none", "l1", "l2", "l1_l2")
BN_PLACEMENTS = ("off", "before", "after")
SCHEDULES = ("constant", "exponential", "inverse_time", "linear", "cosine")
TASKS = ("binary", "multiclass", "regression")
SCALINGS = ("standard", "minmax", "none")
CATEGORICAL = ("error", "onehot")  # what a file's text columns become: refused, or one-hot encoded
OUTPUT_ACTIVATIONS = ("auto", "softmax", "sigmoid", "linear")
FAMILIES = ("mlp", "cnn", "rnn")
VIEWS = ("auto", "flat", "image", "sequence")  # "auto": the family's natural view of the data
POOLINGS = ("max", "average", "none")
GLOBAL_POOLINGS = ("flatten", "average", "max")
CELLS = ("lstm", "gru")
FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

_knobs: list[Knob] = [
    # -- architecture
    Knob(
        "family",
        "str",
        "mlp",
        "Model family: mlp (dense layers), cnn (convolution blocks, Conv1D on sequences "
        "and Conv2D on images, then a dense head) or rnn (stacked LSTM or GRU layers, then a dense head).",
        _options(*FAMILIES),
    ),
    Knob(
        "n_layers",
        "int",
        2,
        "Depth: hidden dense layers (mlp), convolution blocks (cnn) or recurrent layers "
        "(rnn); per-layer knobs resolve over it. 0 gives a linear model (mlp) or the head alone.",
        _interval(0, 64),
    ),
    Knob("units", "int", 64, "Width of a hidden dense layer (mlp).", _interval(1, 1_000_000), per_layer=True),
    Knob(
        "activation",
        "str",
        "relu",
        "Hidden activation of mlp layers, cnn blocks and the head (the last "
        "layer's), any name keras.activations.get() knows (relu, tanh, sigmoid, elu, selu, gelu, swish, "
        "leaky_relu, ...). Recurrent layers keep their cell's own.",
        _keras_name("activations"),
        per_layer=True,
    ),
    Knob(
        "kernel_initializer",
        "str",
        "glorot_uniform",
        "Kernel initializer of dense, convolution, "
        "recurrent (input kernels; recurrent kernels stay orthogonal), head and output layers, any name "
        "keras.initializers.get() knows (random_normal, random_uniform, zeros, he_normal, he_uniform, glorot_normal, "
        "glorot_uniform, lecun_normal, lecun_uniform, orthogonal, ...).",
        _keras_name("initializers"),
    ),
    Knob("bias_initializer", "str", "zeros", "Bias initializer, as kernel_initializer.", _keras_name("initializers")),
    Knob(
        "output_activation",
        "str",
        "auto",
        "Output activation; auto picks what the task implies (softmax for "
        "multiclass, sigmoid for binary, linear for regression).",
        _options(*OUTPUT_ACTIVATIONS),
    ),
    Knob("conv_filters", "int", 32, "Filters of a convolution block (cnn).", _interval(1, 4096), per_layer=True),
    Knob(
        "kernel_size",
        "int",
        3,
        "Kernel size of every convolution (cnn): length on sequences, side of a square on images; 'same' padding.",
        _interval(1, 31),
    ),
    Knob(
        "pooling",
        "str",
        "max",
        "Pooling at the end of each convolution block (cnn), size 2 with 'same' padding: max, average or none.",
        _options(*POOLINGS),
    ),
    Knob(
        "global_pooling",
        "str",
        "flatten",
        "How the last convolution block feeds the head (cnn): flatten, or "
        "global average or max pooling over positions.",
        _options(*GLOBAL_POOLINGS),
    ),
    Knob("cell", "str", "lstm", "Recurrent cell (rnn): lstm or gru.", _options(*CELLS)),
    Knob(
        "rnn_units",
        "int",
        64,
        "Units of a recurrent layer (rnn); each direction's when bidirectional.",
        _interval(1, 100_000),
        per_layer=True,
    ),
    Knob("bidirectional", "bool", False, "Wrap each recurrent layer in Bidirectional (rnn; outputs concatenated)."),
    Knob(
        "head_units",
        "int",
        64,
        "Width of the dense layer between the convolution or recurrent layers and the "
        "output (cnn, rnn), laid out like an mlp layer; 0: no head layer.",
        _interval(0, 1_000_000),
    ),
    # -- regularization
    Knob(
        "dropout",
        "float",
        0.0,
        "Dropout rate after each hidden layer (mlp) or convolution block "
        "(cnn); the input dropout of each recurrent layer (rnn).",
        _interval(0.0, 1.0, high_open=True),
        per_layer=True,
        group="regularization",
    ),
    Knob(
        "input_dropout",
        "float",
        0.0,
        "Dropout rate on the inputs.",
        _interval(0.0, 1.0, high_open=True),
        group="regularization",
    ),
    Knob(
        "spatial_dropout",
        "float",
        0.0,
        "Spatial dropout rate at the end of each convolution block (cnn only: "
        "drops whole feature maps, SpatialDropout1D/2D); a block with dropout too applies both, spatial first.",
        _interval(0.0, 1.0, high_open=True),
        group="regularization",
    ),
    Knob(
        "recurrent_dropout",
        "float",
        0.0,
        "Dropout rate on the recurrent state of each recurrent layer (rnn); the layer's input dropout is dropout.",
        _interval(0.0, 1.0, high_open=True),
        group="regularization",
    ),
    Knob(
        "head_dropout",
        "float",
        0.0,
        "Dropout rate after the head layer (cnn, rnn).",
        _interval(0.0, 1.0, high_open=True),
        group="regularization",
    ),
    Knob(
        "kernel_regularizer",
        "str",
        "none",
        "Kernel penalty: none, l1, l2 or l1_l2 (elastic net), on the "
        "kernels of dense (output included), convolution and recurrent layers (input and recurrent kernels).",
        _options(*REGULARIZER_KINDS),
        group="regularization",
    ),
    Knob(
        "kernel_l1",
        "float",
        0.01,
        "L1 factor of the kernel penalty (l1, l1_l2).",
        _interval(0.0, None),
        group="regularization",
    ),
    Knob(
        "kernel_l2",
        "float",
        0.01,
        "L2 factor of the kernel penalty (l2, l1_l2).",
        _interval(0.0, None),
        group="regularization",
    ),
    Knob(
        "bias_regularizer",
        "str",
        "none",
        "Bias penalty: none, l1, l2 or l1_l2.",
        _options(*REGULARIZER_KINDS),
        group="regularization",
    ),
    Knob("bias_l1", "float", 0.01, "L1 factor of the bias penalty.", _interval(0.0, None), group="regularization"),
    Knob("bias_l2", "float", 0.01, "L2 factor of the bias penalty.", _interval(0.0, None), group="regularization"),
    Knob(
        "activity_regularizer",
        "str",
        "none",
        "Penalty on the outputs of hidden, convolution, recurrent and head layers: none, l1, l2 or l1_l2.",
        _options(*REGULARIZER_KINDS),
        group="regularization",
    ),
    Knob(
        "activity_l1", "float", 0.01, "L1 factor of the activity penalty.", _interval(0.0, None), group="regularization"
    ),
    Knob(
        "activity_l2", "float", 0.01, "L2 factor of the activity penalty.", _interval(0.0, None), group="regularization"
    ),
    Knob(
        "batch_norm",
        "str",
        "off",
        "Batch normalization in mlp layers, cnn blocks and the head: off, before the activation or after it.",
        _options(*BN_PLACEMENTS),
        group="regularization",
    ),
    Knob(
        "bn_momentum",
        "float",
        0.99,
        "Momentum of the batch-norm moving statistics.",
        _interval(0.0, 1.0, low_open=True, high_open=True),
        group="regularization",
    ),
    Knob(
        "bn_epsilon",
        "float",
        0.001,
        "Epsilon added to the batch-norm variance.",
        _interval(0.0, 1.0, low_open=True),
        group="regularization",
    ),
    # -- augmentation: random, in training only (inference and the honest figures see the data as is)
    Knob(
        "augment_flip",
        "str",
        "none",
        "Random image flips (image view): none, horizontal, vertical or horizontal_and_vertical.",
        _options(*FLIPS),
        group="regularization",
    ),
    Knob(
        "augment_rotation",
        "float",
        0.0,
        "Random image rotation (image view), up to this fraction of a full turn "
        "either way (0.05 is 18 degrees); 0 is off.",
        _interval(0.0, 0.5),
        group="regularization",
    ),
    Knob(
        "augment_zoom",
        "float",
        0.0,
        "Random image zoom in or out (image view), up to this fraction of the size; 0 is off.",
        _interval(0.0, 1.0, high_open=True),
        group="regularization",
    ),
    Knob(
        "augment_translation",
        "float",
        0.0,
        "Random image translation (image view), up to this fraction of the height and width; 0 is off.",
        _interval(0.0, 1.0, high_open=True),
        group="regularization",
    ),
    Knob(
        "augment_contrast",
        "float",
        0.0,
        "Random contrast factor in [1 - f, 1 + f] per image (image view); 0 is off.",
        _interval(0.0, 1.0),
        group="regularization",
    ),
    Knob(
        "augment_shift",
        "float",
        0.0,
        "Random shift of a sequence along time (sequence view), up to this fraction "
        "of its length either way, zero-filled; 0 is off.",
        _interval(0.0, 0.5),
        group="regularization",
    ),
    Knob(
        "augment_noise",
        "float",
        0.0,
        "Standard deviation of Gaussian noise added to the (scaled) inputs, any view; 0 is off.",
        _interval(0.0, None),
        group="regularization",
    ),
    # -- optimization
    Knob(
        "optimizer",
        "str",
        "adam",
        "Optimizer, any name keras.optimizers.get() knows (adam, adamw, sgd, "
        "rmsprop, nadam, adamax, adagrad, lion, ...).",
        _optimizer_name,
        group="optimization",
    ),
    Knob(
        "learning_rate",
        "float",
        0.001,
        "Initial (peak) learning rate.",
        _interval(0.0, 10.0, low_open=True),
        group="optimization",
    ),
    Knob(
        "momentum", "float", 0.0, "Momentum (sgd, rmsprop).", _interval(0.0, 1.0, high_open=True), group="optimization"
    ),
    Knob("nesterov", "bool", False, "Nesterov momentum (sgd).", group="optimization"),
    Knob(
        "weight_decay",
        "float",
        None,
        "Decoupled weight decay (adamw and others); null keeps the optimizer's own.",
        _interval(0.0, None),
        nullable=True,
        group="optimization",
    ),
    Knob(
        "clipnorm",
        "float",
        None,
        "Clip each gradient to this norm; null for none.",
        _interval(0.0, None, low_open=True),
        nullable=True,
        group="optimization",
    ),
    Knob(
        "lr_schedule",
        "str",
        "constant",
        "Learning-rate schedule: constant, exponential, inverse_time, linear or cosine.",
        _options(*SCHEDULES),
        group="optimization",
    ),
    Knob(
        "decay_rate",
        "float",
        0.9,
        "Decay rate (exponential, inverse_time).",
        _interval(0.0, None, low_open=True),
        group="optimization",
    ),
    Knob(
        "decay_steps",
        "int",
        None,
        "Optimizer steps of one decay period; null: one epoch for exponential and "
        "inverse_time, the whole run for linear and cosine.",
        _interval(1, None),
        nullable=True,
        group="optimization",
    ),
    Knob("staircase", "bool", False, "Decay in discrete steps (exponential, inverse_time).", group="optimization"),
    Knob(
        "end_lr_factor",
        "float",
        0.0,
        "Final learning rate as a fraction of the initial one (linear, cosine).",
        _interval(0.0, 1.0),
        group="optimization",
    ),
    Knob(
        "warmup_epochs",
        "float",
        0.0,
        "Epochs of linear warm-up from 0 to the learning rate, before the schedule.",
        _interval(0.0, None),
        group="optimization",
    ),
    Knob(
        "loss",
        "str",
        "auto",
        "Loss; auto picks what the task implies (sparse_categorical_crossentropy, "
        "binary_crossentropy, mse). Any name keras.losses.get() knows that fits the task (categorical_crossentropy, "
        "mae, huber, ...).",
        _keras_name("losses", extra=("auto",)),
        group="optimization",
    ),
    # -- training
    Knob("batch_size", "int", 32, "Mini-batch size.", _interval(1, None), group="training"),
    Knob("epochs", "int", 20, "Maximum number of epochs.", _interval(1, 100_000), group="training"),
    Knob(
        "patience",
        "int",
        5,
        "Early-stopping patience in epochs on the honest validation loss (best weights "
        "restored); 0 turns early stopping off.",
        _interval(0, None),
        group="training",
    ),
    Knob(
        "scaling",
        "str",
        "standard",
        "Feature scaling fitted on the training split: standard, minmax or none.",
        _options(*SCALINGS),
        group="training",
    ),
    Knob(
        "view",
        "str",
        "auto",
        "Shape the model sees: flat (one vector), image (H, W, C) or sequence (T, F); auto "
        "keeps the data's own shape for mlp and picks image, else sequence, for cnn and sequence for rnn (see "
        "tuner.model.as_view).",
        _options(*VIEWS),
        group="training",
    ),
    Knob(
        "jit_compile",
        "bool",
        None,
        "Compile the train step with XLA; null (auto) compiles under JAX and not under "
        "TensorFlow or torch, where compiling costs more than it saves for small models.",
        nullable=True,
        group="training",
    ),
    Knob(
        "steps_per_execution",
        "int",
        32,
        "Batches run per compiled call: fewer Python round trips, 1.2-1.7x "
        "faster small models on CPU (benchmarks/fast_defaults.py); 1 for per-batch callbacks.",
        _interval(1, 10_000),
        group="training",
    ),
    Knob(
        "data_pipeline",
        "str",
        "auto",
        "How fit reads the in-memory training split: auto feeds TensorFlow a "
        "tf.data pipeline over the arrays (shuffle, batch, prefetch: 1.5-1.9x faster small-model epochs than "
        "arrays, benchmarks/fast_defaults.py) and other backends the arrays; arrays passes them as they are.",
        _options("auto", "arrays"),
        group="training",
    ),
    Knob(
        "precision",
        "str",
        "float32",
        "Keras dtype policy: float32, mixed_float16 (GPUs) or mixed_bfloat16; the "
        "output layer and the gap stay in float32.",
        _options(*PRECISIONS),
        group="training",
    ),
]

KNOBS: dict[str, Knob] = {k.name: k for k in _knobs}


def check_value(knob: Knob, value: Any) -> str | None:
    """Return the rule ``value`` breaks for ``knob``, or None when it is acceptable."""
    if value is None:
        return None if knob.nullable else f"must not be null ({knob.name} is a {knob.kind})"
    if knob.kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if knob.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
    elif knob.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
    elif knob.kind == "str" and not isinstance(value, str):
        return "must be a string"
    return knob.check(value) if knob.check is not None else None


_GROUP_TITLES = {
    "model": "Architecture",
    "regularization": "Regularization",
    "optimization": "Optimization",
    "training": "Training",
}


def _markdown_default(value: Any) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def reference_markdown() -> str:
    """The knob tables of docs/search-spaces.md, one per group, generated from :data:`KNOBS`."""
    out = []
    for group, title in _GROUP_TITLES.items():
        out += [f"**{title}**", "", "| knob | type | default | domain | meaning |", "|---|---|---|---|---|"]
        for knob in KNOBS.values():
            if knob.group != group:
                continue
            name = f"`{knob.name}` (per layer)" if knob.per_layer else f"`{knob.name}`"
            kind = f"{knob.kind} or null" if knob.nullable else knob.kind
            domain = "true, false" if knob.kind == "bool" else getattr(knob.check, "domain", "")
            out.append(f"| {name} | {kind} | {_markdown_default(knob.default)} | {domain} | {knob.doc} |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def layer_key(name: str, layer: int) -> str:
    """The parameter that holds a per-layer knob's value for hidden layer ``layer`` (1-based): ``units_2``."""
    return f"{name}_{layer}"


def layer_keys(names: Iterable[str], name: str) -> list[str]:
    """The per-layer parameters of knob ``name`` among ``names`` (``units_1``, ``units_2``, ...), in their order."""
    pattern = re.compile(rf"{re.escape(name)}_\d+")
    return [k for k in names if pattern.fullmatch(k)]


def knob_of(key: str) -> str:
    """The knob a parameter belongs to: ``dropout_2`` (a per-layer value) -> ``dropout``; any other name as it is."""
    return re.sub(r"_\d+$", "", key)


def knob_value(params: Mapping[str, Any], name: str) -> Any:
    """The value of knob ``name`` in resolved parameters, or the knob's default when the space leaves it out."""
    return params.get(name, KNOBS[name].default)
