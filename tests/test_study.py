"""The study engine end to end: real Optuna storage, real MLflow store, tiny real Keras trainings."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pytest
from mlflow import MlflowClient

from tuner import SearchSpace
from tuner.errors import ConfigError
from tuner.study import Study, StudySettings, run_study

SPACE = {
    "name": "tiny",
    "parameters": {
        "n_layers": 1,
        "units": {"type": "int", "low": 8, "high": 32},
        "dropout": {"type": "float", "low": 0.0, "high": 0.3},
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "learning_rate": {"type": "float", "low": 1e-6, "high": 10.0, "log": True},
        "epochs": 4,
        "patience": 0,
        "batch_size": 64,
    },
}


def _settings(tmp_path: Path, **kw) -> StudySettings:
    defaults = dict(study_name="e2e", n_trials=4, storage=f"sqlite:///{tmp_path}/optuna.db",
                    tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", pruner_startup_trials=1)
    defaults.update(kw)
    return StudySettings(**defaults)


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    """A regression study with one complete, one diverging (failed) and one pruned trial, and more."""
    tmp_path = tmp_path_factory.mktemp("study")
    space = SearchSpace.from_dict(SPACE)
    study = Study(space, "diabetes", _settings(tmp_path, n_trials=4))
    study.enqueue({"units": 32, "dropout": 0.0, "optimizer": "adam", "learning_rate": 0.01})   # good
    study.enqueue({"units": 16, "dropout": 0.0, "optimizer": "sgd", "learning_rate": 10.0})    # diverges
    study.enqueue({"units": 8, "dropout": 0.3, "optimizer": "adam", "learning_rate": 1e-6})    # hopeless: pruned
    study.run()
    return study, tmp_path


@pytest.mark.slow
def test_optuna_records_states_and_user_attributes(finished_study):
    study, tmp_path = finished_study
    trials = optuna.load_study(study_name="e2e", storage=f"sqlite:///{tmp_path}/optuna.db").trials
    states = [t.state for t in trials]
    assert states[:3] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL,
                          optuna.trial.TrialState.PRUNED]
    assert len(trials) == 4
    good = trials[0]
    for key in ("gap_loss", "gap_mae", "verdict", "best_epoch", "n_params", "wall_time", "metrics", "mlflow_run_id"):
        assert key in good.user_attrs, key
    assert good.user_attrs["verdict"] in ("good_fit", "overfitting", "underfitting")
    assert good.value == pytest.approx(good.user_attrs["metrics"]["val_loss"])
    assert good.user_attrs["n_params"] == 10 * 32 + 32 + 32 + 1
    assert trials[1].user_attrs["fail_reason"] == "non-finite loss at epoch 1"
    assert "pruned at epoch" in trials[2].user_attrs["prune_reason"]
    assert len(trials[2].intermediate_values) >= 1


@pytest.mark.slow
def test_mlflow_has_a_parent_run_and_one_child_run_per_trial(finished_study):
    study, tmp_path = finished_study
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("e2e")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("tuner.kind") == "study"]
    children = [r for r in runs if r.data.tags.get("tuner.kind") == "trial"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {"sampler", "pruner", "objective", "n_trials", "seed"} <= set(parent.data.params)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"space.yaml", "dataset.json", "settings.json"} <= artifacts
    # the enqueued "good" trial and the sampled one are both barely trained in 4 epochs: either may win
    assert parent.data.tags["best_trial_number"] == str(study.optuna_study.best_trial.number)
    assert "best_val_loss" in parent.data.metrics and "best_test_loss" in parent.data.metrics

    trials = study.optuna_study.trials
    assert len(children) == len(trials)
    by_number = {int(r.data.tags["optuna_trial_number"]): r for r in children}
    assert sorted(by_number) == [t.number for t in trials]
    expected_status = {"COMPLETE": "FINISHED", "FAIL": "FAILED", "PRUNED": "KILLED"}
    for t in trials:
        run = by_number[t.number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == expected_status[t.state.name], t.number
        assert run.data.params["learning_rate"] == str(t.params["learning_rate"])
        assert run.data.params["epochs"] == "4"
    good = by_number[0]
    val_loss = client.get_metric_history(good.info.run_id, "val_loss")
    gap = client.get_metric_history(good.info.run_id, "gap_loss")
    assert [m.step for m in val_loss] == [1, 2, 3, 4]
    assert len(gap) == 4
    history_gap = [m.value for m in sorted(gap, key=lambda m: m.step)]
    history_val = [m.value for m in sorted(val_loss, key=lambda m: m.step)]
    train = [m.value for m in sorted(client.get_metric_history(good.info.run_id, "train_loss"), key=lambda m: m.step)]
    assert history_gap == pytest.approx([v - t for v, t in zip(history_val, train)], rel=1e-5)
    assert good.data.tags["verdict"] == trials[0].user_attrs["verdict"]
    assert good.data.metrics["best_epoch"] == 4
    assert by_number[1].data.tags["fail_reason"] == "non-finite loss at epoch 1"
    assert by_number[2].data.tags["state"] == "pruned"
    pruned_steps = client.get_metric_history(by_number[2].info.run_id, "val_loss")
    assert len(pruned_steps) == len(trials[2].intermediate_values)


@pytest.mark.slow
def test_every_trial_records_the_programs_its_backend_compiled(finished_study):
    """Complete, failed and pruned trials alike; counted from TensorFlow's traces (issue 24), shown in MLflow."""
    import keras

    study, tmp_path = finished_study
    trials = study.optuna_study.trials
    counts = [t.user_attrs.get("programs_compiled") for t in trials]
    assert all(isinstance(c, int) and c >= 1 for c in counts), counts
    if keras.backend.backend() == "tensorflow":
        assert counts[0] == 2  # a new model a trial: its train step and its predict step are traced afresh
    assert study.programs_compiled == sum(counts)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("e2e").experiment_id], "tags.`tuner.kind` = 'trial'")
    by_number = {int(r.data.tags["optuna_trial_number"]): r for r in runs}
    assert [by_number[t.number].data.metrics.get("programs_compiled") for t in trials] == counts


@pytest.mark.slow
def test_best_model_loads_back_and_predicts(finished_study, monkeypatch):
    study, tmp_path = finished_study
    uri = study.optuna_study.user_attrs["best_model_uri"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")  # this test's only
    model = mlflow.keras.load_model(uri)
    x = study.dataset.x_test[:5].astype("float32")
    from tuner.training import prepare_data

    xs = prepare_data(study.dataset, {}).x_test[:5]
    assert model.predict(xs, verbose=0).shape == (5, 1)
    pyfunc = mlflow.pyfunc.load_model(uri)
    assert np.asarray(pyfunc.predict(xs)).shape[0] == 5
    assert x.shape == (5, 10)
    best = study.best_trial()
    assert best.number == study.optuna_study.best_trial.number
    assert set(study.best_test) == {"test_loss", "test_mae", "test_rmse"}


@pytest.mark.slow
def test_resume_runs_only_missing_trials_and_optuna_cli_reads_the_storage(finished_study, tmp_path):
    study, store = finished_study
    storage = f"sqlite:///{store}/optuna.db"
    again = Study(SearchSpace.from_dict(SPACE), "diabetes", _settings(store, n_trials=4))
    again.run()
    assert len(again.optuna_study.trials) == 4
    more = Study(SearchSpace.from_dict(SPACE), "diabetes", _settings(store, n_trials=5))
    more.run()
    assert more.n_finished() == 5
    optuna_cli = Path(sys.executable).with_name("optuna")
    out = subprocess.run([str(optuna_cli), "trials", "--study-name", "e2e", "--storage", storage, "-f", "json"],
                         capture_output=True, text=True, check=True).stdout
    assert len(json.loads(out)) == 5
    best = subprocess.run([str(optuna_cli), "best-trial", "--study-name", "e2e", "--storage", storage, "-f", "json"],
                          capture_output=True, text=True, check=True).stdout
    assert json.loads(best)["number"] == more.best_trial().number
    df = more.trials_dataframe()
    assert len(df) == 5 and {"verdict", "gap_loss", "val_loss", "params.learning_rate"} <= set(df.columns)


def test_a_different_space_under_the_same_study_name_is_refused(tmp_path):
    settings = _settings(tmp_path, n_trials=1, tracking_uri="none")
    one = dict(SPACE, parameters={**SPACE["parameters"], "epochs": 1})
    run_study(SearchSpace.from_dict(one), "iris", settings=settings)
    other = dict(SPACE, parameters={**SPACE["parameters"], "epochs": 2})
    with pytest.raises(ConfigError, match=r"study 'e2e': exists with another space"):
        Study(SearchSpace.from_dict(other), "iris", _settings(tmp_path, n_trials=1, tracking_uri="none")).run()


def test_bad_settings_fail_before_any_storage_is_written(tmp_path):
    space = SearchSpace.from_dict(SPACE)
    with pytest.raises(ConfigError, match=r"--sampler: sampler: must be one of"):
        Study(space, "iris", _settings(tmp_path, sampler="annealing"))
    with pytest.raises(ConfigError, match=r"--objective: objective: must be one of .* for a multiclass task; got 'val_mae'"):
        Study(space, "iris", _settings(tmp_path, objective=("val_mae",)))
    assert not (tmp_path / "optuna.db").exists()


def test_multi_objective_study_disables_pruning_with_a_warning(tmp_path, caplog):
    space = SearchSpace.from_dict(dict(SPACE, parameters={**SPACE["parameters"], "epochs": 2,
                                                           "learning_rate": {"type": "float", "low": 1e-3,
                                                                             "high": 1e-2, "log": True}}))
    with caplog.at_level("WARNING", logger="tuner"):
        study = run_study(space, "iris", settings=_settings(tmp_path, n_trials=3, objective=("val_loss", "gap_loss"),
                                                            tracking_uri="none"))
    assert "pruning is disabled" in caplog.text
    assert len(study.optuna_study.directions) == 2
    assert isinstance(study.optuna_study.pruner, optuna.pruners.NopPruner)
    best = study.best_trial()
    assert best.number in {t.number for t in study.optuna_study.best_trials}


@pytest.mark.parametrize("sampler", ["random", "qmc", "cmaes", "nsga2"])
def test_samplers(tmp_path, sampler):
    space = SearchSpace.from_dict(dict(SPACE, parameters={**SPACE["parameters"], "epochs": 1,
                                                           "learning_rate": {"type": "float", "low": 1e-3,
                                                                             "high": 1e-2, "log": True}}))
    study = run_study(space, "iris", settings=_settings(tmp_path, n_trials=2, sampler=sampler, tracking_uri="none"))
    assert study.n_finished() == 2


def test_grid_sampler_needs_a_listable_space(tmp_path):
    grid = {"name": "g", "parameters": {"epochs": 1, "units": {"type": "categorical", "choices": [8, 16]},
                                        "n_layers": {"type": "int", "low": 1, "high": 2}}}
    study = run_study(SearchSpace.from_dict(grid), "iris",
                      settings=_settings(tmp_path, n_trials=4, sampler="grid", tracking_uri="none"))
    combos = {(t.params["units"], t.params["n_layers"]) for t in study.optuna_study.trials}
    assert combos == {(8, 1), (8, 2), (16, 1), (16, 2)}
    with pytest.raises(ConfigError, match=r"the grid sampler needs categorical or stepped ranges"):
        Study(SearchSpace.from_dict(SPACE), "iris", _settings(tmp_path, sampler="grid", study_name="g2"))


def test_custom_builder_gets_spaces_pruning_and_tracking(tmp_path):
    import keras

    def builder(params, input_shape, *, task, n_outputs):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(int(params["units"]), activation="relu"),
                                 keras.layers.Dense(n_outputs, activation="softmax")])

    space = SearchSpace.from_dict(dict(SPACE, parameters={**SPACE["parameters"], "epochs": 2,
                                                           "learning_rate": 0.01, "optimizer": "adam"}))
    study = run_study(space, "iris", settings=_settings(tmp_path, n_trials=2), builder=builder)
    best = study.best_trial()
    assert best.verdict in ("good_fit", "overfitting", "underfitting")
    runs = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(
        [MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_experiment_by_name("e2e").experiment_id],
        filter_string="tags.`tuner.kind` = 'trial'")
    assert len(runs) == 2


def _complete_count(db: Path) -> int:
    """Complete trials, read from the SQLite file read-only (no schema creation racing the study's own)."""
    import sqlite3

    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.Error:  # tables not created yet
        return 0


@pytest.mark.slow
def test_sigint_keeps_finished_trials_and_the_rerun_reaches_the_total(tmp_path):
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    cmd = [sys.executable, "-m", "tuner", "study", "--space", "default", "--n-trials", "6", "--set", "epochs=25",
           "--set", "patience=0", "--pruner", "none", "--no-progress"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and _complete_count(tmp_path / "mlruns" / "optuna.db") < 2:
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[1][-3000:]  # still running (it has 6 trials of 25 epochs to go)
    assert _complete_count(tmp_path / "mlruns" / "optuna.db") >= 2
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "run the same command again to resume" in err
    study = optuna.load_study(study_name="default-digits", storage=storage)
    before = {t.number: t.value for t in study.trials if t.state.name == "COMPLETE"}
    assert len(before) >= 2
    interrupted = [t for t in study.trials if t.user_attrs.get("fail_reason") == "interrupted"]
    assert all(t.state.name == "FAIL" for t in interrupted)
    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    study = optuna.load_study(study_name="default-digits", storage=storage)
    counted = [t for t in study.trials if t.state.is_finished() and t.user_attrs.get("fail_reason") != "interrupted"]
    assert len(counted) == 6
    for number, value in before.items():
        assert study.trials[number].value == value
    assert "best trial" in rerun.stdout and "test_accuracy" in rerun.stdout
    # every MLflow run is closed: the interrupted ones as KILLED
    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("default-digits").experiment_id])
    assert all(r.info.status != "RUNNING" for r in runs)
    assert math.isfinite(study.best_value)


# -- the tracker seam, the tracking life cycle, configuration errors in a trial ---------------------------
TINY_SPACE = dict(SPACE, parameters={**SPACE["parameters"], "epochs": 1, "optimizer": "adam",
                                      "learning_rate": 0.01})


def test_a_study_leaves_no_tracking_uri_behind_and_its_best_model_loads_from_its_own_store(tmp_path, monkeypatch,
                                                                                          capfd):
    import mlflow

    import tuner

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    mlflow.set_tracking_uri(None)
    study = Study(SearchSpace.from_dict(TINY_SPACE), "iris", _settings(tmp_path, n_trials=1))
    study.run()  # logs the best model with MLflow's fluent API
    # neither later studies, reports nor subprocesses of this process inherit this study's store (or its password),
    # nor tuner's choice of no progress bars
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
    assert mlflow.get_tracking_uri() != f"sqlite:///{tmp_path}/mlflow.db"
    shutil.rmtree(Path(study.optuna_study.user_attrs["best_model_dir"]))  # only the MLflow copy is left
    capfd.readouterr()
    model = tuner.load_best_model(study)  # downloaded from the MLflow store, with no progress bar
    assert "Downloading artifacts" not in capfd.readouterr().err
    assert model.predict(study.dataset.x_test[:3]).shape[0] == 3


@pytest.fixture(params=["cli", "python"])
def ctrl_c(request, monkeypatch):
    """The CLI's SIGINT handler (or Python's own, as in a script or notebook), and a way to press Ctrl-C (a real
    signal to this process) inside a tracker method."""
    from tuner.cli._main import _install_interrupt_handler
    from tuner.tracking import MlflowTracker

    previous = signal.getsignal(signal.SIGINT)
    if request.param == "cli":
        _install_interrupt_handler()
    else:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def press_during(method, when=lambda *a, **kw: True):
        original = getattr(MlflowTracker, method)

        def pressed(self, *args, **kwargs):
            if when(*args, **kwargs):
                os.kill(os.getpid(), signal.SIGINT)  # delivered at once, halfway through the method
            return original(self, *args, **kwargs)

        monkeypatch.setattr(MlflowTracker, method, pressed)

    yield press_during
    signal.signal(signal.SIGINT, previous)


def _runs(tmp_path: Path, name: str = "e2e") -> dict[str, str]:
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    return {"study" if r.data.tags["tuner.kind"] == "study" else r.info.run_name: r.info.status for r in runs}


def test_ctrl_c_while_a_trial_run_is_being_opened_still_closes_it(tmp_path, monkeypatch, ctrl_c):
    from tuner.tracking import MlflowTracker

    opening = []
    start_trial = MlflowTracker.start_trial
    monkeypatch.setattr(MlflowTracker, "start_trial", lambda self, *a, **kw: opening.append(1) or start_trial(self, *a, **kw))
    ctrl_c("log_dataset", when=lambda run_id: bool(opening))  # the trial's run exists; its id is not returned yet
    study = Study(SearchSpace.from_dict(TINY_SPACE), "iris", _settings(tmp_path, n_trials=2))
    with pytest.raises(KeyboardInterrupt):
        study.run()
    trial = study.optuna_study.trials[0]
    assert trial.state.name == "FAIL" and trial.user_attrs["fail_reason"] == "interrupted"
    assert trial.user_attrs["mlflow_run_id"]
    assert _runs(tmp_path) == {"trial-0": "KILLED", "study": "KILLED"}


def test_ctrl_c_while_a_finished_trial_is_recorded_keeps_it_and_stops_after_it(tmp_path, ctrl_c):
    ctrl_c("log_metrics", when=lambda run_id, rows, tags=None: (tags or {}).get("state") == "complete")
    study = Study(SearchSpace.from_dict(TINY_SPACE), "iris", _settings(tmp_path, n_trials=2))
    with pytest.raises(KeyboardInterrupt):
        study.run()
    assert [t.state.name for t in study.optuna_study.trials] == ["COMPLETE"]  # recorded whole; no second trial
    assert _runs(tmp_path) == {"trial-0": "FINISHED", "study": "KILLED"}


def _run_as(how: str, study: Study) -> None:
    """``Study.run()`` (scripts) or ``run_workers`` with this process as the one worker (what the CLI runs)."""
    from tuner.study import run_workers

    study.run() if how == "run" else run_workers(study, 1)


@pytest.mark.parametrize("how", ["run", "workers"])
def test_ctrl_c_while_the_study_run_is_opened_stops_before_any_trial_and_closes_it(tmp_path, ctrl_c, how):
    ctrl_c("log_params", when=lambda run_id, params: "sampler" in params)  # the study run exists, half written
    study = Study(SearchSpace.from_dict(TINY_SPACE), "iris", _settings(tmp_path, n_trials=1))
    with pytest.raises(KeyboardInterrupt):
        _run_as(how, study)
    assert study.optuna_study.trials == [] and _runs(tmp_path) == {"study": "KILLED"}


@pytest.mark.parametrize("how", ["run", "workers"])
def test_ctrl_c_while_the_study_run_is_closed_is_not_swallowed(tmp_path, ctrl_c, how):
    ctrl_c("end_study")
    study = Study(SearchSpace.from_dict(TINY_SPACE), "iris", _settings(tmp_path, n_trials=1))
    with pytest.raises(KeyboardInterrupt):  # the caller (the CLI: exit 130) hears of it
        _run_as(how, study)
    assert [t.state.name for t in study.optuna_study.trials] == ["COMPLETE"]
    assert _runs(tmp_path) == {"trial-0": "FINISHED", "study": "FINISHED"}


def test_a_stop_asked_for_once_does_not_stop_every_later_run(tmp_path):
    from tuner.study import request_stop, stop_requested

    request_stop()  # e.g. a notebook stopped an earlier study
    study = Study(SearchSpace.from_dict(TINY_SPACE), "iris", _settings(tmp_path, n_trials=1, tracking_uri="none"))
    study.run()
    assert study.n_finished() == 1 and study.trials()[0].state == "complete"
    assert not stop_requested()


def test_tracking_none_runs_the_study_with_the_null_tracker(tmp_path):
    from tuner.tracking import NullTracker

    study = Study(SearchSpace.from_dict(TINY_SPACE), "iris", _settings(tmp_path, n_trials=2, tracking_uri="none"))
    with study.tracking() as tracker:
        assert isinstance(tracker, NullTracker) and study.tracking_run_id is None
        study.run()
    assert study.n_finished() == 2
    assert not (tmp_path / "mlflow.db").exists()
    assert all("mlflow_run_id" not in t.user_attrs for t in study.optuna_study.trials)
    assert "mlflow_experiment_id" not in study.optuna_study.user_attrs
    assert set(study.best_test) == {"test_loss", "test_accuracy"}  # scored once, when the tracking closed


def test_tracking_opens_and_closes_once_around_a_nested_run(tmp_path, monkeypatch):
    from tuner.tracking import NullTracker

    calls = []

    class Recording(NullTracker):
        def start_study(self, **kwargs):
            calls.append("start_study")

        def end_study(self, *, status, best=None):
            calls.append(f"end_study {status} best={best['tags']['best_trial_number']}")

    monkeypatch.setattr("tuner.study._study.make_tracker", lambda uri, experiment, **options: Recording())
    study = Study(SearchSpace.from_dict(TINY_SPACE), "iris", _settings(tmp_path, n_trials=1))
    with study.tracking():
        study.run()  # shares the open tracking, as run_workers' in-process worker does
        assert calls == ["start_study"]
    assert calls == ["start_study", "end_study FINISHED best=0"]


def test_a_configuration_error_in_a_trial_stops_the_run_and_the_trial_keeps_its_reason(tmp_path):
    from tuner.errors import Problem
    from tuner.study import load_study_results, read_trial

    def builder(params, input_shape, *, task, n_outputs):
        raise ConfigError([Problem("builder", "units", "must be even", value=params["units"])])

    space = SearchSpace.from_dict(dict(TINY_SPACE, parameters={**TINY_SPACE["parameters"], "units": 9}))
    with pytest.raises(ConfigError, match=r"^builder: units: must be even; got 9$"):
        run_study(space, "iris", settings=_settings(tmp_path, n_trials=3, tracking_uri="none"), builder=builder)
    results = load_study_results("e2e", storage=f"sqlite:///{tmp_path}/optuna.db")
    [trial] = results.trials()
    assert trial.state == "fail"
    assert trial.fail_reason == "builder: units: must be even; got 9"
    assert read_trial(results.study.trials[0]).config_error


def test_the_study_engine_never_imports_mlflow():
    root = Path(__file__).resolve().parents[1] / "tuner" / "study"
    importing = [f"{path.name}:{n}" for path in sorted(root.glob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if line.strip().startswith(("import mlflow", "from mlflow"))]
    assert importing == []
