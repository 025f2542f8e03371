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


def _fresh_then_shared(monkeypatch, configs, data, seed, **kwargs):
    """Each configuration trained on a model built afresh (no sharing, as before issue 24), then with sharing:
    the fresh metrics, the shared runs' results and the programs each traced (TensorFlow's count)."""
    from tuner.training import _reuse, clear_after_trial, train_model

    monkeypatch.setenv("TUNER_PROGRAM_CACHE", "0")  # as before: a new model, new traces, every trial
    fresh = [train_model(p, data, seed=seed).metrics for p in configs]
    monkeypatch.setenv("TUNER_PROGRAM_CACHE", "4")
    _reuse._shared.clear()
    watch_backend()
    counts, results = [], []
    for params in configs:
        before = programs_so_far()["compiled"]
        results.append(train_model(params, data, seed=seed, **kwargs))
        counts.append(programs_so_far()["compiled"] - before)
        clear_after_trial()  # as a study does after every trial: the shared steps stay instantiated
    return fresh, results, counts


def test_trials_of_a_shared_model_keep_tensorflows_runtime_caches_and_other_trials_clear_them(monkeypatch):
    """Seeding and clear_session clear TensorFlow's eager runtime caches, and a shared model's traced step is then
    instantiated again in the next trial's first epoch (0.2-0.4 s, benchmarks/first_epoch.py). A trial of a shared
    model keeps them, before it builds and after it ends; a trial of a model built afresh clears them, as before.
    The real clear is counted, not replaced."""
    from tensorflow.python import pywrap_tfe

    from tuner.data import load_dataset
    from tuner.training import _reuse, clear_after_trial, train_model

    real, calls = pywrap_tfe.TFE_ContextClearCaches, []

    def counted(handle):
        calls.append(handle)
        return real(handle)

    monkeypatch.setattr(pywrap_tfe, "TFE_ContextClearCaches", counted)
    data = load_dataset("iris")
    params = {"family": "mlp", "n_layers": 1, "units": 8, "dropout": 0.1, "epochs": 2, "patience": 0, "batch_size": 16}
    monkeypatch.setenv("TUNER_PROGRAM_CACHE", "4")
    _reuse._shared.clear()
    train_model(params, data, seed=1)  # builds the shared model: its first build seeds (and clears) as always
    clear_after_trial()
    calls.clear()
    train_model({**params, "dropout": 0.3}, data, seed=2)  # runs the shared model
    clear_after_trial()
    assert calls == []
    assert pywrap_tfe.TFE_ContextClearCaches is counted  # put back after each block
    monkeypatch.setenv("TUNER_PROGRAM_CACHE", "0")  # a model built afresh: cleared when it is seeded and after it
    train_model(params, data, seed=3)
    clear_after_trial()
    assert len(calls) >= 2


def test_trials_differing_only_in_regularization_and_learning_rate_share_one_program_and_keep_their_results(
        monkeypatch):
    """Two trials whose dropout rates, L1/L2 factors, batch-norm momentum, learning rate and initializer
    differ run one traced program (TensorFlow's count), with the results of models built afresh (issue 24)."""
    from tuner.data import load_dataset
    from tuner.training import prepare_data

    data = load_dataset("digits")
    first = {"family": "mlp", "n_layers": 2, "units": 16, "dropout": 0.1, "batch_norm": "after", "bn_momentum": 0.9,
             "kernel_regularizer": "l2", "kernel_l2": 1e-3, "learning_rate": 3e-3, "epochs": 3, "patience": 0,
             "batch_size": 64}
    second = {**first, "dropout": 0.3, "kernel_regularizer": "l1_l2", "kernel_l1": 1e-5, "bn_momentum": 0.7,
              "learning_rate": 1e-2,
              "kernel_initializer": "he_normal"}
    third = {**first, "dropout": 0.2, "kernel_l2": 1e-4, "learning_rate": 1e-3}
    fresh, results, counts = _fresh_then_shared(monkeypatch, (first, second, third), data, 5)
    # the first trial of a program builds the shared model; the others run its train and predict steps, tracing
    # nothing
    assert counts == [2, 0, 0]
    for result, expected in zip(results, fresh):
        for key in ("val_loss", "train_loss", "val_accuracy", "gap_loss"):
            assert result.metrics[key] == pytest.approx(expected[key], abs=1e-4), key

    # what the trial keeps is Keras's own model, its values plain numbers, with the trained weights
    model = results[1].model
    assert all(type(layer).__module__.startswith("keras") for layer in model.layers)
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [0.3, 0.3]
    assert model.get_layer("bn_1").momentum == 0.7
    prepared = prepare_data(data, second)
    accuracy = float(np.mean(np.argmax(model.predict(prepared.x_val, verbose=0), axis=1) == prepared.y_val))
    assert accuracy == pytest.approx(results[1].metrics["val_accuracy"], abs=1e-6)


def test_under_tensorflow_batch_norm_off_and_the_other_structural_choices_are_state_of_one_program(monkeypatch):
    """Under TensorFlow, where the study varies them, batch norm off or after (a cond on a gate, so a batch norm that
    is off computes nothing), a dropout rate of 0, a penalty of kind none and a constant rate are state of the shared
    model (a kept layer, factors of 0, a cosine decay to 1), so trials differing in them share one program (issue
    24). Every result is that of a fresh model, and the kept model has no layer or penalty that was switched off."""
    from tuner.data import load_dataset

    data = load_dataset("digits")
    base = {"family": "mlp", "n_layers": 2, "units": 16, "dropout": 0.2, "batch_norm": "after", "bn_momentum": 0.9,
            "kernel_regularizer": "l2", "kernel_l2": 1e-3, "lr_schedule": "cosine", "end_lr_factor": 0.1,
            "learning_rate": 3e-3, "epochs": 3, "patience": 0, "batch_size": 64}
    configs = (base,
               {**base, "dropout": 0.0, "batch_norm": "off", "kernel_regularizer": "none", "lr_schedule": "constant"},
               {**base, "batch_norm": "off"},
               {**base, "dropout": 0.3, "bn_momentum": 0.8, "learning_rate": 1e-2, "kernel_regularizer": "none"})
    varying = {"dropout", "batch_norm", "bn_momentum", "kernel_regularizer", "kernel_l2", "lr_schedule",
               "learning_rate"}
    fresh, results, counts = _fresh_then_shared(monkeypatch, configs, data, 3, varying=varying)
    # the first trial builds the shared model (its train and predict steps); batch norm off, dropout 0, no penalty
    # and a constant rate are state of that model: nothing is traced again
    assert counts == [2, 0, 0, 0]
    for result, expected in zip(results, fresh):
        for key in ("val_loss", "train_loss", "val_accuracy", "gap_loss"):
            assert result.metrics[key] == pytest.approx(expected[key], abs=1e-4), key
    kept = results[1].model  # the standard model: no batch normalization, dropout layer or penalty where they are off
    assert not [layer for layer in kept.layers if isinstance(layer, (keras.layers.BatchNormalization,
                                                                      keras.layers.Dropout))]
    assert [layer.kernel_regularizer for layer in kept.layers if isinstance(layer, keras.layers.Dense)] == [None] * 3
    assert results[3].model.get_layer("bn_1").momentum == 0.8


def test_under_mixed_precision_batch_norm_off_or_after_shares_a_program_and_reads_float32_hyperparameters(
        monkeypatch):
    """Under mixed_float16 the state's variables are read as float32 (not autocast to float16): batch normalization's
    momentum and epsilon inside its gate once met float32 statistics as float16 and failed ("Input 'y' of 'Mul' Op has
    type float16"). Batch norm after, then off, then without dropout share one program, with a fresh model's results
    to float16's rounding."""
    from tuner.data import load_dataset

    data = load_dataset("iris")
    base = {"family": "mlp", "n_layers": 1, "units": 8, "dropout": 0.1, "batch_norm": "after", "epochs": 2,
            "patience": 0, "batch_size": 16, "precision": "mixed_float16"}
    configs = (base, {**base, "batch_norm": "off"}, {**base, "dropout": 0.0, "bn_momentum": 0.8})
    fresh, results, counts = _fresh_then_shared(monkeypatch, configs, data, 1,
                                                varying={"batch_norm", "dropout", "bn_momentum"})
    assert counts == [2, 0, 0]
    for result, expected in zip(results, fresh):
        assert result.metrics["val_loss"] == pytest.approx(expected["val_loss"], abs=2e-2)


_JAX_SCRIPT = """
import json, os
import keras
from tuner.data import load_dataset
from tuner.training import train_model
from tuner.training._programs import programs_so_far

data = load_dataset("iris")
base = {"family": "mlp", "n_layers": 1, "units": 8, "dropout": 0.1, "lr_schedule": "cosine", "learning_rate": 1e-2,
        "batch_norm": "after", "epochs": 2, "patience": 0, "batch_size": 16}
configs = [base, {**base, "dropout": 0.3}, {**base, "dropout": 0.2, "learning_rate": 3e-2},
           {**base, "dropout": 0.0, "batch_norm": "off", "lr_schedule": "constant"}]
varying = {"dropout", "learning_rate", "batch_norm", "lr_schedule"}
out = {}
for cache in ("0", "4"):
    os.environ["TUNER_PROGRAM_CACHE"] = cache
    runs = []
    for params in configs:
        before = programs_so_far()["compiled"]
        result = train_model(params, data, seed=2, varying=varying)
        runs.append([result.metrics["val_loss"], programs_so_far()["compiled"] - before])
        keras.backend.clear_session()
    out[cache] = runs
print("RESULT", json.dumps(out))
"""


def test_under_jax_trials_differing_in_dropout_and_a_schedules_rate_share_a_program_and_results_hold(tmp_path):
    """JAX's optimizer step sees only its own variables, so a schedule reads its rate from a variable of the
    optimizer's (a shared model once read it from the model's state and failed with 'NoneType' object is not
    callable): trials differing in it, or in a dropout rate, share one program, with the results of fresh models."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", TUNER_JAX_CACHE="none")
    out = subprocess.run([sys.executable, "-c", _JAX_SCRIPT], env=env, capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = json.loads(next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])
    fresh, shared = runs["0"], runs["4"]
    assert [r[0] for r in shared] == pytest.approx([r[0] for r in fresh], abs=1e-4)
    assert shared[0][1] > 0  # the first trial of a program builds the shared model
    # another dropout rate, another rate under the schedule, dropout 0 with batch norm off and a constant rate: the
    # shared model's program, nothing compiled
    assert [r[1] for r in shared[1:]] == [0, 0, 0]
