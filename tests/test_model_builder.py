"""Tests of the model builder: the layers of a built model must match the parameters exactly.

The property tests sample parameter sets from real spaces through Optuna and read every parameter
back from ``model.layers``; the unit tests pin the cases sampling rarely reaches.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuner.errors import ConfigError
from tuner.space import KNOBS
from tuner.model import build_model
from tuner.space import SearchSpace, load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_ACTIVATION = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}
REGULARIZER_CLASS = {"l1": keras.regularizers.L1, "l2": keras.regularizers.L2, "l1_l2": keras.regularizers.L1L2}

# A space that reaches what default.yaml does not: per-layer values, batch norm before the activation,
# zero dropout on some layers, l1 kernel penalties, bias and activity penalties, input dropout. l1_l2 is
# left out here: building it fails (see test_elastic_net_penalty_has_both_factors, a known bug).
WIDE_SPACE = SearchSpace.from_dict({"parameters": {
    "n_layers": {"type": "int", "low": 0, "high": 4},
    "units": {"type": "int", "low": 1, "high": 64, "log": True, "per_layer": True},
    "activation": {"type": "categorical", "choices": ["relu", "tanh", "selu", "sigmoid", "leaky_relu"],
                   "per_layer": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.6, "step": 0.2, "per_layer": True},
    "input_dropout": {"type": "categorical", "choices": [0.0, 0.1]},
    "kernel_initializer": {"type": "categorical", "choices": ["he_uniform", "lecun_normal", "orthogonal", "zeros"]},
    "bias_initializer": {"type": "categorical", "choices": ["zeros", "ones", "random_normal"]},
    "batch_norm": {"type": "categorical", "choices": ["off", "before", "after"]},
    "bn_momentum": {"type": "float", "low": 0.5, "high": 0.999, "condition": {"batch_norm": ["before", "after"]}},
    "bn_epsilon": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True,
                   "condition": {"batch_norm": ["before", "after"]}},
    "kernel_regularizer": {"type": "categorical", "choices": ["none", "l1", "l2"]},
    "kernel_l1": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    "kernel_l2": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    "bias_regularizer": {"type": "categorical", "choices": ["none", "l1", "l2"]},
    "bias_l2": {"type": "float", "low": 0.0, "high": 0.5},
    "activity_regularizer": {"type": "categorical", "choices": ["none", "l1", "l2"]},
    "activity_l1": {"type": "float", "low": 0.0, "high": 0.5},
}}, source="wide")

_built = itertools.count()


def _get(params: Mapping[str, Any], name: str) -> Any:
    return params.get(name, KNOBS[name].default)


def _per_layer(params: Mapping[str, Any], name: str, i: int) -> Any:
    return params.get(f"{name}_{i}", _get(params, name))


def _clear_now_and_then() -> None:
    if next(_built) % 25 == 0:
        keras.backend.clear_session()


def expected_layer_names(params: Mapping[str, Any], input_shape: tuple[int, ...]) -> list[str]:
    names = ["inputs"]
    if len(input_shape) > 1:
        names.append("flatten")
    if _get(params, "input_dropout") > 0:
        names.append("input_dropout")
    bn = _get(params, "batch_norm")
    for i in range(1, _get(params, "n_layers") + 1):
        names += [f"dense_{i}"] + [f"bn_{i}"] * (bn == "before") + [f"act_{i}"] + [f"bn_{i}"] * (bn == "after")
        if _per_layer(params, "dropout", i) > 0:
            names.append(f"dropout_{i}")
    return names + ["output"]


def check_regularizer(reg: Any, params: Mapping[str, Any], prefix: str) -> None:
    kind = _get(params, f"{prefix}_regularizer")
    if kind == "none":
        assert reg is None
        return
    assert type(reg) is REGULARIZER_CLASS[kind]
    factors = {"l1": ["l1"], "l2": ["l2"], "l1_l2": ["l1", "l2"]}[kind]
    expected = {f: float(_get(params, f"{prefix}_{f}")) for f in factors}
    assert reg.get_config() == pytest.approx(expected, rel=1e-6, abs=1e-12)


def check_initializers(layer: Any, params: Mapping[str, Any]) -> None:
    kernel, bias = _get(params, "kernel_initializer"), _get(params, "bias_initializer")
    assert layer.kernel_initializer.__class__ is keras.initializers.get(kernel).__class__
    assert layer.bias_initializer.__class__ is keras.initializers.get(bias).__class__


def check_model(model: Any, params: Mapping[str, Any], *, input_shape: tuple[int, ...], task: str,
                n_outputs: int) -> None:
    """Read every parameter back from the model's layers."""
    assert [layer.name for layer in model.layers] == expected_layer_names(params, input_shape)
    assert model.input_shape == (None, *input_shape)
    assert model.output_shape == (None, n_outputs)
    if _get(params, "input_dropout") > 0:
        assert model.get_layer("input_dropout").rate == pytest.approx(_get(params, "input_dropout"))
    n_layers = _get(params, "n_layers")
    hidden = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense) and layer.name != "output"]
    assert len(hidden) == n_layers
    for i in range(1, n_layers + 1):
        dense = model.get_layer(f"dense_{i}")
        assert dense.units == _per_layer(params, "units", i)
        assert dense.activation is keras.activations.linear  # the activation is its own layer
        check_initializers(dense, params)
        check_regularizer(dense.kernel_regularizer, params, "kernel")
        check_regularizer(dense.bias_regularizer, params, "bias")
        check_regularizer(dense.activity_regularizer, params, "activity")
        act_name = _per_layer(params, "activation", i)
        act = model.get_layer(f"act_{i}")
        assert isinstance(act, keras.layers.Activation)
        assert act.activation is keras.activations.get(act_name)
        assert act.activation.__name__ == keras.activations.get(act_name).__name__
        if _get(params, "batch_norm") != "off":
            bn = model.get_layer(f"bn_{i}")
            assert isinstance(bn, keras.layers.BatchNormalization)
            assert bn.momentum == pytest.approx(_get(params, "bn_momentum"))
            assert bn.epsilon == pytest.approx(_get(params, "bn_epsilon"))
        rate = _per_layer(params, "dropout", i)
        if rate > 0:
            dropout = model.get_layer(f"dropout_{i}")
            assert isinstance(dropout, keras.layers.Dropout)
            assert dropout.rate == pytest.approx(rate)
    if _get(params, "batch_norm") == "off":
        assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    n_dropout = sum(_per_layer(params, "dropout", i) > 0 for i in range(1, n_layers + 1))
    n_dropout += _get(params, "input_dropout") > 0
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == n_dropout

    out = model.get_layer("output")
    assert isinstance(out, keras.layers.Dense)
    assert out.units == n_outputs
    wanted = _get(params, "output_activation")
    wanted = OUTPUT_ACTIVATION[task] if wanted == "auto" else wanted
    assert out.activation.__name__ == wanted
    check_initializers(out, params)
    check_regularizer(out.kernel_regularizer, params, "kernel")
    check_regularizer(out.bias_regularizer, params, "bias")
    assert out.activity_regularizer is None  # activity penalties are on hidden-layer outputs only


# -- property tests ----------------------------------------------------------------------------------
DEFAULT_SPACE = load_space("default")


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_default_space_models_match_their_parameters(seed: int) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    params = DEFAULT_SPACE.suggest(study.ask())
    before = dict(params)
    _clear_now_and_then()
    model = build_model(params, (64,), task="multiclass", n_outputs=10)
    assert params == before  # a pure function: the parameters are not touched
    check_model(model, params, input_shape=(64,), task="multiclass", n_outputs=10)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1),
       task=st.sampled_from(["binary", "multiclass", "regression"]),
       input_shape=st.sampled_from([(5,), (4, 3), (2, 3, 2)]))
def test_wide_space_models_match_their_parameters(seed: int, task: str, input_shape: tuple[int, ...]) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    params = WIDE_SPACE.suggest(study.ask())
    n_outputs = 4 if task == "multiclass" else 1
    _clear_now_and_then()
    model = build_model(params, input_shape, task=task, n_outputs=n_outputs)
    check_model(model, params, input_shape=input_shape, task=task, n_outputs=n_outputs)


# -- unit tests ---------------------------------------------------------------------------------------
def test_per_layer_units_and_dropout() -> None:
    params = {"n_layers": 3, "units": 12, "units_1": 32, "units_3": 8, "dropout_1": 0.0, "dropout_2": 0.3,
              "dropout_3": 0.1, "activation_2": "tanh"}
    model = build_model(params, (6,), task="multiclass", n_outputs=3)
    assert [model.get_layer(f"dense_{i}").units for i in (1, 2, 3)] == [32, 12, 8]  # units_2 falls back to units
    assert [layer.name for layer in model.layers] == ["inputs", "dense_1", "act_1", "dense_2", "act_2", "dropout_2",
                                                      "dense_3", "act_3", "dropout_3", "output"]
    assert model.get_layer("dropout_2").rate == pytest.approx(0.3)
    assert model.get_layer("dropout_3").rate == pytest.approx(0.1)
    assert [model.get_layer(f"act_{i}").activation.__name__ for i in (1, 2, 3)] == ["relu", "tanh", "relu"]


def test_batch_norm_placement_momentum_and_epsilon() -> None:
    for placement, order in (("before", ["dense_1", "bn_1", "act_1"]), ("after", ["dense_1", "act_1", "bn_1"])):
        model = build_model({"n_layers": 1, "batch_norm": placement, "bn_momentum": 0.9, "bn_epsilon": 1e-4},
                            (4,), task="binary", n_outputs=1)
        assert [layer.name for layer in model.layers][1:4] == order
        bn = model.get_layer("bn_1")
        assert (bn.momentum, bn.epsilon) == (pytest.approx(0.9), pytest.approx(1e-4))


def test_elastic_net_penalty_has_both_factors() -> None:
    params = {"n_layers": 1, "units": 4, "kernel_regularizer": "l1_l2", "kernel_l1": 1e-3, "kernel_l2": 1e-2}
    model = build_model(params, (3,), task="regression", n_outputs=1)
    for name in ("dense_1", "output"):
        reg = model.get_layer(name).kernel_regularizer
        assert isinstance(reg, keras.regularizers.L1L2)
        assert reg.get_config() == pytest.approx({"l1": 1e-3, "l2": 1e-2})
    model(np.ones((2, 3), dtype="float32"))
    kernels = [keras.ops.convert_to_numpy(model.get_layer(n).kernel) for n in ("dense_1", "output")]
    expected = sum(1e-3 * np.abs(k).sum() + 1e-2 * np.square(k).sum() for k in kernels)
    penalty = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert penalty == pytest.approx(expected, rel=1e-5)


def test_bias_and_activity_regularizers() -> None:
    params = {"n_layers": 2, "bias_regularizer": "l1", "bias_l1": 0.05, "activity_regularizer": "l2",
              "activity_l2": 0.02}
    model = build_model(params, (3,), task="binary", n_outputs=1)
    for i in (1, 2):
        dense = model.get_layer(f"dense_{i}")
        assert isinstance(dense.bias_regularizer, keras.regularizers.L1)
        assert dense.bias_regularizer.get_config() == pytest.approx({"l1": 0.05})
        assert isinstance(dense.activity_regularizer, keras.regularizers.L2)
        assert dense.activity_regularizer.get_config() == pytest.approx({"l2": 0.02})
        assert dense.kernel_regularizer is None
    out = model.get_layer("output")
    assert out.bias_regularizer.get_config() == pytest.approx({"l1": 0.05})
    assert out.activity_regularizer is None


def test_initializers_come_from_keras() -> None:
    model = build_model({"n_layers": 1, "kernel_initializer": "he_uniform", "bias_initializer": "ones"}, (3,),
                        task="regression", n_outputs=1)
    for name in ("dense_1", "output"):
        layer = model.get_layer(name)
        assert isinstance(layer.kernel_initializer, keras.initializers.HeUniform)
        assert isinstance(layer.bias_initializer, keras.initializers.Ones)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.bias), 1.0)


@pytest.mark.parametrize(("task", "n_outputs", "activation"),
                         [("binary", 1, "sigmoid"), ("regression", 1, "linear"), ("multiclass", 5, "softmax")])
def test_output_layer_by_task(task: str, n_outputs: int, activation: str) -> None:
    model = build_model({}, (7,), task=task, n_outputs=n_outputs)
    out = model.get_layer("output")
    assert (out.units, out.activation.__name__) == (n_outputs, activation)
    y = keras.ops.convert_to_numpy(model(np.random.default_rng(0).normal(size=(4, 7)).astype("float32")))
    assert y.shape == (4, n_outputs)
    if activation == "sigmoid":
        assert ((y > 0) & (y < 1)).all()
    if activation == "softmax":
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_defaults_give_two_hidden_layers_of_64() -> None:
    model = build_model({}, (7,), task="binary", n_outputs=1)
    assert [layer.name for layer in model.layers] == ["inputs", "dense_1", "act_1", "dense_2", "act_2", "output"]
    assert model.get_layer("dense_1").units == model.get_layer("dense_2").units == KNOBS["units"].default == 64


def test_zero_layers_is_a_linear_model() -> None:
    model = build_model({"n_layers": 0}, (7,), task="regression", n_outputs=1)
    assert [layer.name for layer in model.layers] == ["inputs", "output"]


@pytest.mark.parametrize("input_shape", [(8, 8), (4, 4, 3)])
def test_inputs_of_rank_above_one_are_flattened(input_shape: tuple[int, ...]) -> None:
    model = build_model({"n_layers": 1, "units": 5, "input_dropout": 0.2}, input_shape, task="multiclass",
                        n_outputs=3)
    assert [layer.name for layer in model.layers][:4] == ["inputs", "flatten", "input_dropout", "dense_1"]
    assert isinstance(model.get_layer("flatten"), keras.layers.Flatten)
    assert model.get_layer("dense_1").kernel.shape == (math.prod(input_shape), 5)
    assert model.get_layer("input_dropout").rate == pytest.approx(0.2)


def test_rank_one_inputs_are_not_flattened() -> None:
    model = build_model({"n_layers": 1}, (8,), task="multiclass", n_outputs=3)
    assert not any(isinstance(layer, keras.layers.Flatten) for layer in model.layers)


def test_classification_loss_on_regression_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^parameters: loss: is a classification loss but the task is regression; "
                                          r"got 'binary_crossentropy'$"):
        build_model({"loss": "binary_crossentropy"}, (4,), task="regression", n_outputs=1)


@pytest.mark.parametrize(("loss", "task", "kind"), [("BCE", "regression", "classification"),
                                                    ("BinaryCrossentropy", "regression", "classification"),
                                                    ("KLD", "binary", "multiclass"),
                                                    ("SparseCategoricalCrossentropy", "binary", "multiclass")])
def test_keras_aliases_and_class_names_of_losses_are_checked_like_their_functions(loss, task, kind) -> None:
    with pytest.raises(ConfigError, match=rf"loss: is a {kind} loss but the task is {task}; got '{loss}'"):
        build_model({"loss": loss}, (4,), task=task, n_outputs=1)


def test_multiclass_loss_on_binary_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^parameters: loss: is a multiclass loss but the task is binary; "
                                          r"got 'sparse_categorical_crossentropy'$"):
        build_model({"loss": "sparse_categorical_crossentropy"}, (4,), task="binary", n_outputs=1)


def test_output_activation_must_suit_the_task() -> None:
    with pytest.raises(ConfigError, match=r"^parameters: output_activation: must be 'softmax' \(or auto\) for a "
                                          r"multiclass task; got 'sigmoid'$"):
        build_model({"output_activation": "sigmoid"}, (4,), task="multiclass", n_outputs=3)
    with pytest.raises(ConfigError, match=r"output_activation: must not be 'softmax' for a regression task; "
                                          r"got 'softmax'"):
        build_model({"output_activation": "softmax"}, (4,), task="regression", n_outputs=1)
    model = build_model({"output_activation": "sigmoid"}, (4,), task="regression", n_outputs=1)
    assert model.get_layer("output").activation.__name__ == "sigmoid"


def test_both_task_problems_are_reported() -> None:
    with pytest.raises(ConfigError) as info:
        build_model({"loss": "mse", "output_activation": "linear"}, (4,), task="binary", n_outputs=1)
    assert [p.path for p in info.value.problems] == ["output_activation"]  # mse on binary is allowed
    with pytest.raises(ConfigError) as info:
        build_model({"loss": "categorical_crossentropy", "output_activation": "softmax"}, (4,), task="binary",
                    n_outputs=1)
    assert [p.path for p in info.value.problems] == ["loss", "output_activation"]


def test_unknown_task_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^build_model: task: must be one of \['binary', 'multiclass', "
                                          r"'regression'\]; got 'ranking'$"):
        build_model({}, (4,), task="ranking", n_outputs=1)


# -- the JAX backend --------------------------------------------------------------------------------
JAX_SCRIPT = textwrap.dedent("""
    import json
    import keras
    import numpy as np
    from tuner.model import build_model

    params = {"n_layers": 2, "units": 16, "batch_norm": "before", "bn_momentum": 0.9, "dropout": 0.2,
              "kernel_regularizer": "l2", "kernel_l2": 1e-3}
    model = build_model(params, (8,), task="multiclass", n_outputs=3)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, size=64)
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    print(json.dumps({"backend": keras.backend.backend(), "loss": history.history["loss"][0],
                      "layers": [layer.name for layer in model.layers], "n_penalties": len(model.losses)}))
""")


def test_builds_and_trains_under_jax(tmp_path: Path) -> None:
    pytest.importorskip("jax", reason="jax is not installed: the JAX backend cannot be tested")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax"
    assert math.isfinite(result["loss"]) and result["loss"] > 0
    assert result["layers"] == ["inputs", "dense_1", "bn_1", "act_1", "dropout_1", "dense_2", "bn_2", "act_2",
                                "dropout_2", "output"]
    assert result["n_penalties"] == 3  # an l2 penalty on each of the three kernels
