"""Tests of the cnn and rnn families, data augmentation and the data views (issue 7).

The property tests sample parameter sets through Optuna from wide spaces, one per family and input
kind, and read every parameter back from ``model.layers``; the unit tests pin views, errors, the
Keras-cache loaders and the rule that augmentation never touches the honest figures; tiny real studies
run each family on digits as images and mnist1d as sequences.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import pickle
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuner.model import RandomShift, as_view, augmentation_layers, resolve_view
from tuner.data import keras_cache_dir, load_dataset
from tuner.errors import ConfigError, DataError, SpaceError
from tuner.training import evaluate_split
from tuner.space import KNOBS, reference_markdown
from tuner.model import build_model
from tuner.space import SearchSpace, load_space
from tuner.study import Study, StudySettings
from tuner.training import prepare_data, train_model

optuna.logging.set_verbosity(optuna.logging.WARNING)

ROOT = Path(__file__).resolve().parent.parent
REGULARIZER_CLASS = {"l1": keras.regularizers.L1, "l2": keras.regularizers.L2, "l1_l2": keras.regularizers.L1L2}
IMAGE, SEQUENCE = (8, 8, 1), (40, 1)

_REGULARIZATION = {
    "kernel_initializer": {"type": "categorical", "choices": ["he_uniform", "lecun_normal", "glorot_uniform"]},
    "bias_initializer": {"type": "categorical", "choices": ["zeros", "ones"]},
    "kernel_regularizer": {"type": "categorical", "choices": ["none", "l1", "l2", "l1_l2"]},
    "kernel_l1": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    "kernel_l2": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    "bias_regularizer": {"type": "categorical", "choices": ["none", "l2"]},
    "activity_regularizer": {"type": "categorical", "choices": ["none", "l1"]},
    "batch_norm": {"type": "categorical", "choices": ["off", "before", "after"]},
    "bn_momentum": {"type": "float", "low": 0.5, "high": 0.999, "condition": {"batch_norm": ["before", "after"]}},
    "input_dropout": {"type": "categorical", "choices": [0.0, 0.1]},
    "spatial_dropout": {"type": "categorical", "choices": [0.0, 0.2]},  # honoured by cnn only
    "head_units": {"type": "categorical", "choices": [0, 8]},
    "head_dropout": {"type": "categorical", "choices": [0.0, 0.3]},
    "activation": {"type": "categorical", "choices": ["relu", "tanh", "elu"], "per_layer": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.4, "step": 0.2, "per_layer": True},
    "augment_noise": {"type": "categorical", "choices": [0.0, 0.1]},
}
_IMAGE_AUGMENTATION = {
    "augment_flip": {"type": "categorical", "choices": ["none", "horizontal", "horizontal_and_vertical"]},
    "augment_rotation": {"type": "categorical", "choices": [0.0, 0.05]},
    "augment_zoom": {"type": "categorical", "choices": [0.0, 0.1]},
    "augment_translation": {"type": "categorical", "choices": [0.0, 0.2]},
    "augment_contrast": {"type": "categorical", "choices": [0.0, 0.3]},
}
_SEQUENCE_AUGMENTATION = {"augment_shift": {"type": "categorical", "choices": [0.0, 0.1]}}
_CNN = {
    "family": "cnn",
    "n_layers": {"type": "int", "low": 0, "high": 3},
    "conv_filters": {"type": "int", "low": 1, "high": 16, "per_layer": True},
    "kernel_size": {"type": "int", "low": 1, "high": 5},
    "pooling": {"type": "categorical", "choices": ["max", "average", "none"]},
    "global_pooling": {"type": "categorical", "choices": ["flatten", "average", "max"]},
}
_RNN = {
    "family": "rnn",
    "n_layers": {"type": "int", "low": 0, "high": 2},
    "cell": {"type": "categorical", "choices": ["lstm", "gru"]},
    "rnn_units": {"type": "int", "low": 1, "high": 8, "per_layer": True},
    "recurrent_dropout": {"type": "categorical", "choices": [0.0, 0.25]},
    "bidirectional": {"type": "categorical", "choices": [False, True]},
}
_MLP = {"family": "mlp", "n_layers": {"type": "int", "low": 0, "high": 2},
        "units": {"type": "int", "low": 1, "high": 8, "per_layer": True}}


def _space(*parts: Mapping[str, Any]) -> SearchSpace:
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    return SearchSpace.from_dict({"parameters": merged}, source="test")


SPACES = {
    ("cnn", IMAGE): _space(_REGULARIZATION, _IMAGE_AUGMENTATION, _CNN),
    ("cnn", SEQUENCE): _space(_REGULARIZATION, _SEQUENCE_AUGMENTATION, _CNN),
    ("rnn", SEQUENCE): _space(_REGULARIZATION, _SEQUENCE_AUGMENTATION, _RNN),
    ("mlp", IMAGE): _space(_REGULARIZATION, _IMAGE_AUGMENTATION, _MLP),
    ("mlp", SEQUENCE): _space(_REGULARIZATION, _SEQUENCE_AUGMENTATION, _MLP),
}

_built = itertools.count()


def _get(params: Mapping[str, Any], name: str) -> Any:
    return params.get(name, KNOBS[name].default)


def _per_layer(params: Mapping[str, Any], name: str, i: int) -> Any:
    return params.get(f"{name}_{i}", _get(params, name))


def _clear_now_and_then() -> None:
    if next(_built) % 20 == 0:
        keras.backend.clear_session()


# -- what a model must look like ---------------------------------------------------------------------
def _augment_names(params: Mapping[str, Any], input_shape: tuple[int, ...]) -> list[str]:
    names = []
    if len(input_shape) == 3:
        names += ["augment_flip"] * (_get(params, "augment_flip") != "none")
        names += [n for n in ("augment_rotation", "augment_zoom", "augment_translation", "augment_contrast")
                  if _get(params, n) > 0]
    if len(input_shape) == 2 and _get(params, "augment_shift") > 0:
        names.append("augment_shift")
    if _get(params, "augment_noise") > 0:
        names.append("augment_noise")
    return names


def _normalized(params: Mapping[str, Any], suffix: Any) -> list[str]:
    bn = _get(params, "batch_norm")
    return [f"bn_{suffix}"] * (bn == "before") + [f"act_{suffix}"] + [f"bn_{suffix}"] * (bn == "after")


def expected_layer_names(params: Mapping[str, Any], input_shape: tuple[int, ...]) -> list[str]:
    family, n = _get(params, "family"), _get(params, "n_layers")
    names = ["inputs", *_augment_names(params, input_shape)]
    if family == "mlp" and len(input_shape) > 1:
        names.append("flatten")
    names += ["input_dropout"] * (_get(params, "input_dropout") > 0)
    for i in range(1, n + 1):
        if family == "mlp":
            names += [f"dense_{i}", *_normalized(params, i)] + [f"dropout_{i}"] * (_per_layer(params, "dropout", i) > 0)
        elif family == "cnn":
            names += [f"conv_{i}", *_normalized(params, i)]
            names += [f"pool_{i}"] * (_get(params, "pooling") != "none")
            names += [f"spatial_dropout_{i}"] * (_get(params, "spatial_dropout") > 0)
            names += [f"dropout_{i}"] * (_per_layer(params, "dropout", i) > 0)
        else:
            names.append(f"rnn_{i}")
    if family == "cnn":
        names.append("flatten" if _get(params, "global_pooling") == "flatten" else "global_pool")
    if family == "rnn" and n == 0:
        names.append("flatten")
    if family != "mlp" and _get(params, "head_units") > 0:
        names += ["head", *_normalized(params, "head")] + ["head_dropout"] * (_get(params, "head_dropout") > 0)
    return names + ["output"]


def check_regularizer(reg: Any, params: Mapping[str, Any], prefix: str) -> None:
    kind = _get(params, f"{prefix}_regularizer")
    if kind == "none":
        assert reg is None
        return
    assert type(reg) is REGULARIZER_CLASS[kind]
    factors = {"l1": ["l1"], "l2": ["l2"], "l1_l2": ["l1", "l2"]}[kind]
    assert reg.get_config() == pytest.approx({f: float(_get(params, f"{prefix}_{f}")) for f in factors}, rel=1e-6)


def check_kernel_layer(layer: Any, params: Mapping[str, Any]) -> None:
    """Initializers and the three penalties, as on the mlp's dense layers."""
    assert layer.kernel_initializer.__class__ is keras.initializers.get(_get(params, "kernel_initializer")).__class__
    assert layer.bias_initializer.__class__ is keras.initializers.get(_get(params, "bias_initializer")).__class__
    check_regularizer(layer.kernel_regularizer, params, "kernel")
    check_regularizer(layer.bias_regularizer, params, "bias")
    check_regularizer(layer.activity_regularizer, params, "activity")


def check_normalized(model: Any, params: Mapping[str, Any], suffix: Any, activation: str) -> None:
    act = model.get_layer(f"act_{suffix}")
    assert act.activation.__name__ == keras.activations.get(activation).__name__
    if _get(params, "batch_norm") != "off":
        bn = model.get_layer(f"bn_{suffix}")
        assert isinstance(bn, keras.layers.BatchNormalization)
        assert bn.momentum == pytest.approx(_get(params, "bn_momentum"))


def check_augmentation(model: Any, params: Mapping[str, Any]) -> None:
    names = {layer.name for layer in model.layers}
    if "augment_flip" in names:
        assert model.get_layer("augment_flip").get_config()["mode"] == _get(params, "augment_flip")
    if "augment_rotation" in names:
        f = _get(params, "augment_rotation")
        assert model.get_layer("augment_rotation").get_config()["factor"] == pytest.approx((-f, f))
    if "augment_zoom" in names:
        zoom = model.get_layer("augment_zoom").get_config()["height_factor"]
        assert zoom == pytest.approx(_get(params, "augment_zoom"))
    if "augment_translation" in names:
        config = model.get_layer("augment_translation").get_config()
        f = _get(params, "augment_translation")
        assert (config["height_factor"], config["width_factor"]) == (pytest.approx(f), pytest.approx(f))
    if "augment_contrast" in names:  # a factor in [1 - f, 1 + f], not Keras's one-sided default for a scalar
        f = _get(params, "augment_contrast")
        assert model.get_layer("augment_contrast").get_config()["factor"] == pytest.approx((f, f))
    if "augment_shift" in names:
        shift = model.get_layer("augment_shift")
        assert isinstance(shift, RandomShift) and shift.factor == pytest.approx(_get(params, "augment_shift"))
    if "augment_noise" in names:
        noise = model.get_layer("augment_noise")
        assert isinstance(noise, keras.layers.GaussianNoise)
        assert noise.stddev == pytest.approx(_get(params, "augment_noise"))


def check_model(model: Any, params: Mapping[str, Any], input_shape: tuple[int, ...]) -> None:
    assert [layer.name for layer in model.layers] == expected_layer_names(params, input_shape)
    assert model.input_shape == (None, *input_shape) and model.output_shape == (None, 10)
    family, n = _get(params, "family"), _get(params, "n_layers")
    check_augmentation(model, params)
    classes = {type(layer) for layer in model.layers}
    if _get(params, "batch_norm") == "off":
        assert keras.layers.BatchNormalization not in classes
    if family != "cnn":  # spatial dropout belongs to conv blocks only, whatever the knob says
        assert not classes & {keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D}
    if family == "cnn":
        two_d = len(input_shape) == 3
        for i in range(1, n + 1):
            conv = model.get_layer(f"conv_{i}")
            assert type(conv) is (keras.layers.Conv2D if two_d else keras.layers.Conv1D)
            assert conv.filters == _per_layer(params, "conv_filters", i)
            assert conv.kernel_size == (_get(params, "kernel_size"),) * (2 if two_d else 1)
            assert conv.padding == "same" and conv.activation is keras.activations.linear
            check_kernel_layer(conv, params)
            check_normalized(model, params, i, _per_layer(params, "activation", i))
            if _get(params, "pooling") != "none":
                pool = model.get_layer(f"pool_{i}")
                kind = {"max": "MaxPooling", "average": "AveragePooling"}[_get(params, "pooling")]
                assert type(pool).__name__ == f"{kind}{'2D' if two_d else '1D'}"
            if _get(params, "spatial_dropout") > 0:
                spatial = model.get_layer(f"spatial_dropout_{i}")
                assert type(spatial) is (keras.layers.SpatialDropout2D if two_d else keras.layers.SpatialDropout1D)
                assert spatial.rate == pytest.approx(_get(params, "spatial_dropout"))
            if _per_layer(params, "dropout", i) > 0:
                assert model.get_layer(f"dropout_{i}").rate == pytest.approx(_per_layer(params, "dropout", i))
    if family == "rnn":
        assert not any(isinstance(layer, keras.layers.Dropout) and layer.name.startswith("dropout_")
                       for layer in model.layers)  # the rnn's dropout lives in the recurrent layer
        cell_class = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[_get(params, "cell")]
        for i in range(1, n + 1):
            layer = model.get_layer(f"rnn_{i}")
            inner = [layer]
            if _get(params, "bidirectional"):
                assert isinstance(layer, keras.layers.Bidirectional)
                inner = [layer.forward_layer, layer.backward_layer]
            for rnn in inner:
                assert type(rnn) is cell_class
                assert rnn.units == _per_layer(params, "rnn_units", i)
                assert rnn.dropout == pytest.approx(_per_layer(params, "dropout", i))
                assert rnn.recurrent_dropout == pytest.approx(_get(params, "recurrent_dropout"))
                assert rnn.get_config()["recurrent_dropout"] == pytest.approx(_get(params, "recurrent_dropout"))
                assert rnn.return_sequences == (i < n)
                check_kernel_layer(rnn, params)
                check_regularizer(rnn.recurrent_regularizer, params, "kernel")
    if family == "mlp":
        for i in range(1, n + 1):
            assert model.get_layer(f"dense_{i}").units == _per_layer(params, "units", i)
    if family != "mlp" and _get(params, "head_units") > 0:
        head = model.get_layer("head")
        assert head.units == _get(params, "head_units")
        check_kernel_layer(head, params)
        check_normalized(model, params, "head", _per_layer(params, "activation", n) if n else "relu")
        if _get(params, "head_dropout") > 0:
            assert model.get_layer("head_dropout").rate == pytest.approx(_get(params, "head_dropout"))


# -- property tests ------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), case=st.sampled_from(sorted(SPACES)))
def test_sampled_models_reflect_their_parameters(seed: int, case: tuple[str, tuple[int, ...]]) -> None:
    family, input_shape = case
    params = SPACES[case].suggest(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask())
    before = dict(params)
    _clear_now_and_then()
    model = build_model(params, input_shape, task="multiclass", n_outputs=10)
    assert params == before  # a pure function
    assert model.name == family
    check_model(model, params, input_shape)


# -- builder unit tests --------------------------------------------------------------------------------
def test_conv_block_order_with_batch_norm_spatial_and_plain_dropout() -> None:
    params = {"family": "cnn", "n_layers": 2, "conv_filters_1": 4, "conv_filters_2": 6, "batch_norm": "before",
              "spatial_dropout": 0.2, "dropout_1": 0.3, "dropout_2": 0.0, "pooling": "average", "head_units": 5,
              "head_dropout": 0.1}
    model = build_model(params, IMAGE, task="multiclass", n_outputs=10)
    assert [layer.name for layer in model.layers] == [
        "inputs", "conv_1", "bn_1", "act_1", "pool_1", "spatial_dropout_1", "dropout_1",
        "conv_2", "bn_2", "act_2", "pool_2", "spatial_dropout_2", "flatten", "head", "bn_head", "act_head",
        "head_dropout", "output"]
    assert model.get_layer("flatten").output.shape == (None, 2 * 2 * 6)  # 8 -> 4 -> 2, 'same' pooling


def test_pooling_never_shrinks_below_one_position() -> None:
    model = build_model({"family": "cnn", "n_layers": 6, "conv_filters": 2}, IMAGE, task="multiclass", n_outputs=10)
    assert model.get_layer("pool_6").output.shape == (None, 1, 1, 2)


def test_family_that_does_not_fit_the_input_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^parameters: family: needs a sequence \(T, F\) or image \(H, W, C\) "
                                          r"input, but the model's input has shape \(64,\).*; got 'cnn'$"):
        build_model({"family": "cnn"}, (64,), task="multiclass", n_outputs=10)
    with pytest.raises(ConfigError, match=r"^parameters: family: needs a sequence \(T, F\) input, but the model's "
                                          r"input has shape \(8, 8, 1\).*; got 'rnn'$"):
        build_model({"family": "rnn"}, IMAGE, task="multiclass", n_outputs=10)
    with pytest.raises(ConfigError, match=r"^parameters: family: must be one of \['mlp', 'cnn', 'rnn'\]; "
                                          r"got 'transformer'$"):
        build_model({"family": "transformer"}, (4,), task="multiclass", n_outputs=10)


def test_augmentation_that_does_not_fit_the_input_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        build_model({"family": "cnn", "augment_rotation": 0.1, "augment_flip": "vertical"}, SEQUENCE,
                    task="multiclass", n_outputs=10)
    assert [p.path for p in info.value.problems] == ["augment_flip", "augment_rotation"]
    assert "needs an image input (H, W, C) but the model's input has shape (40, 1)" in str(info.value)
    assert str(info.value).endswith("; got 0.1")
    with pytest.raises(ConfigError, match=r"augment_shift: needs a sequence input \(T, F\) .*shape \(64,\).*; got 0.2"):
        build_model({"augment_shift": 0.2}, (64,), task="multiclass", n_outputs=10)


def test_mlp_with_defaults_is_unchanged() -> None:
    model = build_model({}, (7,), task="binary", n_outputs=1)
    assert model.name == "mlp"
    assert [layer.name for layer in model.layers] == ["inputs", "dense_1", "act_1", "dense_2", "act_2", "output"]
    assert augmentation_layers({}, IMAGE) == [] and augmentation_layers({}, SEQUENCE) == []


def test_random_shift_moves_each_sequence_and_fills_with_zeros() -> None:
    layer = RandomShift(0.25, seed=3)
    x = np.tile(np.arange(1, 9, dtype="float32"), (64, 1))[..., None] * np.array([1.0, -1.0], dtype="float32")
    assert np.array_equal(keras.ops.convert_to_numpy(layer(x)), x)  # training not set: the identity
    assert np.array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    shifts = set()
    for row, out in zip(x, y):
        k = next(k for k in range(-2, 3) if np.array_equal(out, _shifted(row, k)))  # at most round(0.25 * 8) = 2
        shifts.add(k)
    assert len(shifts) > 1  # each example draws its own shift
    assert RandomShift.from_config(layer.get_config()).factor == 0.25
    with pytest.raises(ValueError, match=r"expected a number in \[0, 0.5\]. Received: factor=0.7"):
        RandomShift(0.7)


def _shifted(row: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros_like(row)
    if k >= 0:
        out[k:] = row[:len(row) - k]
    else:
        out[:k] = row[-k:]
    return out


# -- augmentation never reaches the honest figures -----------------------------------------------------
def _without_augmentation(model: Any, params: Mapping[str, Any], input_shape: tuple[int, ...]) -> Any:
    plain = build_model({k: v for k, v in params.items() if not k.startswith("augment_")}, input_shape,
                        task="multiclass", n_outputs=10)
    for layer in plain.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return plain


@pytest.mark.parametrize(("family", "view", "augment"), [
    ("cnn", "image", {"augment_flip": "horizontal_and_vertical", "augment_rotation": 0.2, "augment_zoom": 0.3,
                      "augment_translation": 0.3, "augment_contrast": 0.5, "augment_noise": 1.0}),
    ("rnn", "sequence", {"augment_shift": 0.5, "augment_noise": 1.0}),
])
def test_honest_train_loss_is_measured_without_augmentation(family: str, view: str, augment: dict[str, Any],
                                                             digits: Any) -> None:
    params = {"family": family, "view": view, "n_layers": 1, "conv_filters": 4, "rnn_units": 4, "head_units": 8,
              "batch_norm": "after" if family == "cnn" else "off", "epochs": 2, "patience": 0, **augment}
    result = train_model(params, digits, seed=0, gap_subset=None)
    data = prepare_data(digits, params)
    y = data.y_train
    loss = keras.losses.get("sparse_categorical_crossentropy")
    honest = evaluate_split(result.model, data.x_train, y, loss_fn=loss, task="multiclass")
    plain = evaluate_split(_without_augmentation(result.model, params, data.input_shape), data.x_train, y,
                           loss_fn=loss, task="multiclass")
    assert result.history["train_loss"][-1] == pytest.approx(honest["loss"], rel=1e-6)
    assert honest["loss"] == pytest.approx(plain["loss"], rel=1e-6)
    assert honest["accuracy"] == plain["accuracy"]
    # In training mode the augmentation layers do change the inputs: the augmentation is really there.
    x = data.x_train[:64]
    for layer in result.model.layers:
        if layer.name.startswith("augment_"):
            x = layer(x, training=True)
    assert not np.allclose(keras.ops.convert_to_numpy(x), data.x_train[:64])


# -- views ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits() -> Any:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def mnist1d(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with pytest.MonkeyPatch.context() as patch:  # the same cache folder as conftest's, set before it is
        patch.setenv("TUNER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "tuner-cache"))
        return load_dataset("mnist1d")


def test_views_of_digits(digits: Any) -> None:
    image = as_view(digits, "image")
    assert image.input_shape == (8, 8, 1) and image.x_train.shape == (len(digits.x_train), 8, 8, 1)
    np.testing.assert_array_equal(image.x_test[3, 2, :, 0], digits.x_test[3, 16:24])  # row 2 of example 3
    assert as_view(digits, "sequence").input_shape == (8, 8)
    assert as_view(digits, "flat") is digits
    assert as_view(image, "flat").input_shape == (64,)
    assert as_view(image, "sequence").input_shape == (8, 8)  # rows as steps


def test_views_of_mnist1d(mnist1d: Any) -> None:
    seq = as_view(mnist1d, "sequence")
    assert seq.input_shape == (40, 1)
    np.testing.assert_array_equal(seq.x_val[:, :, 0], mnist1d.x_val)
    with pytest.raises(DataError, match=r"^dataset 'mnist1d': view: cannot show examples of shape \(40,\) as an image "
                                        r"\(H, W, C\).*; got 'image'$"):
        as_view(mnist1d, "image")


def test_auto_view_by_family(digits: Any, mnist1d: Any) -> None:
    assert resolve_view(digits, "auto", "mlp") is None
    assert resolve_view(digits, "auto", "cnn") == "image"
    assert resolve_view(digits, "auto", "rnn") == "sequence"
    assert resolve_view(mnist1d, "auto", "cnn") == "sequence"
    assert resolve_view(mnist1d, "auto", "rnn") == "sequence"
    assert resolve_view(mnist1d, "flat", "cnn") == "flat"  # explicit: the builder says what is wrong with it


@pytest.mark.parametrize("family", ["cnn", "rnn"])
def test_tabular_data_has_no_view_for_cnn_or_rnn(family: str) -> None:
    iris = load_dataset("iris")
    with pytest.raises(DataError, match=rf"^dataset 'iris': family: needs an? (image or )?sequence view, but the "
                                        rf"examples have shape \(4,\) and no known image or sequence shape.*; "
                                        rf"got '{family}'$"):
        prepare_data(iris, {"family": family})
    with pytest.raises(DataError, match=r"dataset 'iris': view: cannot show examples of shape \(4,\) as a sequence"):
        prepare_data(iris, {"family": family, "view": "sequence"})


def test_npz_images_and_sequences(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    np.savez(tmp_path / "img.npz", x=rng.normal(size=(30, 6, 5, 2)), y=y)
    np.savez(tmp_path / "seq.npz", x=rng.normal(size=(30, 7, 3)), y=y)
    images, sequences = load_dataset(tmp_path / "img.npz"), load_dataset(tmp_path / "seq.npz")
    assert prepare_data(images, {"family": "cnn"}).input_shape == (6, 5, 2)
    assert prepare_data(images, {"family": "rnn"}).input_shape == (6, 10)
    assert prepare_data(images, {}).input_shape == (6, 5, 2)  # mlp: as it is, flattened by the model
    assert prepare_data(sequences, {"family": "cnn"}).input_shape == (7, 3)
    assert prepare_data(sequences, {"family": "cnn", "view": "image"}).input_shape == (7, 3, 1)
    assert prepare_data(sequences, {"view": "flat"}).input_shape == (21,)


def test_prepare_data_scales_on_train_then_reshapes_and_caches(digits: Any) -> None:
    params = {"family": "cnn", "scaling": "standard"}
    data = prepare_data(digits, params)
    assert data is prepare_data(digits, {"family": "cnn", "view": "image"})
    flat = prepare_data(digits, {"scaling": "standard"})  # the mlp: the data as it is, scaled
    assert flat.input_shape == (64,)
    np.testing.assert_array_equal(data.x_train.reshape(len(data.x_train), -1), flat.x_train)
    np.testing.assert_allclose(flat.x_train.mean(axis=0), 0.0, atol=1e-5)  # fitted on the training split
    assert prepare_data(digits, {"family": "mlp", "view": "auto", "scaling": "none"}) is digits


# -- knobs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "value", "rule"), [
    ("family", "transformer", "must be one of ['mlp', 'cnn', 'rnn']"),
    ("view", "cube", "must be one of ['auto', 'flat', 'image', 'sequence']"),
    ("cell", "rnn", "must be one of ['lstm', 'gru']"),
    ("pooling", "min", "must be one of ['max', 'average', 'none']"),
    ("kernel_size", 0, "must be in [1, 31]"),
    ("conv_filters", 0, "must be in [1, 4096]"),
    ("spatial_dropout", 1.0, "must be in [0.0, 1.0)"),
    ("recurrent_dropout", -0.1, "must be in [0.0, 1.0)"),
    ("head_units", -1, "must be in [0, 1000000]"),
    ("bidirectional", "yes", "must be true or false"),
    ("augment_flip", "both", "must be one of ['none', 'horizontal', 'vertical', 'horizontal_and_vertical']"),
    ("augment_rotation", 0.7, "must be in [0.0, 0.5]"),
    ("augment_shift", 0.6, "must be in [0.0, 0.5]"),
    ("augment_contrast", 1.5, "must be in [0.0, 1.0]"),
    ("augment_noise", -1.0, "must be in [0.0, inf]"),
])
def test_new_knobs_are_validated(name: str, value: Any, rule: str) -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict({"parameters": {name: value}}, source="s.yaml")
    assert str(info.value) == f"s.yaml: parameters.{name}: {rule}; got {value!r}"


def test_per_layer_knobs_of_the_families() -> None:
    space = SearchSpace.from_dict({"parameters": {
        "n_layers": 2, "conv_filters": {"type": "int", "low": 4, "high": 8, "per_layer": True},
        "rnn_units": {"type": "int", "low": 4, "high": 8, "per_layer": True}}})
    params = space.suggest(optuna.create_study().ask())
    assert {"conv_filters_1", "conv_filters_2", "rnn_units_1", "rnn_units_2"} <= set(params)


def test_the_docs_knob_tables_are_generated_from_the_knobs() -> None:
    page = (ROOT / "docs" / "search-spaces.md").read_text(encoding="utf-8")
    section = page[page.index("**Architecture**"):page.index("## Worked example")].strip() + "\n"
    assert section == reference_markdown(), "regenerate with: python -c 'from tuner.space import " \
                                            "reference_markdown; print(reference_markdown())'"


# -- keras.datasets from the Keras cache -----------------------------------------------------------------
def _tiny_images(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8), np.tile(np.arange(10, dtype=np.uint8), n // 10)


def test_mnist_loads_from_the_keras_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    rng = np.random.default_rng(0)
    (tmp_path / "datasets").mkdir()
    x, y = _tiny_images(rng, 60, (28, 28))
    x_test, y_test = _tiny_images(rng, 20, (28, 28))
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=x, y_train=y, x_test=x_test, y_test=y_test)
    assert keras_cache_dir() == tmp_path / "datasets"
    ds = load_dataset("mnist", val_fraction=0.25)
    assert (ds.task, ds.n_classes, ds.input_shape) == ("multiclass", 10, (28, 28, 1))
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (45, 15, 20)
    np.testing.assert_array_equal(np.sort(ds.x_test.reshape(20, -1), axis=0), np.sort(x_test.reshape(20, -1), axis=0))
    assert prepare_data(ds, {"family": "cnn"}).input_shape == (28, 28, 1)
    assert prepare_data(ds, {"family": "rnn"}).input_shape == (28, 28)


def test_fashion_mnist_and_cifar10_load_from_the_keras_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    rng = np.random.default_rng(1)
    fashion = tmp_path / "datasets" / "fashion-mnist"
    fashion.mkdir(parents=True)
    for prefix, n in (("train", 100), ("t10k", 20)):
        x, y = _tiny_images(rng, n, (28, 28))
        (fashion / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0" * 8 + y.tobytes()))
        (fashion / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\0" * 16 + x.tobytes()))
    ds = load_dataset("fashion_mnist")
    assert ds.input_shape == (28, 28, 1) and len(ds.x_test) == 20 and len(ds.x_train) + len(ds.x_val) == 100

    cifar = tmp_path / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name, n in [*((f"data_batch_{i}", 10) for i in range(1, 6)), ("test_batch", 10)]:
        data, labels = _tiny_images(rng, n, (3 * 32 * 32,))
        with open(cifar / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [int(v) for v in labels]}, f)
    ds = load_dataset("cifar10")
    assert ds.input_shape == (32, 32, 3) and len(ds.x_test) == 10 and ds.n_classes == 10


def test_cifar_batches_may_not_run_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cifar = tmp_path / "datasets" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        (cifar / name).write_bytes(pickle.dumps({b"data": Path("x")}))  # a class that is not an array
    with pytest.raises(DataError, match="cannot read the CIFAR-10 batches .*is not allowed in a CIFAR batch"):
        load_dataset("cifar10")


@pytest.mark.parametrize(("name", "what", "where", "url"), [
    ("mnist", "mnist.npz", "mnist.npz", "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"),
    ("fashion_mnist", "train-labels-idx1-ubyte.gz, train-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, "
                      "t10k-images-idx3-ubyte.gz", "fashion-mnist",
     "https://storage.googleapis.com/tensorflow/tf-keras-datasets/<file>"),
    ("cifar10", "the folder cifar-10-batches-py (data_batch_1 .. data_batch_5, test_batch)",
     "cifar-10-batches-py-target/cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
])
def test_missing_keras_file_fails_at_once_without_network(name: str, what: str, where: str, url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    start = time.perf_counter()
    with pytest.raises(DataError) as info:
        load_dataset(name)
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert message.startswith(f"dataset {name!r}: is not in the Keras cache, and tuner never downloads: "
                              f"place {what} at {tmp_path / 'datasets' / where} (")
    assert url in message and "; for example: mkdir -p " in message
    assert message.endswith("(did you mean 'mnist1d'? It is built in and generated locally)") == (name == "mnist")


# -- shipped spaces and tiny real studies ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["cnn_regularization", "rnn_regularization"])
def test_shipped_family_spaces_sample_buildable_models(name: str) -> None:
    space = load_space(name)
    input_shape = IMAGE if name.startswith("cnn") else (8, 8)
    for seed in range(3):
        params = space.suggest(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask())
        check_model(build_model(params, input_shape, task="multiclass", n_outputs=10), params, input_shape)


TINY = {"epochs": 1, "n_layers": 1, "batch_size": 128, "patience": 0}
STUDIES = {
    ("mlp", "digits"): ("default", {"view": "image", "augment_rotation": 0.05, "units": 16}),
    ("cnn", "digits"): ("cnn_regularization", {"conv_filters": 8}),
    ("rnn", "digits"): ("rnn_regularization", {"rnn_units": 8, "recurrent_dropout": 0.0, "bidirectional": False}),
    ("mlp", "mnist1d"): ("default", {"view": "sequence", "augment_shift": 0.1, "units": 16}),
    ("cnn", "mnist1d"): ("cnn_regularization", {"conv_filters": 8, "augment_rotation": 0.0, "augment_zoom": 0.0,
                                                "augment_translation": 0.0, "augment_shift": 0.1}),
    ("rnn", "mnist1d"): ("rnn_regularization", {"rnn_units": 8, "recurrent_dropout": 0.0, "bidirectional": False}),
}


@pytest.mark.parametrize(("family", "dataset"), sorted(STUDIES))
def test_tiny_study_per_family(family: str, dataset: str, tmp_path: Path, digits: Any, mnist1d: Any) -> None:
    space, fixed = STUDIES[family, dataset]
    data = {"digits": digits, "mnist1d": mnist1d}[dataset]
    study = Study(space, data, StudySettings(storage=f"sqlite:///{tmp_path}/o.db", tracking_uri="none", n_trials=2,
                                             pruner="none"), fixed={**TINY, **fixed})
    study.run()
    trials = study.trials()
    assert [t.state for t in trials] == ["complete", "complete"], [t.fail_reason for t in trials]
    for t in trials:
        assert 0.0 <= t.metrics["val_accuracy"] <= 1.0 and np.isfinite(t.metrics["gap_loss"])
        assert t.params.get("family", family) == family
    params = study.optuna_study.trials[0].user_attrs["resolved_params"]
    expected = {"digits": {"mlp": (8, 8, 1), "cnn": (8, 8, 1), "rnn": (8, 8)},
                "mnist1d": {"mlp": (40, 1), "cnn": (40, 1), "rnn": (40, 1)}}[dataset][family]
    assert params["family"] == family and prepare_data(data, params).input_shape == expected


def test_the_docs_mnist1d_example_space_validates() -> None:
    section = (ROOT / "docs" / "families.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(# mnist1d-cnn\.yaml.*?)```", section, re.S)
    assert block is not None
    space = SearchSpace.from_yaml(block.group(1), source="docs/families.md")
    assert space.params["family"].value == "cnn"


# -- the JAX backend ---------------------------------------------------------------------------------------
JAX_SCRIPT = textwrap.dedent("""
    import json
    import keras
    import numpy as np
    from tuner.model import build_model

    rng = np.random.default_rng(0)
    out = {"backend": keras.backend.backend(), "losses": {}}
    cases = {
        "cnn-sequence": ({"family": "cnn", "n_layers": 1, "conv_filters": 4, "batch_norm": "after",
                          "spatial_dropout": 0.1, "augment_shift": 0.2, "augment_noise": 0.1}, (12, 1)),
    }  # one compiled model: XLA compiles are slow on 2 cores; the rnn and image layers are Keras's own
    for name, (params, shape) in cases.items():
        model = build_model(params, shape, task="multiclass", n_outputs=3)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
        x = rng.normal(size=(32, *shape)).astype("float32")
        history = model.fit(x, rng.integers(0, 3, size=32), epochs=1, batch_size=32, verbose=0)
        same = bool(np.allclose(model.predict_on_batch(x), model.predict_on_batch(x)))
        out["losses"][name] = [history.history["loss"][0], same]
    shifted = keras.ops.convert_to_numpy(model.get_layer("augment_shift")(x, training=True))
    out["shifted"] = bool(not np.allclose(shifted, x) and (shifted == 0).any())
    print(json.dumps(out))
""")


def test_cnn_with_random_shift_trains_under_jax(tmp_path: Path) -> None:
    pytest.importorskip("jax", reason="jax is not installed: the JAX backend cannot be tested")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax" and result["shifted"]
    for name, (loss, deterministic_inference) in result["losses"].items():
        assert np.isfinite(loss) and loss > 0, name
        assert deterministic_inference, f"{name}: augmentation or dropout active at inference"
