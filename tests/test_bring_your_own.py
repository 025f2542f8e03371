"""Bring your own model: user parameters in a space, define-by-run ``hp``, KerasTuner HyperModels, arrays in memory,
``--model`` on the command line. Each study is real and tiny (digits, 1-2 epochs, 2-6 trials)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_digits

import tuner
from tuner import DataError, SearchSpace, SpaceError, Study
from tuner.study import run_workers

MODELS = Path(__file__).parent / "data" / "byo_models.py"
sys.path.insert(0, str(MODELS.parent))
import byo_models  # noqa: E402

from tests import _forked


def _settings(tmp_path: Path, name: str = "byo", **kw):
    return {"storage": f"sqlite:///{tmp_path}/optuna.db", "tracking_uri": "none", "study_name": name,
            "sampler": "random", **kw}


def _params(study: Study) -> list[dict]:
    return [t.params for t in study.optuna_study.trials]


# -- (a) a YAML space with user parameters and a custom builder ------------------------------------------------

USER_SPACE = """
name: mine
parameters:
  epochs: 1
  batch_size: 64
model_parameters:
  my_width: {type: int, low: 16, high: 64, log: true}
  my_activation: {type: categorical, choices: [relu, tanh]}
"""


def test_yaml_user_parameters_reach_a_custom_builder(tmp_path):
    space = SearchSpace.from_yaml(USER_SPACE)
    assert space.model_names == ["my_width", "my_activation"]
    assert SearchSpace.from_dict(space.to_dict()) == space  # round trip keeps the two sections apart
    study = Study(space, "digits", builder=byo_models.build_params, n_trials=2, **_settings(tmp_path))
    study.run()
    assert [t.state for t in study.trials()] == ["complete", "complete"]
    for params in _params(study):
        assert 16 <= params["my_width"] <= 64 and params["my_activation"] in ("relu", "tanh")
    assert "params.my_width" in study.trials_dataframe().columns
    assert study.settings.model == f"{MODELS.resolve()}:build_params"  # workers import the same builder
    fixed = space.with_fixed({"my_width": 32})  # --set works on user parameters
    assert fixed.params["my_width"].value == 32 and fixed.params["my_width"].model
    with pytest.raises(SpaceError, match="my_widht: unknown parameter \\(did you mean 'my_width'\\?\\)"):
        space.with_fixed({"my_widht": 3})
    with pytest.raises(SpaceError, match="parameters.droput: unknown parameter \\(did you mean 'dropout'\\?\\)"):
        SearchSpace.from_dict({"parameters": {"droput": 0.1}, "model_parameters": {"w": 3}})


# -- (b) define-by-run with a conditional scope --------------------------------------------------------------

@pytest.mark.slow
def test_define_by_run_builder_with_a_conditional_scope(tmp_path):
    study = Study(hypermodel=byo_models.build_hp, dataset="digits", n_trials=4, fixed={"epochs": 1},
                  **_settings(tmp_path))
    declared = study.space.params
    assert declared["wide_units"].condition == {"kind": ["wide"]} and declared["depth"].condition == {"kind": ["deep"]}
    assert declared["lr"].log and (declared["lr"].low, declared["lr"].high) == (1e-3, 1e-2)
    study.run()
    assert all(t.state == "complete" for t in study.trials())
    for params in _params(study):
        assert ("wide_units" in params) == (params["kind"] == "wide")
        assert ("depth" in params) == (params["kind"] == "deep")
    # a YAML space fixes or narrows what the builder asks for; --set fixes it
    narrowed = SearchSpace.from_yaml("parameters: {epochs: 1}\nmodel_parameters: {lr: 0.005, depth: 2}\n")
    study2 = Study(narrowed, "digits", hypermodel=byo_models.build_hp, n_trials=2, fixed={"kind": "deep"},
                   **_settings(tmp_path, "byo-narrow"))
    study2.run()
    for t in study2.optuna_study.trials:
        resolved = t.user_attrs["resolved_params"]
        assert (resolved["kind"], resolved["lr"], resolved["depth"]) == ("deep", 0.005, 2)


# -- (c) a KerasTuner HyperModel with its own fit(), 2 workers, MLflow -------------------------------------------

@pytest.mark.slow
def test_hypermodel_with_fit_on_two_workers_records_what_build_saw(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    seen_file = tmp_path / "seen.jsonl"
    monkeypatch.setenv("BYO_SEEN", str(seen_file))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    study = Study(hypermodel=f"{MODELS}:ScopedHyperModel", dataset="digits", n_trials=6, fixed={"epochs": 1},
                  **{**_settings(tmp_path, "byo-workers"), "tracking_uri": uri})
    run_workers(study, 2, in_process=False)
    trials = study.optuna_study.trials
    assert len(trials) == 6 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker_pid"] for t in trials}) == 2
    seen = [json.loads(line) for line in seen_file.read_text().splitlines()]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("byo-workers")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`tuner.kind` = 'trial'")
    assert len(runs) == 6
    names = set(study.space.model_names)
    for run in runs:
        logged = {k: v for k, v in run.data.params.items() if k in names}
        pid = int([t for t in trials if str(t.number) == run.data.tags["optuna_trial_number"]][0]
                  .user_attrs["worker_pid"])
        as_logged = [{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in s["values"].items()}
                     for s in seen if s["pid"] == pid]  # MLflow writes booleans as true/false
        assert logged in as_logged, logged
        assert ("extra_units" in logged) == (logged["extra_layer"] == "true")
    for t in trials:  # fit() asked for batch_size: recorded on the trial, and on its run as the value fit() used
        assert t.user_attrs["resolved_params"]["batch_size"] in (32, 64)
        run = next(r for r in runs if r.data.tags["optuna_trial_number"] == str(t.number))
        assert run.data.params["batch_size"] == str(t.user_attrs["resolved_params"]["batch_size"])
        assert run.data.params["epochs"] == "1"


def test_batch_size_and_epochs_that_fit_passes_itself_are_what_the_trial_and_its_run_record(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    study = Study(hypermodel=byo_models.LiteralFitHyperModel, dataset="digits", n_trials=1, fixed={"epochs": 1},
                  **{**_settings(tmp_path, "byo-literal"), "tracking_uri": uri})
    study.run()
    trial = study.optuna_study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.user_attrs["epochs_run"] == 2
    assert {k: trial.user_attrs["resolved_params"][k] for k in ("batch_size", "epochs")} == {"batch_size": 16,
                                                                                            "epochs": 2}
    client = MlflowClient(uri)
    run = client.get_run(trial.user_attrs["mlflow_run_id"])
    assert (run.data.params["batch_size"], run.data.params["epochs"]) == ("16", "2")


# -- the same HyperModel under KerasTuner's RandomSearch asks for the same names and ranges ----------------------

def _range(kind: str, low=None, high=None, step=None, log=False, choices=None):
    if choices is not None:
        return (kind, tuple(choices))
    return (kind, float(low), float(high), None if step in (None, 1) else float(step), bool(log))


def test_keras_tuner_and_tuner_ask_for_the_same_hyperparameters(tmp_path):
    import keras_tuner as kt

    digits = load_digits()
    x, y = digits.data.astype("float32") / 16, digits.target
    search = kt.RandomSearch(byo_models.ScopedHyperModel(), objective="val_accuracy", max_trials=2, seed=1,
                             directory=str(tmp_path / "kt"), project_name="p")
    # KerasTuner's own search loop, without Tuner.run_trial (which needs tensorboard for its callback)
    search._populate_initial_space()
    for i in range(2):
        trial = search.oracle.create_trial(f"t{i}")
        hp = trial.hyperparameters
        search.hypermodel.fit(hp, search.hypermodel.build(hp), x[:200], y[:200], epochs=1, verbose=0)
        search.oracle.update_space(hp)
    theirs = {}
    for hp in search.oracle.get_space().space:
        config = hp.get_config()
        if isinstance(hp, kt.engine.hyperparameters.Boolean):
            theirs[hp.name] = _range("choice", choices=[False, True])
        elif "values" in config:
            theirs[hp.name] = _range("choice", choices=config["values"])
        else:
            theirs[hp.name] = _range("range", config["min_value"], config["max_value"], config["step"],
                                     config["sampling"] == "log")
    study = Study(hypermodel=byo_models.ScopedHyperModel, dataset="digits", n_trials=2, fixed={"epochs": 1},
                  **_settings(tmp_path))
    study.run()
    mine = {n: _range("choice", choices=p.choices) if p.type == "categorical" else
            _range("range", p.low, p.high, p.step, p.log) for n, p in study.space.params.items() if p.model}
    asked_by_fit = {n: _range("choice", choices=d.choices) for t in study.optuna_study.trials
                    for n, d in t.distributions.items() if n not in mine}  # batch_size, asked by fit()
    assert study.space.params["extra_units"].condition == {"extra_layer": [True]}
    assert {**mine, **asked_by_fit} == theirs


# -- (d) data in memory --------------------------------------------------------------------------------------

def _digits(n: int = 400):
    d = load_digits()
    return d.data[:n], d.target[:n]


def test_arrays_arrays_with_validation_and_a_dataframe(tmp_path):
    x, y = _digits()
    study = tuner.run_study("default", (x, y), n_trials=1, fixed={"epochs": 1}, **_settings(tmp_path, "arr"))
    assert study.dataset.task == "multiclass" and study.trials()[0].state == "complete"
    study = Study(hypermodel=byo_models.build_hp, dataset=(x[:300], y[:300]), n_trials=1, fixed={"epochs": 1},
                  dataset_options={"validation_data": (x[300:], y[300:])}, **_settings(tmp_path, "arr-val"))
    assert len(study.dataset.x_val) == 100 and len(study.dataset.x_train) + len(study.dataset.x_test) == 300
    assert study.run().trials()[0].state == "complete"
    frame = pd.DataFrame(x[:, :8], columns=[f"f{i}" for i in range(8)]).assign(big=(y >= 5).astype(int))
    study = Study(SearchSpace.from_yaml(USER_SPACE), frame, builder=byo_models.build_params, n_trials=1,
                  dataset_options={"target": "big"}, **_settings(tmp_path, "frame"))
    assert study.dataset.task == "binary" and study.dataset.feature_names[0] == "f0"
    assert study.run().trials()[0].state == "complete"


# -- (e) the command line ----------------------------------------------------------------------------------

def _tuner(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return _forked.run(list(args), cwd=cwd)


@pytest.mark.slow
def test_cli_model_on_a_file(tmp_path):
    proc = _tuner("study", "--model", f"{MODELS}:build_hp", "--set", "epochs=1", "--set", "kind=wide", "--n-trials",
                  "2", "--no-progress", "--tracking-uri", "none", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["counts"]["complete"] == 2
    loaded = optuna.load_study(study_name="byo_models.build_hp-digits", storage=f"sqlite:///{tmp_path}/mlruns/optuna.db")
    assert {t.user_attrs["resolved_params"]["kind"] for t in loaded.trials} == {"wide"}


BAD_REFS = [
    ("nowhere.py:build", "file not found"),
    (f"{MODELS}:nope", "has no attribute 'nope'"),
    (f"{MODELS}:not_a_model", "must be a keras_tuner.HyperModel"),
    ("build_without_colon", "must be FILE.py:NAME or MODULE:NAME"),
    ("no_such_module_xyz:build", "cannot import no_such_module_xyz (ModuleNotFoundError"),
    ("broken.py:build", "cannot import broken.py (line 1: SyntaxError"),
]


@pytest.mark.parametrize(("ref", "rule"), BAD_REFS)
def test_bad_model_reference_is_one_line(tmp_path, monkeypatch, ref, rule):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.py").write_text("def build(hp:\n")
    with pytest.raises(tuner.ConfigError) as err:
        Study(hypermodel=ref, dataset="digits", **_settings(tmp_path))
    assert rule in str(err.value) and len(str(err.value).splitlines()) == 1, str(err.value)
    assert not (tmp_path / "optuna.db").exists()


@pytest.mark.slow
def test_cli_bad_model_reference_is_one_line_exit_2(tmp_path):
    proc = _tuner("study", "--model", "nowhere.py:build", "--n-trials", "1", "--tracking-uri", "none", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nowhere.py:build: --model: file not found" in lines[0], proc.stderr
    assert not (tmp_path / "mlruns" / "optuna.db").exists()


# -- malformed user-parameter declarations and bad in-memory inputs: one line, nothing written ---------------------

BAD_DECLARATIONS = [
    ({"w": {"type": "int", "low": 5, "high": 1}}, "model_parameters.w: `low <= high` must hold"),
    ({"w": {"type": "int", "low": 1, "high": 1}}, "model_parameters.w: the range is empty"),
    ({"w": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "model_parameters.w.low: must be > 0 on a log"),
    ({"w": {"type": "int", "low": 1, "high": 10, "step": 4}}, "model_parameters.w.step: must divide"),
    ({"w": {"type": "integer", "low": 1, "high": 10}}, "model_parameters.w.type: must be one of"),
    ({"w": {"low": 1, "high": 10}}, "model_parameters.w.type: is required"),
    ({"w": {"type": "categorical", "choices": []}}, "model_parameters.w.choices: must be a non-empty list"),
    ({"w": {"type": "categorical", "choices": [1, 1]}}, "model_parameters.w.choices: must not repeat a choice"),
    ({"w": {"type": "int", "low": 1.5, "high": 3}}, "model_parameters.w.low: must be an integer"),
    ({"w": {"type": "int", "low": 1, "high": 3, "setp": 1}}, "model_parameters.w.setp: unknown key (did you mean 'step'?)"),
    ({"w": [1, 2]}, "model_parameters.w: must be a fixed value or a mapping with 'type'"),
    ({"2w": 3}, "model_parameters.2w: the name must be an identifier"),
    ({"w": {"type": "int", "low": 1, "high": 3, "condition": {"kindd": "a"}}, "kind": "a"},
     "model_parameters.w.condition.kindd: refers to a parameter that does not exist (did you mean 'kind'?)"),
    ({"w": {"type": "int", "low": 1, "high": 3, "condition": {"kind": "b"}}, "kind": "a"},
     "model_parameters.w.condition.kind: can never hold"),
    ({"epochs": 3}, "model_parameters.epochs: is also under parameters"),
    ("not a mapping", "model_parameters: must be a mapping"),
]


@pytest.mark.parametrize(("section", "rule"), BAD_DECLARATIONS)
def test_malformed_user_parameters_fail_in_one_line_before_the_study_exists(tmp_path, section, rule):
    import yaml

    file = tmp_path / "space.yaml"
    file.write_text(yaml.safe_dump({"parameters": {"epochs": 1}, "model_parameters": section}))
    with pytest.raises(SpaceError) as err:
        Study(str(file), "digits", builder=byo_models.build_params, **_settings(tmp_path))
    assert rule in str(err.value) and len(str(err.value).splitlines()) == 1, str(err.value)
    assert not (tmp_path / "optuna.db").exists()


@pytest.mark.slow
def test_malformed_user_parameter_from_the_cli_exits_2(tmp_path):
    (tmp_path / "s.yaml").write_text("model_parameters:\n  my_width: {type: int, low: 64, high: 16}\n")
    proc = _tuner("study", "--space", "s.yaml", "--model", f"{MODELS}:build_params", "--tracking-uri", "none",
                  cwd=tmp_path)
    assert proc.returncode == 2 and "model_parameters.my_width: `low <= high` must hold" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "mlruns" / "optuna.db").exists()
    proc = _tuner("study", "--model", f"{MODELS}:build_hp", "--set", "knd=wide", "--tracking-uri", "none", cwd=tmp_path)
    assert proc.returncode == 2 and "knd: unknown parameter (did you mean 'kind'?)" in proc.stderr, proc.stderr


def _bad_inputs():
    x, y = _digits(300)
    nan_x = x.copy()
    nan_x[3, 5] = np.nan
    nan_y = y.astype(float)
    nan_y[7] = np.nan
    tiny_class = np.where(np.arange(300) == 0, 99, y)
    frame = pd.DataFrame(x[:, :4], columns=list("abcd")).assign(label=y)
    return [
        ((x, y[:-1]), {}, "y: must have as many rows as x (300)"),
        ((nan_x, y), {}, "x: features must be finite: 1 NaN"),
        ((x, nan_y), {}, "y: has 1 missing (NaN) targets, first in row 7"),
        ((x.astype(str), y), {}, "x: features must be numeric"),
        ((x, np.zeros(300)), {}, "found one class only"),
        ((x, tiny_class), {}, "class '99': has too few rows"),
        ((x, y.reshape(-1, 1, 1)), {}, "y: must be one target per row"),
        ((x, y), {"validation_data": (x[:, :3], y)}, "validation_data[0]: rows must have the shape of the rows of x"),
        ((x, y), {"validation_data": x}, "validation_data: must be a pair (x, y)"),
        ((x, y), {"target": "y"}, "target: is only for a DataFrame"),
        (frame, {"target": "lable"}, "target: must name a column (did you mean 'label'?)"),
        (frame.assign(a=frame["a"].astype(str) + "x"), {"target": "label"}, "column 'a': features must be numeric"),
        ((np.array(1.0), y), {}, "x: must have one row per example"),
        ({"x": x}, {}, "dataset: must be a Dataset"),
        ((x, y), {"val_fraction": 1.5}, "val_fraction: must be a number > 0 and < 1"),
    ]


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize(("data", "options", "rule"), BAD_INPUTS, ids=[r for _, _, r in BAD_INPUTS])
def test_bad_in_memory_inputs_fail_in_one_line_before_the_study_exists(tmp_path, data, options, rule):
    with pytest.raises(DataError) as err:
        Study(SearchSpace.from_yaml(USER_SPACE), data, builder=byo_models.build_params, dataset_options=options,
              **_settings(tmp_path))
    assert rule in str(err.value) and len(str(err.value).splitlines()) == 1, str(err.value)
    assert not (tmp_path / "optuna.db").exists()


def test_a_dataframe_with_a_text_column_keeps_one_encoding_for_every_split_and_for_raw_rows():
    from tuner.data import from_frame

    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({"size": rng.normal(size=n), "color": rng.choice(["red", "green", "blue"], size=n),
                          "label": rng.choice(["yes", "no"], size=n)})
    val = frame.iloc[:30].assign(color="red")  # a split that lacks two of the categories
    ds = from_frame(frame, target="label", categorical="onehot", validation_data=val, seed=0)
    assert ds.preprocessing.kind == "table" and ds.preprocessing.target == "label"
    assert [c.name for c in ds.preprocessing.columns] == ["size", "color"]
    assert ds.x_val.shape[1] == ds.x_train.shape[1] == 4  # size + 3 dummies, the same columns in every split
    assert np.allclose(ds.preprocessing.transform(val), ds.x_val)  # raw rows encode as the study encoded them
    assert sorted(ds.preprocessing.labels) == ["no", "yes"]
    with pytest.raises(DataError, match="must be one of the categories seen in training"):
        ds.preprocessing.transform(frame.iloc[:2].assign(color="purple"))


def test_in_memory_labels_keep_their_type_and_raw_rows_are_not_changed():
    from tuner.data import from_arrays, from_frame

    x = np.random.default_rng(0).normal(size=(60, 2))
    assert from_arrays(x, np.array([0, 1, 2] * 20)).preprocessing.labels == (0, 1, 2)  # as an .npz file gives them
    assert from_arrays(x, np.array([True, False] * 30)).preprocessing.labels == (False, True)
    assert from_arrays(x, np.array(["a", "b"] * 30)).preprocessing.labels == ("a", "b")
    frame = pd.DataFrame({1: x[:, 0], "b": x[:, 1], "t": [3, 4] * 30})
    ds = from_frame(frame, target="t")
    assert ds.preprocessing.labels == (3, 4)
    rows = frame.drop(columns=["t"]).rename(columns=str)
    rows.columns = pd.Index([1, "b"], dtype=object)  # the caller's own column labels
    ds.preprocessing.transform(rows)
    assert list(rows.columns) == [1, "b"]  # encoding a copy, not the caller's frame


def test_a_csv_with_a_text_column_is_encoded_for_training_as_its_exported_model_encodes_raw_rows(tmp_path):
    """One encoding of a table (issue 27, item 12): the rows a study trains on are the raw rows of the file
    encoded by the exported model's own description (numeric columns, then one 0/1 column per category)."""
    from tuner import load_dataset

    rng = np.random.default_rng(1)
    n = 90
    frame = pd.DataFrame({"color": rng.choice(["red", "green", "blue"], size=n), "size": rng.normal(size=n),
                          "shape": rng.choice(["round", "square"], size=n), "label": rng.choice([0, 1], size=n)})
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    ds = load_dataset(path, target="label", categorical="onehot")
    assert ds.feature_names == ["size", "color_blue", "color_green", "color_red", "shape_round", "shape_square"]
    assert list(ds.preprocessing.feature_names) == ds.feature_names
    raw = pd.read_csv(path)
    encoded = ds.preprocessing.transform(raw.drop(columns=["label"]))
    rows = {tuple(r) for r in np.round(encoded, 6)}  # the split shuffles the rows
    split = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    assert len(split) == n and all(tuple(r) in rows for r in np.round(split, 6))
