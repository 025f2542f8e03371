"""KerasTuner code runs with one line changed: the user's compile kept, any targets, ``tuner.KerasTuner``.

The ``test_guide_*`` tests are the examples of KerasTuner's "Getting started" guide (keras.io/guides/keras_tuner/
getting_started) and of its "Tailor the search space" guide, as the guide writes them, on digits (8x8 images, a
few hundred rows) instead of MNIST; only the tuner line differs from the guide (``keras_tuner.RandomSearch`` ->
``tuner.KerasTuner``), and trials and epochs are tiny.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest
from keras import layers
from sklearn.datasets import load_digits

import tuner
from tests import _forked
from tuner import ConfigError, DataError
from tuner.data import from_arrays
from tuner.kerastuner import objective_of
from tuner.model import ExportedModel
from tuner.training import average_results, train_model


def _digits(n: int = 360):
    x, y = load_digits(return_X_y=True)
    return (x[:n] / 16.0).astype("float32").reshape(-1, 8, 8), y[:n]


def _guide_data(n: int = 360):
    """The guide's MNIST preparation on digits: images in [0, 1], one-hot targets, a validation split."""
    x, y = _digits(n)
    cut = int(n * 0.75)
    y = keras.utils.to_categorical(y, 10)
    return x[:cut], x[cut:], y[:cut], y[cut:]


# -- targets ---------------------------------------------------------------------------------------------------


def test_one_hot_multilabel_and_vector_targets_infer_their_task():
    x, y = _digits(200)
    onehot = from_arrays(x, keras.utils.to_categorical(y, 10))
    assert (onehot.task, onehot.target_format, onehot.n_outputs) == ("multiclass", "onehot", 10)
    assert onehot.class_names == [str(i) for i in range(10)] and onehot.y_train.ndim == 1  # class indices
    multilabel = from_arrays(x, np.stack([y % 2, y > 4, y == 0], axis=1).astype("float32"))
    assert (multilabel.task, multilabel.target_format, multilabel.n_outputs) == ("binary", "multilabel", 3)
    vector = from_arrays(x, np.stack([y / 9.0, np.sqrt(y)], axis=1))
    assert (vector.task, vector.target_format, vector.n_outputs) == ("regression", "vector", 2)
    with pytest.raises(DataError, match=r"y: task='regression' does not fit onehot|y: task='binary' does not fit"):
        from_arrays(x, keras.utils.to_categorical(y, 10), task="binary")


def _compiled(loss, outputs: int, activation: str, metrics=()):
    def builder(params, input_shape, *, task, n_outputs):
        model = keras.Sequential([keras.Input(input_shape), layers.Flatten(), layers.Dense(16, activation="relu"),
                                  layers.Dense(outputs, activation=activation)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss, metrics=list(metrics))
        return model

    return builder


def test_a_compiled_model_keeps_its_loss_metrics_and_optimizer_and_the_gap_uses_them():
    x, y = _digits(300)
    data = from_arrays(x, keras.utils.to_categorical(y, 10))
    smoothed = keras.losses.CategoricalCrossentropy(label_smoothing=0.2)
    builder = _compiled(smoothed, 10, "softmax", [keras.metrics.AUC(name="auc"), "accuracy"])
    result = train_model({"epochs": 2, "patience": 0, "scaling": "none"}, data, builder=builder)
    model = result.model
    assert model.loss is smoothed and isinstance(model.optimizer, keras.optimizers.SGD)
    # the honest validation loss is the user's loss (label smoothing included), in inference mode
    y_val = keras.utils.to_categorical(data.y_val, 10)
    expected = float(smoothed(y_val, model.predict(data.x_val, verbose=0)))
    assert result.history["val_loss"][-1] == pytest.approx(expected, rel=1e-4)
    assert {"val_auc", "train_auc", "gap_auc", "val_accuracy"} <= set(result.metrics)
    assert 0.5 < result.metrics["val_auc"] <= 1.0


def test_integer_labels_keep_a_from_logits_loss():
    x, y = _digits(240)
    data = from_arrays(x, y)
    logits = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    result = train_model({"epochs": 1, "patience": 0, "scaling": "none"}, data,
                         builder=_compiled(logits, 10, "linear", ["accuracy"]))
    assert result.model.loss is logits  # tuner's own sparse_categorical_crossentropy would read logits as probabilities
    expected = float(logits(data.y_val, result.model.predict(data.x_val, verbose=0)))
    assert result.history["val_loss"][-1] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(("targets", "loss", "outputs", "activation"), [
    ("multilabel", "binary_crossentropy", 3, "sigmoid"),
    ("vector", "mse", 2, "linear"),
])
def test_multilabel_and_vector_targets_train_with_the_users_loss(targets, loss, outputs, activation):
    x, y = _digits(240)
    rows = (np.stack([y % 2, y > 4, y == 0], axis=1).astype("float32") if targets == "multilabel"
            else np.stack([y / 9.0, np.sqrt(y)], axis=1))
    data = from_arrays(x, rows)
    result = train_model({"epochs": 1, "patience": 0, "scaling": "none"}, data,
                         builder=_compiled(loss, outputs, activation))
    assert np.isfinite(result.metrics["val_loss"]) and result.model.output_shape[-1] == outputs
    assert result.diagnosis.verdict
    predicted = ExportedModel(result.model, data.preprocessing, task=data.task).predict(x[:4])
    assert predicted.shape == (4, outputs)  # a row per example, as the targets were given
    if targets == "multilabel":
        assert set(np.unique(predicted)) <= {0, 1}


def test_executions_of_one_configuration_are_averaged():
    x, y = _digits(200)
    data = from_arrays(x, y)
    builder = _compiled("sparse_categorical_crossentropy", 10, "softmax", ["accuracy"])
    runs = [train_model({"epochs": 2, "patience": 0, "scaling": "none"}, data, seed=seed, builder=builder)
            for seed in (0, 1)]
    mean = average_results(runs, data)
    assert runs[0].metrics["val_loss"] != runs[1].metrics["val_loss"]
    assert mean.metrics["val_loss"] == pytest.approx((runs[0].metrics["val_loss"] + runs[1].metrics["val_loss"]) / 2)
    assert mean.history["gap_accuracy"][1] == pytest.approx(np.mean([r.history["gap_accuracy"][1] for r in runs]))
    assert mean.wall_time == pytest.approx(runs[0].wall_time + runs[1].wall_time) and mean.diagnosis.verdict


# -- the front door's arguments ------------------------------------------------------------------------------


def _build(hp):
    model = keras.Sequential([layers.Flatten(), layers.Dense(hp.Int("units", 16, 32, step=16), activation="relu"),
                              layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def test_objectives_map_to_tuner_names_and_directions():
    assert objective_of("val_accuracy") == (("val_accuracy",), ("maximize",))
    assert objective_of("loss") == (("train_loss",), ("minimize",))
    assert objective_of(keras_tuner.Objective("val_custom_metric", direction="max")) == (("val_custom_metric",),
                                                                                          ("maximize",))
    assert objective_of([keras_tuner.Objective("val_auc", "max"), "val_loss"]) == (
        ("val_auc", "val_loss"), ("maximize", "minimize"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"loss": "mse"}, "KerasTuner: loss: is not supported: compile the model in build(hp)"),
    ({"max_epochs": 10}, "KerasTuner: max_epochs: is not supported: Hyperband's budget: pass pruner='hyperband'"),
    ({"distribution_strategy": object()}, "KerasTuner: distribution_strategy: is not supported: run trials in"),
    ({"max_consecutive_failed_trials": 1}, "KerasTuner: max_consecutive_failed_trials: is not supported"),
    ({"objective": 3}, "KerasTuner: objective: must be a metric name"),
    ({"colour": 1}, "KerasTuner: colour: is not an argument of KerasTuner"),
])
def test_arguments_that_mean_nothing_here_are_refused_in_one_line(tmp_path, kwargs, message):
    with pytest.raises(ConfigError) as err:
        tuner.KerasTuner(_build, directory=tmp_path, **kwargs)
    assert str(err.value).startswith(message) and len(str(err.value).splitlines()) == 1, str(err.value)


def _no_model(hp):
    hp.Int("units", 16, 32)


def _wrong_loss(hp):
    model = keras.Sequential([layers.Flatten(), layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.mark.parametrize(("hypermodel", "objective", "message"), [
    (_build, "val_auc", "--objective: objective: must be one of"),
    (_no_model, "val_accuracy", "hypermodel: build(hp): must return a keras.Model, but it returned nothing (None)"),
    (_wrong_loss, "val_loss", "build(hp): loss: does not fit the targets: onehot targets of shape (2, 10) and "
                              "outputs of shape (2, 3)"),
])
def test_bad_input_stops_in_one_line_before_the_study_exists(tmp_path, hypermodel, objective, message):
    x_train, x_val, y_train, y_val = _guide_data(120)
    with pytest.raises(ConfigError) as err:
        tune = tuner.KerasTuner(hypermodel, objective=objective, max_trials=1, directory=tmp_path, project_name="bad")
        tune.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))
    assert message in str(err.value) and len(str(err.value).splitlines()) == 1, str(err.value)
    assert "val_auc" in str(err.value) or objective != "val_auc"
    assert not (tmp_path / "optuna.db").exists()


def test_search_refuses_a_dataset_and_unknown_fit_arguments(tmp_path):
    tune = tuner.KerasTuner(_build, max_trials=1, directory=tmp_path)
    with pytest.raises(ConfigError, match=r"search\(y=\): is required: x and y must be arrays"):
        tune.search([1, 2, 3])
    with pytest.raises(ConfigError, match=r"search\(sample_weight=\): is not supported"):
        tune.search(np.zeros((4, 8, 8)), np.zeros(4), sample_weight=np.ones(4))
    with pytest.raises(ConfigError, match="search: must run first"):
        tune.get_best_hyperparameters()


class _CtrlC(keras.callbacks.Callback):
    """Presses Ctrl-C once, at the end of the first epoch it sees."""

    pressed = False

    def on_epoch_end(self, epoch, logs=None):
        if not _CtrlC.pressed:
            _CtrlC.pressed = True
            raise KeyboardInterrupt


@pytest.mark.slow
def test_ctrl_c_keeps_finished_trials_and_the_same_search_resumes(tmp_path):
    x_train, x_val, y_train, y_val = _guide_data(160)

    def tune():
        return tuner.KerasTuner(_build, objective="val_accuracy", max_trials=2, directory=tmp_path,
                                project_name="interrupted", tracking_uri="none")

    with pytest.raises(KeyboardInterrupt):
        tune().search(x_train, y_train, epochs=1, validation_data=(x_val, y_val), callbacks=[_CtrlC()])
    again = tune()
    again.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val), callbacks=[_CtrlC()])
    states = [(t.state, t.fail_reason) for t in again.study.trials()]
    assert states[0] == ("fail", "interrupted") and [s for s, _ in states[1:]] == ["complete", "complete"]


class _FailsOnce(keras.callbacks.Callback):
    """Raises an error once, at the end of the first epoch it sees (a flaky trial)."""

    failed = False

    def on_epoch_end(self, epoch, logs=None):
        if not _FailsOnce.failed:
            _FailsOnce.failed = True
            raise RuntimeError("a flaky device")


@pytest.mark.slow
def test_max_retries_per_trial_trains_a_failing_trial_again(tmp_path):
    x_train, x_val, y_train, y_val = _guide_data(160)
    tune = tuner.KerasTuner(_build, objective="val_accuracy", max_trials=1, max_retries_per_trial=1,
                            directory=tmp_path, project_name="flaky", tracking_uri="none")
    tune.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val), callbacks=[_FailsOnce()])
    assert _FailsOnce.failed and [t.state for t in tune.study.trials()] == ["complete"]


@pytest.mark.slow
def test_overwrite_starts_the_study_and_its_mlflow_runs_again(tmp_path):
    """``overwrite=True``, as KerasTuner deletes its project folder: the Optuna study starts from no trials, and
    the runs of the earlier search go to MLflow's trash, so the experiment shows one search's runs."""
    from mlflow import MlflowClient

    x_train, x_val, y_train, y_val = _guide_data(160)
    for _ in range(2):
        tune = tuner.KerasTuner(_build, objective="val_accuracy", max_trials=1, overwrite=True,
                                directory=tmp_path, project_name="again")
        tune.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))
        assert [t.number for t in tune.study.trials()] == [0]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("again")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2, [r.data.tags.get("mlflow.runName") for r in runs]  # the study's run and its trial's
    assert len(client.search_runs([experiment.experiment_id], run_view_type=2)) == 2  # the first search's, deleted


BAD_MODEL_FILE = """
import keras

def build(hp):
    hp.Int("units", 16, 32)  # forgets to return the model

def accuracy_only(hp):
    model = keras.Sequential([keras.layers.Dense(hp.Int("units", 16, 32)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

def wrong_loss(hp):  # one output per class, a loss for one 0/1 target per output
    model = keras.Sequential([keras.layers.Dense(hp.Int("units", 16, 32)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model
"""


@pytest.mark.slow
@pytest.mark.parametrize(("model", "extra", "message"), [
    ("build", [], "build(hp): must return a keras.Model, but it returned nothing (None)"),
    ("accuracy_only", ["--objective", "val_auc"], "--objective: objective: must be one of"),
    ("wrong_loss", [], "build(hp): loss: does not fit the targets"),
])
def test_cli_bad_model_exits_2_in_one_line_and_writes_nothing(tmp_path, model, extra, message):
    (tmp_path / "models.py").write_text(BAD_MODEL_FILE)
    proc = _forked.run(["study", "--model", f"models.py:{model}", "--n-trials", "1", "--tracking-uri", "none", *extra],
                       cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "mlruns" / "optuna.db").exists()


# -- KerasTuner's guide, one line changed ----------------------------------------------------------------------


@pytest.mark.slow
def test_guide_build_model_with_conditional_layers_runs_and_resumes(tmp_path, capsys):
    x_train, x_val, y_train, y_val = _guide_data()

    def build_model(hp):
        model = keras.Sequential()
        model.add(layers.Flatten())
        # Tune the number of layers.
        for i in range(hp.Int("num_layers", 1, 3)):
            model.add(
                layers.Dense(
                    # Tune number of units separately.
                    units=hp.Int(f"units_{i}", min_value=32, max_value=512, step=32),
                    activation=hp.Choice("activation", ["relu", "tanh"]),
                )
            )
        if hp.Boolean("dropout"):
            model.add(layers.Dropout(rate=0.25))
        model.add(layers.Dense(10, activation="softmax"))
        learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    tuner_ = tuner.KerasTuner(  # the guide: keras_tuner.RandomSearch(
        hypermodel=build_model,
        objective="val_accuracy",
        max_trials=2,
        executions_per_trial=2,
        overwrite=True,
        directory=tmp_path / "my_dir",
        project_name="helloworld",
    )
    tuner_.search_space_summary()
    tuner_.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))
    models = tuner_.get_best_models(num_models=2)
    best_model = models[0]
    assert best_model.predict(x_val[:4], verbose=0).shape == (4, 10)
    labels = tuner_.study.best_model().predict(x_val[:4])  # the exported model: one-hot rows -> class labels 0..9
    assert labels.shape == (4,) and set(labels.tolist()) <= set(range(10))
    tuner_.results_summary()
    best_hps = tuner_.get_best_hyperparameters(5)
    assert isinstance(best_hps[0], keras_tuner.HyperParameters) and len(best_hps) == 2
    model = build_model(best_hps[0])
    model.fit(x=np.concatenate((x_train, x_val)), y=np.concatenate((y_train, y_val)), epochs=1, verbose=0)
    out = capsys.readouterr().out
    assert "Search space summary" in out and "num_layers (Int)" in out and "Trial 0 summary" in out
    assert "verdict:" in out
    trials = tuner_.study.trials()
    assert all(t.state == "complete" and "gap_accuracy" in t.metrics and t.verdict for t in trials)
    assert all(t.mlflow_run_id for t in trials)  # each trial is an MLflow run in my_dir/mlflow.db
    assert {"num_layers", "units_0", "activation", "dropout", "lr"} <= set(trials[0].params)

    # the same script again (overwrite=False): the study resumes up to the new total
    again = tuner.KerasTuner(hypermodel=build_model, objective="val_accuracy", max_trials=3,
                             directory=tmp_path / "my_dir", project_name="helloworld")
    again.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))
    assert [t.number for t in again.study.trials() if t.state == "complete"] == [0, 1, 2]
    report = _forked.run(["report", "helloworld", "--storage", f"sqlite:///{tmp_path / 'my_dir' / 'optuna.db'}"],
                         cwd=tmp_path)
    assert report.returncode == 0 and "helloworld" in report.stdout, report.stderr[-2000:]


@pytest.mark.slow
def test_guide_hypermodel_whose_fit_tunes_normalize_and_shuffle(tmp_path):
    x_train, x_val, y_train, y_val = _guide_data()

    class MyHyperModel(keras_tuner.HyperModel):
        def build(self, hp):
            model = keras.Sequential()
            model.add(layers.Flatten())
            model.add(
                layers.Dense(
                    units=hp.Int("units", min_value=32, max_value=512, step=32),
                    activation="relu",
                )
            )
            model.add(layers.Dense(10, activation="softmax"))
            model.compile(
                optimizer="adam",
                loss="categorical_crossentropy",
                metrics=["accuracy"],
            )
            return model

        def fit(self, hp, model, x, y, **kwargs):
            if hp.Boolean("normalize"):
                x = layers.Normalization()(x)
            return model.fit(
                x,
                y,
                # Tune whether to shuffle the data in each epoch.
                shuffle=hp.Boolean("shuffle"),
                **kwargs,
            )

    tuner_ = tuner.KerasTuner(
        MyHyperModel(),
        objective="val_accuracy",
        max_trials=2,
        overwrite=True,
        directory=tmp_path / "my_dir",
        project_name="tune_hypermodel",
        tracking_uri="none",  # (not in the guide: no MLflow store, to keep the test short)
    )
    tuner_.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))
    hypermodel = MyHyperModel()
    best_hp = tuner_.get_best_hyperparameters()[0]
    model = hypermodel.build(best_hp)
    hypermodel.fit(best_hp, model, x_train, y_train, epochs=1, verbose=0)
    assert {"units", "normalize", "shuffle"} <= set(best_hp.values)
    assert tuner_.get_best_models(1)[0].predict(x_val[:3], verbose=0).shape == (3, 10)


def _regression_data():
    rng = np.random.default_rng(0)
    x, y = load_digits(return_X_y=True)
    return (x[:200] / 16.0).astype("float32"), (y[:200] / 9.0).reshape(-1, 1), rng


class CustomMetric(keras.metrics.Metric):  # the guide's, with keras.ops for tf (any backend)
    def __init__(self, **kwargs):
        # Specify the name of the metric as "custom_metric".
        super().__init__(name="custom_metric", **kwargs)
        self.sum = self.add_weight(name="sum", initializer="zeros")
        self.count = self.add_weight(name="count", dtype="int32", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = keras.ops.square(y_pred - y_true)
        count = keras.ops.shape(y_true)[0]
        self.sum.assign_add(keras.ops.sum(values))
        self.count.assign_add(count)

    def result(self):
        return self.sum / keras.ops.cast(self.count, "float32")

    def reset_state(self):
        self.sum.assign(0)
        self.count.assign(0)


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["built_in", "custom"])
def test_guide_regressor_with_a_metric_as_the_objective(tmp_path, metric):
    x, y, _ = _regression_data()
    compiled = [keras.metrics.MeanAbsoluteError()] if metric == "built_in" else [CustomMetric()]
    objective = ("val_mean_absolute_error" if metric == "built_in" else "val_custom_metric")

    def build_regressor(hp):
        model = keras.Sequential(
            [
                layers.Dense(units=hp.Int("units", 32, 128, 32), activation="relu"),
                layers.Dense(units=1),
            ]
        )
        model.compile(
            optimizer="adam",
            loss="mean_squared_error",
            # Objective is one of the metrics.
            metrics=[type(m)() for m in compiled],
        )
        return model

    tuner_ = tuner.KerasTuner(
        hypermodel=build_regressor,
        # The objective name and direction.
        objective=keras_tuner.Objective(objective, direction="min"),
        max_trials=2,
        overwrite=True,
        directory=tmp_path / "my_dir",
        project_name=f"{metric}_metrics",
        tracking_uri="none",  # (not in the guide: no MLflow store, to keep the test short)
    )
    tuner_.search(x=x[:150], y=y[:150], validation_data=(x[150:], y[150:]))
    tuner_.results_summary()
    study = tuner_.study
    assert study.settings.objective == (objective,) and study.directions == ["minimize"]
    best = study.best_trial()
    assert best.values[0] == pytest.approx(best.metrics[objective]) and f"gap_{objective[4:]}" in best.metrics
    assert tuner_.get_best_models(1)[0].predict(x[:2], verbose=0).shape == (2, 1)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["fixed", "override_only"])
def test_guide_tailored_search_space(tmp_path, case):
    x_train, x_val, y_train, y_val = _guide_data(240)

    def build_model(hp):
        model = keras.Sequential()
        model.add(layers.Flatten())
        model.add(
            layers.Dense(
                units=hp.Int("units", min_value=32, max_value=128, step=32),
                activation=hp.Choice("activation", ["relu", "tanh"]),
            )
        )
        if hp.Boolean("dropout"):
            model.add(layers.Dropout(rate=0.25))
        model.add(layers.Dense(10, activation="softmax"))
        learning_rate = hp.Float("learning_rate", min_value=1e-4, max_value=1e-2, sampling="log")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    hp = keras_tuner.HyperParameters()
    if case == "fixed":  # fix one value, tune the rest
        hp.Fixed("learning_rate", value=1e-4)
        tune_new_entries = True
    else:  # override one range, keep the rest at their defaults
        hp.Int("units", min_value=64, max_value=96, step=32)
        tune_new_entries = False
    tuner_ = tuner.KerasTuner(
        build_model,
        hyperparameters=hp,
        tune_new_entries=tune_new_entries,
        objective="val_accuracy",
        max_trials=2,
        overwrite=True,
        directory=tmp_path / "my_dir",
        project_name="search_a_few",
        tracking_uri="none",  # (not in the guide: no MLflow store, to keep the test short)
    )
    tuner_.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))
    values = [t.params for t in tuner_.study.trials()]
    hps = tuner_.get_best_hyperparameters()[0].values
    if case == "fixed":
        assert hps["learning_rate"] == 1e-4
    else:
        assert all(v["units"] in (64, 96) for v in values)
        assert not any({"activation", "dropout", "learning_rate"} & set(v) for v in values)  # their defaults
        assert set(hps) == {"units"}
        assert build_model(tuner_.get_best_hyperparameters()[0]).layers[-1].units == 10
    assert tuner_.get_best_models(1)[0].predict(x_val[:2], verbose=0).shape == (2, 10)


# -- KerasTuner releases -----------------------------------------------------------------------------------------

OLDEST_KERAS_TUNER = "1.4.6"  # 1.4.0-1.4.5 import keras_core under Keras 3 and fail before any tuner code runs

RELEASE_SCRIPT = """
import sys
import keras, keras_tuner, numpy as np
import tuner
from sklearn.datasets import load_digits

x, y = load_digits(return_X_y=True)
x, y = (x[:160] / 16).astype("float32"), keras.utils.to_categorical(y[:160], 10)

def build(hp):
    kind = hp.Choice("kind", ["narrow", "wide"])
    with hp.conditional_scope("kind", ["wide"]):
        width = hp.Int("wide_units", 32, 64, step=32) if kind == "wide" else 8
    model = keras.Sequential([keras.layers.Dense(width, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model

t = tuner.KerasTuner(build, objective="val_accuracy", max_trials=1, directory=sys.argv[1], tracking_uri="none")
t.search(x, y, epochs=1, validation_split=0.25)
hp = t.get_best_hyperparameters()[0]
assert isinstance(hp, keras_tuner.HyperParameters), type(hp)
assert t.get_best_models(1)[0].predict(x[:2], verbose=0).shape == (2, 10)
print(keras_tuner.__version__, sorted(t.study.space.model_names), "tensorboard" in sys.modules)
"""


@pytest.mark.slow
def test_the_oldest_supported_keras_tuner_release_in_a_venv(tmp_path):
    """The oldest KerasTuner release tuner supports, installed without dependencies in a temporary venv that reads
    the rest from this environment (a .pth file); the newest release is the one every other test runs with."""
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    (site / "shared.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                          f"keras-tuner=={OLDEST_KERAS_TUNER}"], capture_output=True, text=True, timeout=300)
    if pip.returncode != 0:
        pytest.skip(f"the package index is out of reach: {pip.stderr.strip().splitlines()[-1:]}")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", RELEASE_SCRIPT, str(tmp_path / "kt")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    version, *rest = proc.stdout.strip().splitlines()[-1].split(" ", 1)
    assert version == OLDEST_KERAS_TUNER
    assert "'kind', 'wide_units'" in rest[0]  # the conditional scope was opened while declaring
    assert rest[0].endswith("False")  # KerasTuner's Tuner (which imports tensorboard) is never used
    assert keras_tuner.__version__ >= OLDEST_KERAS_TUNER
