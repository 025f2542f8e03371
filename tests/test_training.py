"""Training with the honest gap, verdicts and test-set evaluation, on real (tiny) Keras models."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from tuner.data import load_dataset
from tuner.training import DiagnosisRules, baseline_score, diagnose
from tuner.errors import ConfigError, NonFiniteLoss
from tuner.training import HonestGap
from tuner.model import build_model
from tuner.training import evaluate_test, prepare_data, train_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _without_regularizers(model: keras.Model) -> keras.Model:
    config = model.get_config()
    for layer in config["layers"]:
        for key in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
            if key in layer["config"]:
                layer["config"][key] = None
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def test_honest_train_loss_is_the_data_loss_in_inference_mode(digits):
    params = {"n_layers": 1, "units": 64, "dropout": 0.9, "kernel_regularizer": "l2", "kernel_l2": 0.01,
              "epochs": 3, "patience": 0, "batch_size": 64}
    result = train_model(params, digits, seed=1)
    hist = result.history
    # Keras's own training loss carries the penalty and dropout: far above the honest figure.
    assert hist["keras_loss"][-1] > 1.5 * hist["train_loss"][-1]
    # The honest figure equals model.evaluate on the training split with the penalty removed.
    data = prepare_data(digits, params)
    clean = _without_regularizers(result.model)
    clean.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, acc = clean.evaluate(data.x_train, data.y_train, batch_size=256, verbose=0)
    assert hist["train_loss"][-1] == pytest.approx(loss, rel=1e-5)
    assert hist["train_accuracy"][-1] == pytest.approx(acc, abs=1e-6)
    # and the gap compares like with like
    assert hist["gap_loss"][-1] == pytest.approx(hist["val_loss"][-1] - hist["train_loss"][-1])
    assert hist["gap_accuracy"][-1] == pytest.approx(hist["train_accuracy"][-1] - hist["val_accuracy"][-1])
    assert result.best_epoch == 3 and result.epochs_run == 3
    assert result.n_params == 64 * 64 + 64 + 64 * 10 + 10


def test_overparameterized_mlp_on_200_rows_overfits(digits):
    small = dataclasses.replace(digits, x_train=digits.x_train[:200], y_train=digits.y_train[:200])
    params = {"n_layers": 2, "units": 512, "epochs": 60, "patience": 0, "learning_rate": 0.001, "batch_size": 32}
    result = train_model(params, small, seed=0)
    assert result.diagnosis.verdict == "overfitting", result.diagnosis
    assert result.metrics["train_accuracy"] == pytest.approx(1.0)
    assert "gap" in result.diagnosis.reason
    assert "dropout" in result.diagnosis.suggestion


def test_one_unit_linear_model_with_tiny_learning_rate_underfits(digits):
    params = {"n_layers": 1, "units": 1, "activation": "linear", "learning_rate": 1e-5, "epochs": 3, "patience": 0}
    result = train_model(params, digits, seed=0)
    assert result.diagnosis.verdict == "underfitting", result.diagnosis
    assert "majority class" in result.diagnosis.reason
    assert "units" in result.diagnosis.suggestion


def test_sensible_model_is_a_good_fit(digits):
    params = {"n_layers": 1, "units": 64, "dropout": 0.2, "epochs": 40, "patience": 5, "learning_rate": 0.003}
    result = train_model(params, digits, seed=0)
    assert result.diagnosis.verdict == "good_fit", result.diagnosis
    assert result.metrics["val_accuracy"] > 0.93


def test_early_stopping_restores_the_best_epoch(digits):
    small = dataclasses.replace(digits, x_train=digits.x_train[:200], y_train=digits.y_train[:200])
    params = {"n_layers": 2, "units": 256, "epochs": 80, "patience": 3, "learning_rate": 0.01}
    result = train_model(params, small, seed=0)
    assert result.stopped_early
    val = result.history["val_loss"]
    assert result.best_epoch == int(np.argmin(val)) + 1
    assert result.epochs_run == result.best_epoch + 3
    assert result.metrics["val_loss"] == pytest.approx(min(val))
    # the returned model is the restored one: its honest val loss is the best epoch's
    data = prepare_data(small, params)
    pred = result.model.predict(data.x_val, verbose=0)
    loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(data.y_val, pred)))
    assert loss == pytest.approx(min(val), rel=1e-4)


def test_diverging_training_raises_non_finite_loss():
    diabetes = load_dataset("diabetes")
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss at epoch 1"):
        train_model({"optimizer": "sgd", "learning_rate": 10.0, "epochs": 3, "patience": 0}, diabetes)


def test_regression_reports_mae_and_r2_skill():
    diabetes = load_dataset("diabetes")
    result = train_model({"epochs": 30, "learning_rate": 0.01, "patience": 5}, diabetes, seed=0)
    hist = result.history
    assert {"train_mae", "val_mae", "gap_mae", "train_rmse", "val_rmse", "lr"} <= set(hist)
    assert hist["gap_mae"][-1] == pytest.approx(hist["val_mae"][-1] - hist["train_mae"][-1])
    assert result.metric == "mae"
    assert result.diagnosis.verdict in ("good_fit", "overfitting", "underfitting")
    assert "R²" in result.diagnosis.reason or "validation loss" in result.diagnosis.reason


@pytest.mark.parametrize("loss", ["huber", "Huber", "MeanSquaredError"])
def test_gap_losses_from_functions_and_loss_objects_match_evaluate(loss):
    """keras.losses.get() gives a per-example function for "huber" but a batch-reducing Loss object for
    "Huber": the honest train and validation losses must equal Keras's own evaluation either way."""
    from tuner.model import resolve_loss
    from tuner.training._train import _targets

    diabetes = load_dataset("diabetes")
    params = {"epochs": 2, "patience": 0, "loss": loss}
    result = train_model(params, diabetes, seed=0)
    data = prepare_data(diabetes, params)
    model = result.model
    model.compile(loss=resolve_loss(params, "regression"))
    for split, x, y in (("train", data.x_train, data.y_train), ("val", data.x_val, data.y_val)):
        expected = model.evaluate(x, _targets(y, "regression", loss, None), batch_size=len(x), verbose=0)
        assert result.history[f"{split}_loss"][-1] == pytest.approx(float(np.ravel(expected)[0]), rel=1e-4)


def test_binary_task_and_categorical_crossentropy():
    cancer = load_dataset("breast_cancer")
    result = train_model({"epochs": 3, "patience": 0}, cancer, seed=0)
    assert result.model.layers[-1].units == 1
    assert result.metrics["val_accuracy"] > 0.8
    digits = load_dataset("digits")
    one_hot = train_model({"epochs": 2, "patience": 0, "loss": "categorical_crossentropy"}, digits, seed=0)
    assert np.isfinite(one_hot.history["train_loss"]).all()


@pytest.mark.parametrize("loss", ["KLD", "CategoricalCrossentropy"])
def test_keras_aliases_and_class_names_of_one_hot_losses_get_one_hot_targets(digits, loss):
    result = train_model({"epochs": 2, "patience": 0, "loss": loss}, digits, seed=0)
    assert np.isfinite(result.history["train_loss"]).all() and result.metrics["val_accuracy"] > 0.5


def test_loss_that_does_not_fit_the_task_is_a_config_error(digits):
    with pytest.raises(ConfigError, match=r"loss: is a classification loss but the task is regression"):
        train_model({"loss": "binary_crossentropy"}, load_dataset("diabetes"))
    with pytest.raises(ConfigError, match=r"output_activation: must be 'softmax'"):
        train_model({"output_activation": "sigmoid"}, digits)


def test_gap_subset_is_fixed_and_seeded(digits):
    params = {"epochs": 2, "patience": 0}
    a = train_model(params, digits, seed=3, gap_subset=100)
    b = train_model(params, digits, seed=3, gap_subset=100)
    assert a.history["train_loss"] == pytest.approx(b.history["train_loss"])
    full = train_model(params, digits, seed=3, gap_subset=None)
    assert full.history["val_loss"] == pytest.approx(a.history["val_loss"], rel=1e-5)


@pytest.mark.parametrize(("schedule", "extra", "shape"), [
    ("constant", {}, "flat"),
    ("exponential", {"decay_rate": 0.5}, "falls"),
    ("inverse_time", {"decay_rate": 1.0}, "falls"),
    ("linear", {"end_lr_factor": 0.0}, "falls"),
    ("cosine", {"end_lr_factor": 0.1}, "falls"),
    ("constant", {"warmup_epochs": 3}, "rises"),
])
def test_learning_rate_schedules_move_the_logged_rate(digits, schedule, extra, shape):
    params = {"lr_schedule": schedule, "learning_rate": 0.01, "epochs": 4, "patience": 0, **extra}
    lr = train_model(params, digits, seed=0).history["lr"]
    if shape == "flat":
        assert lr == pytest.approx([0.01] * 4)
    elif shape == "falls":
        assert lr[0] > lr[-1] and all(a >= b for a, b in zip(lr, lr[1:]))
    else:
        assert lr[0] < lr[1] < lr[2] <= 0.01 + 1e-9


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "rmsprop", "nadam"])
def test_optimizers_from_keras_names(digits, optimizer):
    params = {"optimizer": optimizer, "momentum": 0.9, "nesterov": True, "weight_decay": 0.001, "epochs": 1,
              "patience": 0, "clipnorm": 1.0}
    result = train_model(params, digits, seed=0)
    opt = result.model.optimizer
    assert type(opt).__name__.lower() == optimizer
    if optimizer == "sgd":
        assert opt.nesterov and opt.momentum == pytest.approx(0.9)


def test_evaluate_test_scores_the_held_out_split(digits):
    params = {"epochs": 5, "patience": 0}
    result = train_model(params, digits, seed=0)
    scores = evaluate_test(result.model, digits, params)
    assert set(scores) == {"test_loss", "test_accuracy"}
    data = prepare_data(digits, params)
    expected = np.mean(np.argmax(result.model.predict(data.x_test, verbose=0), axis=1) == data.y_test)
    assert scores["test_accuracy"] == pytest.approx(expected)


def test_custom_builder_gets_the_same_gap_and_verdict(digits):
    calls = []

    def builder(params, input_shape, *, task, n_outputs):
        calls.append((tuple(input_shape), task, n_outputs))
        return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(n_outputs, activation="softmax")])

    result = train_model({"epochs": 2, "patience": 0}, digits, builder=builder)
    assert calls == [((64,), "multiclass", 10)]
    assert "gap_accuracy" in result.history and result.diagnosis.verdict


def test_diagnosis_rules_are_configurable():
    y = np.array([0] * 50 + [1] * 50)
    chosen = {"train_accuracy": 0.98, "val_accuracy": 0.90, "train_loss": 0.1, "val_loss": 0.3}
    hist = {"val_loss": [0.3], "train_loss": [0.1]}
    assert diagnose(task="binary", chosen=chosen, history=hist, chosen_epoch=1, y_train=y).verdict == "overfitting"
    loose = DiagnosisRules(overfit_gap=0.1)
    assert diagnose(task="binary", chosen=chosen, history=hist, chosen_epoch=1, y_train=y,
                    rules=loose).verdict == "good_fit"
    assert baseline_score(y, "binary") == 0.5
    rising = {"val_loss": [0.5, 0.4, 0.45, 0.5, 0.6], "train_loss": [0.5, 0.3, 0.2, 0.1, 0.05]}
    fine = {"train_accuracy": 0.97, "val_accuracy": 0.95, "train_loss": 0.05, "val_loss": 0.6}
    verdict = diagnose(task="binary", chosen=fine, history=rising, chosen_epoch=5, y_train=y)
    assert verdict.verdict == "overfitting" and "rose for the last 3 epochs" in verdict.reason


def test_gap_callback_rewrites_logs_for_later_callbacks(digits):
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(dict(logs))

    params = {"epochs": 2, "patience": 0}
    data = prepare_data(digits, params)
    model = build_model(params, data.input_shape, task="multiclass", n_outputs=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    gap = HonestGap((data.x_train, data.y_train), (data.x_val, data.y_val), loss="sparse_categorical_crossentropy",
                    task="multiclass")
    model.fit(data.x_train, data.y_train, epochs=2, verbose=0, callbacks=[gap, Spy()])
    assert len(seen) == 2
    assert {"keras_loss", "keras_accuracy", "train_loss", "val_loss", "gap_loss", "gap_accuracy", "lr"} <= set(seen[0])
    assert "loss" not in seen[0] and "accuracy" not in seen[0]
    assert gap.history["val_loss"] == [s["val_loss"] for s in seen]
