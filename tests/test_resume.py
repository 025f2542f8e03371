"""Resuming a study: it goes on where it stopped and never replays the configurations it already tried."""

from __future__ import annotations

import optuna
import pytest

from tests import _forked
from tuner import SearchSpace
from tuner.study import Study, StudySettings

TINY = {
    "name": "tiny",
    "parameters": {
        "n_layers": 1,
        "units": {"type": "int", "low": 4, "high": 64},
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd", "rmsprop"]},
        "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        "epochs": 1,
        "patience": 0,
        "batch_size": 64,
    },
}


def _run(tmp_path, name: str, n_trials: int, sampler: str = "tpe") -> list[tuple]:
    settings = StudySettings(study_name=name, n_trials=n_trials, storage=f"sqlite:///{tmp_path}/optuna.db",
                             tracking_uri="none", sampler=sampler, seed=7)
    study = Study(SearchSpace.from_dict(TINY), "iris", settings)  # a new Study: as a new process would
    study.run()
    return [tuple(sorted(t.params.items())) for t in study.optuna_study.trials]


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_resumed_study_never_replays_its_trials_and_matches_one_sitting(tmp_path, sampler):
    _run(tmp_path, "dup", 2, sampler)
    _run(tmp_path, "dup", 4, sampler)  # resumed to a larger total
    resumed_twice = _run(tmp_path, "dup", 6, sampler)  # and once more
    assert len(resumed_twice) == 6 == len(set(resumed_twice)), resumed_twice
    # with a fixed seed, the study run in three sittings proposed what one sitting proposes
    assert _run(tmp_path, "once", 6, sampler) == resumed_twice


@pytest.mark.slow
def test_a_study_resumed_with_two_workers_never_replays_its_trials(tmp_path):
    (tmp_path / "tiny.yaml").write_text(SearchSpace.from_dict(TINY).to_yaml())
    base = ["study", "--study", "dup", "--space", "tiny.yaml", "--dataset", "iris", "--tracking-uri", "none",
            "--no-progress"]
    for extra in (["--n-trials", "2"], ["--n-trials", "4"], ["--n-trials", "8", "--workers", "2"]):
        proc = _forked.run(base + extra, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = optuna.load_study(study_name="dup", storage=f"sqlite:///{tmp_path}/mlruns/optuna.db").trials
    configurations = [tuple(sorted(t.params.items())) for t in trials]
    assert len(configurations) == 8 == len(set(configurations)), configurations


def test_the_recipe_is_typed_and_keeps_keys_it_does_not_know(tmp_path):
    """Every reader goes through the trial record's Recipe; a key written by another version survives a rewrite."""
    from tuner.study import StudyRecord

    settings = StudySettings(study_name="typed", n_trials=2, storage=f"sqlite:///{tmp_path}/optuna.db",
                             tracking_uri="none")
    study = Study(SearchSpace.from_dict(TINY), "iris", settings)
    record = StudyRecord(study.optuna_study)
    recipe = record.recipe
    assert recipe.dataset == "iris" and recipe.objective == ["val_accuracy"] and recipe.tracking_uri == "none"
    assert recipe.space["units"] == TINY["parameters"]["units"] and recipe.n_trials == 2
    study.optuna_study.set_user_attr("tuner", {**study.optuna_study.user_attrs["tuner"], "future_key": 1})
    study.record_target(5)
    assert StudyRecord(study.optuna_study).recipe.extra == {"future_key": 1}
    assert study.optuna_study.user_attrs["tuner"]["n_trials"] == 5
