"""A default that fits the data and cross-validation for small data (issue 23).

The family a study without a space tunes follows the data's view (images, sequences, tables, flat pixels with an
image shape); ``--cv K`` scores each trial over K stratified folds, records them on the trial and its MLflow run,
and refits the best configuration on all training rows before the test split; folds the data cannot give are one
line, exit 2, nothing written.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests import _forked
from tuner.data import load_dataset
from tuner.errors import ConfigError, DataError
from tuner.model import natural_view, with_image_shape
from tuner.study import Study
from tuner.training import auto_folds, cv_folds, pool, prepare_data


def _study(tmp_path: Path, dataset, **kwargs) -> Study:
    return Study(None, dataset, storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri="none", **kwargs)


def _digit_arrays(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x.reshape(len(x), *shape).astype("float32"), y


# -- the family a study without --space tunes, by the data's view --------------------------------------------
@pytest.mark.parametrize(("case", "space", "view", "why"), [
    ("digits, a built-in of flat 8x8 images", "image_default", "image", r"digits rows are images of shape \(8, 8, 1\)"),
    ("images (N, H, W, C)", "image_default", "image", r"examples are images of shape \(8, 8, 1\)"),
    ("sequences (N, T, F)", "sequence_default", "sequence", r"examples are sequences of shape \(8, 8\)"),
    ("mnist1d, a built-in of flat sequences", "sequence_default", "sequence", r"mnist1d rows are sequences"),
    ("a table", "default", "flat", r"examples are rows of 13 features \(a table\)"),
    ("flat pixels", "default", "flat", r"rows of 64 features"),
    ("flat pixels with an image shape", "image_default", "image", r"rows are images of shape \(8, 8, 1\) \(image_shape\)"),
])
def test_the_default_space_follows_the_data_view_and_says_why(tmp_path, case, space, view, why) -> None:
    options: dict = {}
    data: object = {"digits, a built-in of flat 8x8 images": "digits", "mnist1d, a built-in of flat sequences": "mnist1d",
                    "a table": "wine"}.get(case)
    if case == "images (N, H, W, C)":
        data = _digit_arrays((8, 8, 1))
    elif case == "sequences (N, T, F)":
        data = _digit_arrays((8, 8))
    elif case.startswith("flat pixels"):
        data = _digit_arrays((64,))
        if case.endswith("image shape"):
            options["image_shape"] = "8,8,1"
    study = _study(tmp_path, data, **options)
    assert study.space.name == space
    assert natural_view(study.dataset)[0] == view
    first = study.choices[0]
    assert first.startswith(f"space {space!r}") and re.search(why, first), first
    assert "choose another with --space" in first
    params = study.space.suggest(__import__("optuna").create_study().ask())
    assert params["family"] == ("mlp" if space == "default" else "cnn")
    shape = prepare_data(study.dataset, params).input_shape
    assert len(shape) == {"image": 3, "sequence": 2, "flat": 1}[view], shape  # the view the family really sees
    # each default space tunes the seed regularization knobs
    for knob in ("dropout", "kernel_regularizer", "batch_norm", "bn_momentum", "kernel_initializer", "learning_rate"):
        assert knob in study.space.params, (space, knob)


def test_an_explicit_space_wins_and_an_image_shape_must_fit_the_rows(tmp_path) -> None:
    assert Study("default", "digits", storage=f"sqlite:///{tmp_path}/o.db", tracking_uri="none").space.name == "default"
    x, y = _digit_arrays((64,))
    with pytest.raises(DataError, match=r"image_shape: must hold as many values as a row has features \(64\), but "
                                        r"H\*W\*C = 63; got '7,9,1'"):
        _study(tmp_path, (x, y), image_shape="7,9,1")
    with pytest.raises(DataError, match=r"--image-shape: image_shape: must be H,W,C"):
        with_image_shape(load_dataset("digits"), "8,8,x")


# -- cross-validation ---------------------------------------------------------------------------------------
def test_cv_is_on_by_default_below_the_row_count_and_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("TUNER_CV_AUTO_ROWS")
    wine, digits = load_dataset("wine"), load_dataset("digits")
    assert auto_folds(wine)[0] == 5 and "--cv 0 turns it off" in auto_folds(wine)[1]
    assert auto_folds(digits)[0] == 0 and "--cv K turns it on" in auto_folds(digits)[1]
    study = _study(tmp_path, "wine")
    assert study.settings.cv == 5 and study.choices[-1].startswith("cross-validation 5-fold over the 142")
    assert _study(tmp_path, "wine", cv=0).settings.cv == 0


def test_folds_are_stratified_partitions_of_train_and_validation_rows() -> None:
    data = load_dataset("iris")
    folds = cv_folds(data, 4, seed=0)
    rows = len(data.x_train) + len(data.x_val)
    assert len(folds) == 4 and sum(len(f.x_val) for f in folds) == rows
    assert all(len(f.x_train) + len(f.x_val) == rows for f in folds)
    for fold in folds:  # every class in every fold, in proportion
        assert np.bincount(fold.y_val, minlength=3).min() >= 9
    held_out = np.concatenate([f.x_val for f in folds])
    assert np.allclose(np.sort(held_out, axis=0), np.sort(pool(data).x_train, axis=0))
    assert cv_folds(data, 4, seed=0) is folds  # the same folds for every trial


@pytest.mark.slow
def test_cv_records_each_fold_on_the_trial_and_its_run_and_refits_on_all_training_rows(tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    from tuner.model import ExportedModel

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    study = Study("default", "iris", storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=uri, n_trials=2, cv=3,
                  pruner="none", fixed={"epochs": 3, "patience": 0, "n_layers": 1})
    study.run()
    done = [t for t in study.trials() if t.state == "complete"]
    assert len(done) == 2
    for trial in done:
        assert len(trial.cv_folds) == 3
        assert all(f["verdict"] in ("good_fit", "overfitting", "underfitting") for f in trial.cv_folds)
        mean = np.mean([f["val_accuracy"] for f in trial.cv_folds])
        assert trial.values[0] == pytest.approx(mean) == trial.metrics["val_accuracy"]
        assert trial.cv_spread["val_accuracy"] == pytest.approx(np.std([f["val_accuracy"] for f in trial.cv_folds]))
        assert trial.reason.startswith("3 folds: ")
        run = MlflowClient(uri).get_run(trial.mlflow_run_id).data
        for i, fold in enumerate(trial.cv_folds, start=1):
            assert run.metrics[f"fold_{i}_val_accuracy"] == pytest.approx(fold["val_accuracy"])
            assert run.metrics[f"fold_{i}_gap_accuracy"] == pytest.approx(fold["gap_accuracy"])
        assert run.metrics["cv_std_val_accuracy"] == pytest.approx(trial.cv_spread["val_accuracy"])
        assert run.tags["fold_verdicts"] == ",".join(f["verdict"] for f in trial.cv_folds)
    # the best configuration was refitted on the training and validation rows before its one test evaluation
    assert study.best_test and "test_accuracy" in study.best_test
    exported = study.best_model()
    assert isinstance(exported, ExportedModel)
    every = pool(study.dataset).x_train
    scaler = exported.preprocessing.steps[-1]
    assert np.allclose(scaler["mean"], every.mean(axis=0), atol=1e-4)  # fitted on all of them, not one fold
    assert not np.allclose(scaler["mean"], study.dataset.x_train.mean(axis=0), atol=1e-4)


def _tuner(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return _forked.run(list(args), cwd=cwd, timeout=300)


@pytest.mark.parametrize(("args", "expected"), [
    (["--dataset", "iris", "--cv", "41"], r"^error: --cv: cv: needs at least 41 rows of every class in the training and "
                                          r"validation rows for stratified folds, but class '\w+' has 40; use --cv 40 "
                                          r"or fewer folds, or --cv 0; got 41$"),
    (["--dataset", "iris", "--cv", "1"], r"^error: --cv: cv: must be 0 \(off\) or a number of folds >= 2; got 1$"),
    (["--image-shape", "8,9,1"], r"^error: dataset 'digits': image_shape: must hold as many values as a row has "
                                 r"features \(64\), but H\*W\*C = 72; got '8,9,1'$"),
])
def test_folds_or_a_shape_the_data_cannot_give_are_one_line_exit_2_and_nothing_written(tmp_path, args, expected):
    proc = _tuner("study", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    native = re.compile(r"^([IWE]\d{4} |WARNING: All log messages before absl)")  # TensorFlow's C++ start-up log
    lines = [line for line in proc.stderr.strip().splitlines() if not native.match(line)]
    assert len(lines) == 1, proc.stderr
    assert re.search(expected, lines[0]), proc.stderr
    assert not (tmp_path / "mlruns").exists()


def test_cv_class_too_small_in_the_api_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"class '\w+' has 40"):
        _study(tmp_path, "iris", cv=41)


@pytest.mark.slow
def test_flat_pixels_with_an_image_shape_train_a_cnn_whose_export_takes_the_flat_rows(tmp_path) -> None:
    x, y = _digit_arrays((64,))
    study = Study(None, (x, y), storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri="none", image_shape=(8, 8, 1),
                  n_trials=1, cv=0, fixed={"epochs": 2, "n_layers": 1})
    study.run()
    assert study.space.name == "image_default" and study.settings.image_shape == [8, 8, 1]
    exported = study.best_model()
    assert exported.keras_model.input_shape[1:] == (8, 8, 1)  # the CNN saw images
    flat = study.dataset.x_test  # raw flat rows of 64 pixels, as the user's file has them
    assert flat.shape[1:] == (64,)
    labels = exported.predict(flat)
    accuracy = float(np.mean(labels.astype(int) == np.asarray(study.dataset.class_names, dtype=object)[
        study.dataset.y_test].astype(int)))
    assert accuracy == pytest.approx(study.best_test["test_accuracy"], abs=1e-6)


def test_a_resumed_study_keeps_the_folds_it_was_created_with(tmp_path) -> None:
    storage = f"sqlite:///{tmp_path}/optuna.db"
    first = Study("default", "wine", storage=storage, tracking_uri="none", cv=0)
    first.optuna_study  # created, with its recipe
    again = Study("default", "wine", storage=storage, tracking_uri="none", cv=4)
    again.optuna_study
    assert again.settings.cv == 0
