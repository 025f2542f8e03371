"""The honest gap's NumPy losses give Keras's own figures (issue 17: a cheaper gap pass)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tuner.training._gap import numpy_loss


@pytest.mark.parametrize("name", ["sparse_categorical_crossentropy", "categorical_crossentropy",
                                  "binary_crossentropy", "mse", "mae"])
def test_numpy_twin_matches_keras(name: str) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4)).astype("float32")
    if name == "binary_crossentropy":
        pred = (1 / (1 + np.exp(-logits[:, :1]))).astype("float32")
        pred[0, 0], pred[1, 0] = 0.0, 1.0  # clipped, as Keras clips
        y = rng.integers(0, 2, size=(50, 1)).astype("float32")
    elif name in ("mse", "mae"):
        pred, y = logits[:, :1], rng.normal(size=(50, 1)).astype("float32")
    else:
        pred = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        pred[0] = [1.0, 0.0, 0.0, 0.0]  # a zero probability of the true class: clipped to epsilon
        labels = rng.integers(0, 4, size=50)
        labels[0] = 1
        y = np.eye(4, dtype="float32")[labels] if name == "categorical_crossentropy" else labels
    fn = keras.losses.get(name)
    twin = numpy_loss(fn)
    assert twin is not None
    expected = keras.ops.convert_to_numpy(fn(y, pred))
    got = twin(np.asarray(y, dtype="float64"), pred)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_other_losses_use_keras() -> None:
    assert numpy_loss(keras.losses.get("huber")) is None
    assert numpy_loss(keras.losses.Huber()) is None
