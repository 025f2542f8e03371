"""What the study teaches: the ablation of the winner, the refined space, and whether the winner is luck.

Real tiny studies (digits and iris, real Keras training, real SQLite Optuna and MLflow stores): retraining
is never mocked. The refine test builds its trials with ``optuna.create_trial`` on a study that tuner
created (so it has its recipe), and reads it back from its storage as the CLI does.
"""

from __future__ import annotations

import html
import json

import optuna
import pytest
from mlflow import MlflowClient

from tuner import SearchSpace, load_space
from tuner.cli import main
from tuner.errors import ConfigError
from tuner.report import build_report, explain, refine, write_html
from tuner.study import Study, StudyRecord, StudySettings, ablation_variants, declared_off, load_study_results


def _stores(tmp_path) -> tuple[str, str]:
    return f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"


# -- which regularizers are active, and what switches them off (no training) ------------------------------

def test_variants_of_builtin_knobs_per_layer_dropout_and_penalties() -> None:
    params = {"dropout_1": 0.3, "dropout_2": 0.0, "kernel_regularizer": "l2", "kernel_l2": 1e-4,
              "bias_regularizer": "none", "batch_norm": "after", "patience": 5, "augment_noise": 0.1,
              "augment_flip": "none", "recurrent_dropout": 0.2}
    variants = {v.name: v for v in ablation_variants(params)}
    assert set(variants) == {"dropout", "recurrent_dropout", "kernel_regularizer", "batch_norm", "augmentation",
                             "early_stopping"}
    assert variants["dropout"].changes == {"dropout_1": 0.0, "dropout_2": 0.0}
    assert variants["dropout"].label == "dropout 0.3/0"
    assert variants["kernel_regularizer"].changes == {"kernel_regularizer": "none"}
    assert variants["kernel_regularizer"].label == "kernel_regularizer l2 (l2=0.0001)"
    assert variants["batch_norm"].changes == {"batch_norm": "off"}
    assert variants["augmentation"].changes == {"augment_noise": 0.0}
    assert variants["early_stopping"].apply(params)["patience"] == 0


def test_user_parameters_declare_their_off_value() -> None:
    space = {"parameters": {"my_drop": {"type": "float", "low": 0.0, "high": 0.5, "regularizer_off": 0.0},
                            "width": {"type": "int", "low": 8, "high": 64}}}
    assert declared_off(space) == {"my_drop": 0.0}
    assert declared_off(space["parameters"]) == {"my_drop": 0.0}
    params = {"my_drop": 0.25, "width": 32, "dropout": 0.1, "patience": 0}
    variants = ablation_variants(params, off={**declared_off(space), "dropout": 0.05})
    assert [(v.name, v.changes) for v in variants] == [("my_drop", {"my_drop": 0.0}), ("dropout", {"dropout": 0.05})]
    assert ablation_variants({"my_drop": 0.0, "patience": 0}, off={"my_drop": 0.0}) == []
    with pytest.raises(ConfigError, match=r"regularizer_off: nope: must name a parameter of the configuration"):
        ablation_variants(params, off={"nope": 0.0})


def test_a_space_file_declares_the_off_value_of_a_user_model_parameter() -> None:
    space = SearchSpace.from_dict({"name": "mine", "parameters": {"epochs": 2}, "model_parameters": {
        "my_drop": {"type": "float", "low": 0.0, "high": 0.5, "regularizer_off": 0.0},
        "my_l2": {"value": 1.0e-4, "regularizer_off": None}, "width": {"type": "int", "low": 8, "high": 64}}})
    assert SearchSpace.from_yaml(space.to_yaml()) == space  # the declaration survives the study recipe
    assert declared_off(space.to_dict()) == {"my_drop": 0.0, "my_l2": None}
    with pytest.raises(ConfigError, match=r"parameters\.dropout\.regularizer_off: unknown key"):
        SearchSpace.from_dict({"parameters": {"dropout": {"type": "float", "low": 0.0, "high": 0.5,
                                                          "regularizer_off": 0.0}}})  # built-in knobs know theirs


# -- the ablation on a real study ------------------------------------------------------------------------

HEAVY_DROPOUT = {  # measured: gap_loss about 0.044 with dropout 0.6 and 0.063 without, over seeds 0 and 1
    "name": "heavy-dropout",
    "parameters": {"n_layers": 1, "units": 256, "dropout": 0.6, "epochs": 30, "batch_size": 64,
                   "learning_rate": 1.0e-3, "scaling": "minmax", "patience": 0,
                   "optimizer": {"type": "categorical", "choices": ["adam"]}},
}


@pytest.mark.slow
def test_ablation_shows_the_gap_widening_without_dropout(tmp_path, capsys) -> None:
    storage, tracking = _stores(tmp_path)
    Study(SearchSpace.from_dict(HEAVY_DROPOUT), "digits", StudySettings(
        study_name="heavy", n_trials=1, storage=storage, tracking_uri=tracking, pruner="none",
        log_best_model=False)).run()

    found = explain("heavy", storage=storage, seeds=2)["ablation"]

    (row,) = found["rows"]  # patience 0: early stopping is off already; dropout is the only regularizer
    assert row["name"] == "dropout" and row["label"] == "dropout 0.6"
    assert len(row["runs"]) == 2 and len(found["baseline_runs"]) == 2
    assert row["off"]["gap_loss"]["mean"] > found["baseline"]["gap_loss"]["mean"] + 0.005
    assert row["delta"]["gap_loss"]["n"] == 2 and row["delta"]["gap_loss"]["sd"] is not None
    assert row["sentence"].startswith("dropout 0.6: ") and "pts validation accuracy" in row["sentence"]
    # stored on the study, logged on its parent MLflow run as a table and a plot
    results = load_study_results("heavy", storage=storage)
    assert StudyRecord(results.study).lessons()["ablation"]["rows"][0]["sentence"] == row["sentence"]
    run_id = found["mlflow"]["run_id"]
    assert run_id is not None
    logged = {a.path for a in MlflowClient(tracking_uri=tracking).list_artifacts(run_id, "lessons")}
    assert logged == {"lessons/ablation.json", "lessons/ablation.csv", "lessons/ablation.png"}
    # and shown by report --html
    report = build_report(results, storage=storage, tracking_uri=tracking)
    page = write_html(report, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "What each regularizer of trial 0 bought" in page and html.escape(row["sentence"]) in page

    # bad options on a study that has a complete trial: a usage error naming the option, nothing retrained
    assert main(["explain", "heavy", "--storage", storage, "--no-log", "--trial", "7"]) == 2
    assert "--trial: trial: must be the number of a complete trial of study 'heavy' (complete: [0])" in \
        capsys.readouterr().err
    assert main(["explain", "heavy", "--storage", storage, "--no-log", "--seeds", "0"]) == 2
    assert "--seeds: seeds: must be a positive integer" in capsys.readouterr().err


# -- is the winner luck? ---------------------------------------------------------------------------------

TINY = {"name": "tiny", "parameters": {"n_layers": 1, "units": {"type": "int", "low": 4, "high": 32},
                                       "learning_rate": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
                                       "epochs": 2, "patience": 0, "batch_size": 16}}


@pytest.mark.slow
def test_study_confirm_reports_spreads_over_the_requested_seeds(tmp_path, capsys) -> None:
    storage, _ = _stores(tmp_path)
    space = tmp_path / "tiny.yaml"
    space.write_text(json.dumps(TINY), encoding="utf-8")
    code = main(["study", "--space", str(space), "--dataset", "iris", "--study", "tiny", "--n-trials", "3",
                 "--storage", storage, "--tracking-uri", "none", "--pruner", "none", "--sampler", "random",
                 "--no-progress", "--confirm", "2", "--confirm-seeds", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "is the winner luck? top 2 retrained over 3 seeds" in out
    c = StudyRecord(load_study_results("tiny", storage=storage).study).lessons()["confirmation"]
    assert [r["rank"] for r in c["rows"]] == [1, 2]
    for r in c["rows"]:
        assert len(r["values"]) == 3 and r["n"] == 3 and r["sd"] is not None
    assert sorted(r["retrained_rank"] for r in c["rows"]) == [1, 2]
    assert {"welch_p", "paired_p", "diff"} <= set(c["rows"][1])
    assert c["sentence"] in out and c["mlflow"]["run_id"] is None  # tracking off: stored on the study only


# -- where to search next --------------------------------------------------------------------------------

LOW_LR = {"name": "low-lr", "parameters": {
    "n_layers": 1, "units": 16, "epochs": 2,
    "learning_rate": {"type": "float", "low": 1.0e-7, "high": 1.0e-5, "log": True},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
    "momentum": {"type": "float", "low": 0.0, "high": 0.9, "condition": {"optimizer": ["sgd"]}},
}}


def test_refine_moves_a_far_too_low_learning_rate_range_up(tmp_path, capsys) -> None:
    storage, _ = _stores(tmp_path)
    study = Study(SearchSpace.from_dict(LOW_LR), "iris", StudySettings(study_name="low-lr", storage=storage,
                                                                       tracking_uri="none"))
    opt = study.optuna_study  # created with its recipe, as `tuner study` does
    lr = optuna.distributions.FloatDistribution(1e-7, 1e-5, log=True)
    opt_dist = optuna.distributions.CategoricalDistribution(["adam", "sgd"])
    mom = optuna.distributions.FloatDistribution(0.0, 0.9)
    for i in range(10):  # accuracy climbs with the learning rate; sgd is always worse
        rate = 1e-7 * 100 ** (i / 9)
        sgd = i % 3 == 0
        params = {"learning_rate": rate, "optimizer": "sgd" if sgd else "adam", **({"momentum": 0.5} if sgd else {})}
        dists = {"learning_rate": lr, "optimizer": opt_dist, **({"momentum": mom} if sgd else {})}
        opt.add_trial(optuna.trial.create_trial(params=params, distributions=dists,
                                                value=0.2 + 0.05 * i - (0.3 if sgd else 0.0)))
    out_file = tmp_path / "next.yaml"
    assert main(["refine", "low-lr", "--storage", storage, "-o", str(out_file), "--no-log"]) == 0
    printed = capsys.readouterr().out
    refined = load_space(out_file)
    new_lr = refined.params["learning_rate"]
    assert new_lr.log and new_lr.high > 1e-5 * 10 and new_lr.low > 1e-7
    assert refined.params["optimizer"].value == "adam"  # sgd never wins: dropped, so fixed
    assert "momentum" not in refined.params  # its condition (optimizer sgd) can no longer hold
    text = out_file.read_text(encoding="utf-8")
    assert "# learning_rate: the best 3 trials' values" in text and "crowd the upper bound" in text
    assert "# momentum removed:" in text
    assert "learning_rate: the best 3 trials" in printed
    stored = StudyRecord(load_study_results("low-lr", storage=storage).study).lessons()["refinement"]
    assert {c["param"] for c in stored["changes"]} == {"learning_rate", "optimizer", "momentum"}


def test_refine_leaves_a_space_alone_with_too_few_trials(tmp_path) -> None:
    storage, _ = _stores(tmp_path)
    study = Study(SearchSpace.from_dict(LOW_LR), "iris", StudySettings(study_name="few", storage=storage,
                                                                       tracking_uri="none"))
    found = refine(study, log=False)
    assert found["changes"] == [] and "too few" in found["note"]
    assert load_space  # the text loads as a space
    assert SearchSpace.from_yaml(found["yaml"]).params["learning_rate"].high == 1e-5


def test_explain_and_refine_name_a_missing_study(tmp_path, capsys) -> None:
    storage, _ = _stores(tmp_path)
    Study(SearchSpace.from_dict(LOW_LR), "iris", StudySettings(study_name="there", storage=storage,
                                                               tracking_uri="none")).optuna_study
    assert main(["refine", "nope", "--storage", storage]) == 2
    assert "study 'nope'" in capsys.readouterr().err
    assert main(["explain", "there", "--storage", storage, "--no-log"]) == 1  # as best and report
    assert "has no complete trial" in capsys.readouterr().err
    assert main(["explain", "there", "--storage", storage, "--seeds", "0"]) == 2


def test_a_change_that_rounds_to_zero_reads_plus_zero_not_minus_zero() -> None:
    from tuner.report._explain import _row_sentence

    row = {"delta": {"val_accuracy": {"mean": -0.0002, "sd": 0.0078}},
           "off": {"gap_accuracy": {"mean": 0.0384}, "gap_loss": {"mean": 0.1614}}}
    baseline = {"gap_accuracy": {"mean": 0.0366}, "gap_loss": {"mean": 0.1518}}
    sentence = _row_sentence("dropout 0.317", row, baseline, "accuracy")
    assert sentence == ("dropout 0.317: +0.0 pts validation accuracy (sd 0.8), gap 3.8 -> 3.7 pts, "
                        "gap_loss 0.161 -> 0.152")
