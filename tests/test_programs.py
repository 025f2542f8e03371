"""Programs compiled, counted from the backend (issue 24): TensorFlow's tracing counts and JAX's compile events."""

import keras
import numpy as np
import pytest

from tuner.training._programs import count_model_programs, programs_so_far, watch_backend

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="counts TensorFlow's traces")


def _model():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dropout(0.2),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_model_traces_its_train_and_predict_steps_once_and_a_new_model_traces_them_again():
    watch_backend()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 6)).astype("float32"), rng.integers(0, 3, 100)
    model = _model()
    before = programs_so_far()["compiled"]
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)  # 100 rows: a partial last batch, traced with the others
    model.predict_on_batch(x[:10])
    assert count_model_programs(model) == 2  # the train step and the predict step, as TensorFlow counts them
    assert programs_so_far()["compiled"] == before + 2

    model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # the same object: its graphs are reused
    model.predict_on_batch(x[:10])
    assert count_model_programs(model) == 0  # the same graphs ran: nothing new to count
    assert programs_so_far()["compiled"] == before + 2

    fresh = _model()  # what a trial does today: a new model object, so new traces for the same shapes
    fresh.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert count_model_programs(fresh) == 1  # trained, never asked to predict
    assert programs_so_far()["compiled"] == before + 3
