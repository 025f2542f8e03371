"""Reports: numbers checked against Optuna's and MLflow's own APIs, plots as PNG artifacts, select, exit codes.

The end-to-end tests share small real studies (tiny Keras models, 3 epochs) built once per session by
:func:`built_stores`; ``tests/test_report_html.py`` reuses them.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from scipy.stats import spearmanr

from tuner import SearchSpace
from tuner.cli import COMMANDS, main
from tuner.errors import ConfigError
from tuner.report import metric_history, plot_learning_curves
from tuner.cli import ReportCommand, SelectCommand
from tuner.report import (build_report, clear_selection, gap_analysis, param_importances, pareto_front,
                           select_trial)
from tuner.study import StudyResults, load_study_results
from tuner.study import Study, StudySettings

# Until the CLI registers them itself (harmless afterwards).
COMMANDS["report"] = ReportCommand
COMMANDS["select"] = SelectCommand

SPACE = {
    "name": "report-tiny",
    "parameters": {
        "n_layers": 1,
        "units": {"type": "int", "low": 8, "high": 32},
        "dropout": {"type": "float", "low": 0.0, "high": 0.4},
        "kernel_regularizer": {"type": "categorical", "choices": ["none", "l2"]},
        "kernel_l2": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True,
                      "condition": {"kernel_regularizer": ["l2"]}},
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "learning_rate": {"type": "float", "low": 1e-3, "high": 3e-3, "log": True},  # sgd diverges above
        "epochs": 3,
        "patience": 0,
        "batch_size": 64,
    },
}
STUDY_PLOTS = {"optimization_history", "param_importances", "param_importances_gap", "parallel_coordinate", "slice",
               "gap_vs_regularization"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_CACHE: dict[str, dict] = {}


def built_stores(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build (once per session) the stores of three real studies and the report of the main one.

    - ``rep``: diabetes, 7 trials, single objective ``val_loss``; trial 0 diverges (failed).
    - ``mo``: iris, 5 trials, objectives ``val_loss, gap_loss``.
    - ``allfail``: diabetes, 2 trials that both diverge (no MLflow).
    """
    if "stores" in _CACHE:
        return _CACHE["stores"]
    base = tmp_path_factory.mktemp("report-stores")
    storage = f"sqlite:///{base}/optuna.db"
    tracking = f"sqlite:///{base}/mlflow.db"
    space = SearchSpace.from_dict(SPACE)
    rep = Study(space, "diabetes", StudySettings(study_name="rep", n_trials=7, storage=storage, tracking_uri=tracking,
                                                 sampler="random", pruner="none"))
    rep.enqueue({"units": 16, "dropout": 0.0, "kernel_regularizer": "none", "optimizer": "sgd",
                 "learning_rate": 10.0})  # diverges at epoch 1
    rep.run()
    mo_space = SearchSpace.from_dict(dict(SPACE, parameters={**SPACE["parameters"], "epochs": 2}))
    Study(mo_space, "iris", StudySettings(study_name="mo", n_trials=5, storage=storage, tracking_uri=tracking,
                                          sampler="random", objective=("val_loss", "gap_loss"),
                                          log_best_model=False)).run()
    fail_space = SearchSpace.from_dict({"name": "diverging", "parameters": {
        "n_layers": 1, "units": {"type": "int", "low": 8, "high": 16}, "optimizer": "sgd", "learning_rate": 10.0,
        "epochs": 2, "patience": 0, "batch_size": 64}})
    Study(fail_space, "diabetes", StudySettings(study_name="allfail", n_trials=2, storage=storage,
                                                tracking_uri="none", pruner="none")).run()
    optuna.create_study(study_name="empty", storage=storage)
    _CACHE["stores"] = {"base": base, "storage": storage, "tracking": tracking}
    return _CACHE["stores"]


def built_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``report rep --json --html`` run once: its JSON, the HTML path and the plot folder."""
    if "report" in _CACHE:
        return _CACHE["report"]
    stores = built_stores(tmp_path_factory)
    out = tmp_path_factory.mktemp("report-out")
    html = out / "rep.html"
    rc, text = _run_cli(["report", "rep", "--storage", stores["storage"], "--json", "--html", str(html)])
    assert rc == 0, text
    _CACHE["report"] = {**stores, "data": json.loads(text), "html": html, "plots": out / "rep_plots"}
    return _CACHE["report"]


def _run_cli(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    return rc, buf.getvalue()


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return built_stores(tmp_path_factory)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return built_report(tmp_path_factory)


def _optuna(stores: dict, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=stores["storage"])


# -- the report's numbers --------------------------------------------------------------------------

@pytest.mark.slow
def test_counts_problems_and_top_trials_equal_optuna_and_mlflow(report):
    data = report["data"]
    study = _optuna(report, "rep")
    client = MlflowClient(tracking_uri=report["tracking"])
    trials = study.trials
    assert data["counts"] == {**{"complete": 0, "pruned": 0, "fail": 0, "running": 0, "waiting": 0},
                              **Counter(t.state.name.lower() for t in trials)}
    by_reason: dict[tuple[str, str], list[int]] = {}
    for t in trials:
        if t.state.name in ("FAIL", "PRUNED"):
            reason = t.user_attrs.get("fail_reason") or t.user_attrs["prune_reason"].split(" (")[0]
            by_reason.setdefault((t.state.name.lower(), reason), []).append(t.number)
    assert {(p["state"], p["reason"]): p["trials"] for p in data["problems"]} == by_reason
    assert by_reason[("fail", "non-finite loss at epoch 1")][0] == 0  # the enqueued diverging trial
    complete = sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert [r["number"] for r in data["top"]] == [t.number for t in complete]
    assert set(data["varying_params"]) == {"units", "dropout", "kernel_regularizer", "kernel_l2", "optimizer",
                                           "learning_rate"}
    for row, t in zip(data["top"], complete):
        assert row["objective"] == {"val_loss": t.value}
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.data.tags["optuna_trial_number"] == str(t.number)
        for key in ("train_loss", "val_loss", "train_mae", "val_mae", "gap_loss", "gap_mae"):
            assert row["metrics"][key] == pytest.approx(run.data.metrics[f"best_{key}"], rel=1e-6), key
            assert row["metrics"][key] == t.user_attrs["metrics"][key]
        assert row["verdict"] == run.data.tags["verdict"] == t.user_attrs["verdict"]
        assert row["best_epoch"] == run.data.metrics["best_epoch"] == t.user_attrs["best_epoch"]
        assert row["params"] == {k: t.params.get(k) for k in data["varying_params"]}
        assert row["state"] == "complete"


@pytest.mark.slow
def test_best_trial_and_its_test_score_equal_optuna_and_the_mlflow_study_run(report):
    data = report["data"]
    study = _optuna(report, "rep")
    client = MlflowClient(tracking_uri=report["tracking"])
    assert data["best"]["number"] == study.best_trial.number
    assert data["best"]["params"] == study.best_trial.params
    parents = client.search_runs([study.user_attrs["mlflow_experiment_id"]],
                                 filter_string="tags.`tuner.kind` = 'study'")
    assert [r.info.run_id for r in parents] == [data["mlflow"]["parent_run_id"]]
    parent = parents[0]
    assert set(data["test"]) == {"test_loss", "test_mae", "test_rmse"}
    for key, value in data["test"].items():
        assert value == pytest.approx(parent.data.metrics[f"best_{key}"], rel=1e-6)
        assert value == study.user_attrs["best_test"][key]
    assert parent.data.tags["best_trial_number"] == str(data["best"]["number"])


@pytest.mark.slow
def test_importances_are_optunas_own_with_the_named_evaluator(report):
    data = report["data"]
    study = _optuna(report, "rep")
    imp = data["importances"]
    assert imp["evaluator"] == "FanovaImportanceEvaluator"
    expected = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    assert imp["values"]["val_loss"] == pytest.approx({k: float(v) for k, v in expected.items()})
    expected_gap = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
        target=lambda t: t.user_attrs["gap_loss"])
    assert imp["values"]["gap_loss"] == pytest.approx({k: float(v) for k, v in expected_gap.items()})
    assert imp["n_trials"] == sum(t.state.name == "COMPLETE" for t in study.trials)


@pytest.mark.slow
def test_gap_analysis_rank_correlations_equal_scipy_on_optuna_values(report):
    data = report["data"]
    study = _optuna(report, "rep")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    ga = data["gap_analysis"]
    assert (ga["gap"], ga["validation"]) == ("gap_loss", "val_loss")
    effects = {e["knob"]: e for e in ga["effects"]}
    assert set(effects) == set(data["varying_params"])
    for knob in ("units", "dropout", "learning_rate", "kernel_l2"):
        rows = [(t.params[knob], t.user_attrs["gap_loss"], t.user_attrs["metrics"]["val_loss"]) for t in complete
                if knob in t.params]
        e = effects[knob]
        assert e["n_trials"] == len(rows)
        if len(rows) < 3:
            assert "too few complete trials" in e["sentence"]
            continue
        res = spearmanr([r[0] for r in rows], [r[1] for r in rows])
        assert e["rho_gap"] == pytest.approx(res.statistic)
        assert e["p_gap"] == pytest.approx(res.pvalue)
        assert e["rho_val"] == pytest.approx(spearmanr([r[0] for r in rows], [r[2] for r in rows]).statistic)
        assert f"ρ = {e['rho_gap']:.2f}, " in e["sentence"] and f"{len(rows)} trials" in e["sentence"]
    # regularization knobs first
    kinds = [e["regularization"] for e in ga["effects"]]
    assert kinds == sorted(kinds, reverse=True)
    assert effects["optimizer"]["kind"] == "categorical"
    assert {g["value"] for g in effects["optimizer"]["groups"]} == {t.params["optimizer"] for t in complete}


# -- plots ------------------------------------------------------------------------------------------

def _assert_png(path: Path) -> None:
    from PIL import Image

    raw = path.read_bytes()
    assert raw[:8] == PNG_MAGIC, path
    assert len(raw) > 8_000, (path, len(raw))
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.width >= 300 and img.height >= 200, (path, img.size)
        extrema = img.convert("L").getextrema()
        assert extrema[1] - extrema[0] > 100, path  # not a blank image


@pytest.mark.slow
def test_every_plot_is_a_valid_png_logged_on_the_right_run(report):
    data = report["data"]
    study = _optuna(report, "rep")
    client = MlflowClient(tracking_uri=report["tracking"])
    files = data["plots"]["files"]
    parent = data["mlflow"]["parent_run_id"]
    study_files = {f["name"]: f for f in files if f["trial"] is None}
    assert set(study_files) == STUDY_PLOTS, data["plots"]["skipped"]
    logged = {a.path for a in client.list_artifacts(parent, "plots")}
    for f in study_files.values():
        png = Path(f["png"])
        assert png.parent == report["plots"]
        _assert_png(png)
        assert f["run_id"] == parent
        assert f"plots/{png.name}" in logged
        if f["name"] != "gap_vs_regularization":  # Optuna's plotly plots also come as self-contained HTML
            html = Path(f["html"]).read_text()
            assert "Plotly.newPlot" in html and not re.search(r"<script[^>]+src=", html)  # plotly.js inline
            assert f"plots/{Path(f['html']).name}" in logged
    curves = {f["trial"]: f for f in files if f["trial"] is not None}
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert {t.number for t in complete} <= set(curves)
    for t in study.trials:
        if t.number not in curves:
            assert t.state.name == "FAIL"  # diverged at epoch 1: no finite epoch to draw
            continue
        f = curves[t.number]
        _assert_png(Path(f["png"]))
        assert f["run_id"] == t.user_attrs["mlflow_run_id"]
        run = client.get_run(f["run_id"])
        assert run.data.tags["optuna_trial_number"] == str(t.number)
        assert run.data.tags["mlflow.parentRunId"] == parent
        assert [a.path for a in client.list_artifacts(f["run_id"], "plots")] == ["plots/learning_curves.png"]
        local = client.download_artifacts(f["run_id"], "plots/learning_curves.png")
        assert Path(local).read_bytes() == Path(f["png"]).read_bytes()


@pytest.mark.slow
def test_learning_curves_are_redrawn_from_the_mlflow_metric_histories(report):
    study = _optuna(report, "rep")
    client = MlflowClient(tracking_uri=report["tracking"])
    t = study.best_trial
    run_id = t.user_attrs["mlflow_run_id"]
    history = metric_history(client, run_id, ["train_loss", "val_loss", "train_mae", "val_mae"])
    for key in ("train_loss", "val_loss", "train_mae", "val_mae"):
        points = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
        assert history[key] == [m.value for m in points]
    assert history["epoch"] == [1, 2, 3]
    fig = plot_learning_curves(history, best_epoch=t.user_attrs["best_epoch"], verdict=t.user_attrs["verdict"],
                               metric="mae", title=f"trial {t.number}")
    loss_ax, mae_ax = fig.axes
    lines = {ln.get_label(): list(ln.get_ydata()) for ln in loss_ax.get_lines()}
    assert lines["train (honest)"] == pytest.approx(history["train_loss"])
    assert lines["validation"] == pytest.approx(history["val_loss"])
    assert list(lines[f"chosen epoch {t.user_attrs['best_epoch']}"]) == [0, 1]  # axvline in axes coordinates
    assert fig.get_suptitle() == f"trial {t.number}: {t.user_attrs['verdict']}"
    assert mae_ax.get_title() == "mae"


def test_the_tracker_and_the_report_draw_learning_curves_with_one_drawer():
    """The tracker's quick figure at the end of a trial is the report's drawer with a gap panel."""
    history = {"train_loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6], "train_accuracy": [0.5, 0.7, 0.9],
               "val_accuracy": [0.45, 0.6, 0.7], "gap_loss": [0.1, 0.2, 0.3], "gap_accuracy": [0.05, 0.1, 0.2]}
    fig = plot_learning_curves(history, gaps=True, compact=True)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy", "gap"]
    gap_lines = {ln.get_label(): list(ln.get_ydata()) for ln in fig.axes[2].get_lines()}
    assert gap_lines == {"gap_loss": [0.1, 0.2, 0.3], "gap_accuracy": [0.05, 0.1, 0.2]}
    assert [ax.get_title() for ax in plot_learning_curves(history).axes] == ["loss", "accuracy"]


def test_what_counts_as_a_regularizer_is_defined_once():
    """Every knob an ablation switches off is a regularization knob of the gap plot, weight_decay included."""
    from tuner.report import regularization_knobs
    from tuner.study import BUILTIN_OFF

    switched = sorted({knob for changes in BUILTIN_OFF.values() for knob in changes})
    assert regularization_knobs(switched) == switched
    assert regularization_knobs(["weight_decay", "dropout_2", "learning_rate", "units"]) == ["weight_decay", "dropout_2"]


# -- the terminal report and the fresh process -----------------------------------------------------

@pytest.mark.slow
def test_terminal_report_shows_tables_sentences_and_the_test_score(report):
    rc, text = _run_cli(["report", "rep", "--storage", report["storage"], "--top", "3"])
    assert rc == 0
    data = report["data"]
    assert "Top 3 complete trials by val_loss" in text
    assert "FanovaImportanceEvaluator" in text
    assert f"Best trial {data['best']['number']}" in text
    assert "test split: test_loss=" in text
    assert "non-finite loss at epoch 1" in text
    for e in data["gap_analysis"]["effects"]:
        assert e["sentence"] in text.replace("\n", " ") or e["sentence"][:60] in text
    for row in data["top"][:3]:
        assert f"{row['objective']['val_loss']:.4g}" in text


@pytest.mark.slow
def test_report_runs_in_a_later_process_from_the_stores_alone_without_tensorflow(report):
    code = ("import sys, json; from tuner.cli import COMMANDS, main; "
            "from tuner.cli import ReportCommand; COMMANDS['report'] = ReportCommand; "
            f"rc = main(['report', 'rep', '--storage', {report['storage']!r}, '--json']); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'; "
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    mine = report["data"]
    assert data["top"] == mine["top"] and data["best"] == mine["best"] and data["test"] == mine["test"]
    assert data["importances"] == mine["importances"]


# -- exit codes ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_report_exit_codes_and_messages(stores, tmp_path, capsys):
    storage = stores["storage"]
    assert main(["report", "nope", "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "study 'nope': does not exist; studies here:" in err and "'rep'" in err

    assert main(["report", "empty", "--storage", storage]) == 1
    captured = capsys.readouterr()
    assert "study 'empty' has no trials yet" in captured.err
    assert "0 complete" in captured.out

    assert main(["report", "allfail", "--storage", storage]) == 1
    captured = capsys.readouterr()
    assert "study 'allfail' has no complete trial (2 failed): 2x non-finite loss at epoch 1." in captured.err
    assert "non-finite loss at epoch 1" in captured.out and "Trials: 0 complete, 0 pruned, 2 failed" in captured.out

    assert main(["report", "allfail", "--storage", storage, "--json"]) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["best"] is None and data["counts"]["fail"] == 2 and data["message"].startswith("study 'allfail'")
    assert data["problems"] == [{"state": "fail", "reason": "non-finite loss at epoch 1", "count": 2,
                                 "trials": [0, 1]}]

    assert main(["report", "rep", "--storage", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert "no study store here" in capsys.readouterr().err
    assert main(["report", "rep", "--storage", storage, "--top", "0"]) == 2
    assert "--top: top: must be a positive integer; got 0" in capsys.readouterr().err
    assert main(["report", "rep", "--storage", storage, "--gap", "val_loss"]) == 2
    assert "--gap: gap: must name a gap metric" in capsys.readouterr().err


# -- multi-objective: select and the Pareto front ---------------------------------------------------------

@pytest.mark.slow
def test_select_on_a_real_multi_objective_study_is_what_best_and_report_return(stores, tmp_path, capsys):
    storage = stores["storage"]
    study = _optuna(stores, "mo")
    front = sorted(t.number for t in study.best_trials)
    assert main(["select", "mo", "--storage", storage, "--rule", "knee", "--json"]) == 0
    chosen = json.loads(capsys.readouterr().out)
    assert chosen["selection"]["rule"] == "knee" and chosen["selection"]["front"] == front
    assert chosen["trial"]["number"] in front
    assert _optuna(stores, "mo").user_attrs["selected_trial"] == chosen["trial"]["number"]
    assert main(["best", "mo", "--storage", storage, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["number"] == chosen["trial"]["number"]

    html = tmp_path / "mo.html"
    assert main(["report", "mo", "--storage", storage, "--json", "--html", str(html)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["best"]["number"] == chosen["trial"]["number"] and data["best"]["selected_by"] == "knee"
    assert data["pareto"]["front"] == front and data["pareto"]["selected"] == chosen["trial"]["number"]
    for f in data["plots"]["files"]:
        _assert_png(Path(f["png"]))
    pareto = next(f for f in data["plots"]["files"] if f["name"] == "pareto_front")
    for i, name in enumerate(("val_loss", "gap_loss")):
        expected = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), target=lambda t, i=i: t.values[i])
        assert data["importances"]["values"][name] == pytest.approx({k: float(v) for k, v in expected.items()})
    client = MlflowClient(tracking_uri=stores["tracking"])
    assert "plots/pareto_front.png" in {a.path for a in client.list_artifacts(pareto["run_id"], "plots")}
    assert client.get_run(pareto["run_id"]).data.tags["tuner.kind"] == "study"
    assert data["top"][0]["on_front"] and [r["on_front"] for r in data["top"]] == sorted(
        [r["on_front"] for r in data["top"]], reverse=True)

    assert main(["select", "mo", "--storage", storage, "--rule", "gap_bound", "--gap-bound", "-100"]) == 2
    assert "no trial on the Pareto front has gap_loss <= -100.0; the smallest there is" in capsys.readouterr().err
    assert main(["select", "rep", "--storage", storage]) == 2
    assert "applies to multi-objective studies only" in capsys.readouterr().err
    assert main(["select", "mo", "--storage", storage, "--clear"]) == 0
    capsys.readouterr()
    assert _optuna(stores, "mo").user_attrs["selected_trial"] is None


def _synthetic_mo(points: list[tuple[float, float]]) -> StudyResults:
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.set_user_attr("tuner", {"objective": ["val_loss", "gap_loss"]})
    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    for i, (val, gap) in enumerate(points):
        study.add_trial(optuna.trial.create_trial(values=[val, gap], params={"dropout": i / 10},
                                                  distributions={"dropout": dist},
                                                  user_attrs={"metrics": {"val_loss": val, "gap_loss": gap}}))
    return StudyResults(study)


def test_select_rules_knee_and_gap_bound():
    # front: 0 (0.10, 0.50), 1 (0.20, 0.10), 2 (0.50, 0.05), 3 (0.90, 0.00); 4 and 5 are dominated
    results = _synthetic_mo([(0.10, 0.50), (0.20, 0.10), (0.50, 0.05), (0.90, 0.00), (0.30, 0.30), (0.95, 0.6)])
    assert pareto_front(results) == [0, 1, 2, 3]
    assert results.best().number == 0  # before any selection: best first objective on the front
    assert select_trial(results, "knee").number == 1
    assert results.best().number == 1
    assert results.study.user_attrs["selection"] == {"trial": 1, "rule": "knee", "gap_bound": None,
                                                     "validation": "val_loss", "gap": "gap_loss",
                                                     "front": [0, 1, 2, 3]}
    assert select_trial(results, "gap_bound", gap_bound=0.06).number == 2
    assert select_trial(results, "gap_bound", gap_bound=1.0).number == 0
    assert results.best().number == 0
    with pytest.raises(ConfigError, match=r"no trial on the Pareto front has gap_loss <= -1.0; the smallest there "
                                          r"is 0 \(trial 3\)"):
        select_trial(results, "gap_bound", gap_bound=-1.0)
    with pytest.raises(ConfigError, match=r"--rule: rule: must be one of \['knee', 'gap_bound'\]; got 'elbow'"):
        select_trial(results, "elbow")
    with pytest.raises(ConfigError, match=r"--gap-bound: gap_bound: must be a finite number for the gap_bound rule"):
        select_trial(results, "gap_bound")
    with pytest.raises(ConfigError, match=r"applies to the gap_bound rule only"):
        select_trial(results, "knee", gap_bound=0.1)
    clear_selection(results)
    assert results.best().number == 0
    two = _synthetic_mo([(0.1, 0.4), (0.3, 0.1)])
    assert select_trial(two, "knee").number == 0  # two points: closest to the ideal corner, ties to the lower number


def test_select_refuses_single_objective_studies():
    study = optuna.create_study(direction="minimize")
    study.add_trial(optuna.trial.create_trial(value=0.3, params={}, distributions={}))
    with pytest.raises(ConfigError, match=r"select: applies to multi-objective studies only"):
        select_trial(StudyResults(study), "knee")


# -- gap analysis and importances on synthetic studies (no training) ---------------------------------

def _synthetic(rows: list[dict], *, objective: str = "val_accuracy", task: str = "multiclass") -> StudyResults:
    direction = "maximize" if objective.endswith("accuracy") else "minimize"
    study = optuna.create_study(direction=direction)
    study.set_user_attr("tuner", {"objective": [objective]})
    study.set_user_attr("dataset_description", {"name": "synthetic", "task": task})
    dists = {"dropout": optuna.distributions.FloatDistribution(0.0, 0.6),
             "units": optuna.distributions.IntDistribution(8, 64),
             "batch_norm": optuna.distributions.CategoricalDistribution(["off", "before"])}
    for r in rows:
        params = {k: r[k] for k in dists if k in r}
        metrics = {"gap_loss": r["gap"], "val_accuracy": r["val"], "val_loss": 1 - r["val"]}
        study.add_trial(optuna.trial.create_trial(value=metrics[objective], params=params,
                                                  distributions={k: dists[k] for k in params},
                                                  user_attrs={"metrics": metrics, "gap_loss": r["gap"],
                                                              "verdict": "good_fit"}))
    return StudyResults(study)


def test_gap_analysis_sentences():
    rows = [{"dropout": d / 20, "units": 8 + (7 * i) % 50, "batch_norm": "off" if i % 2 else "before",
             "gap": 0.5 - d / 20 + (0.2 if i % 2 else 0.0), "val": 0.80 + 0.01 * ((5 * i) % 3)}
            for i, d in enumerate(range(12))]
    ga = gap_analysis(_synthetic(rows))
    effects = {e.knob: e for e in ga.effects}
    assert [e.knob for e in ga.effects][:2] == ["dropout", "batch_norm"]  # regularization knobs first
    d = effects["dropout"]
    assert d.n_trials == 12 and d.rho_gap < -0.8
    assert d.sentence.startswith(f"higher dropout narrowed the gap (ρ = {d.rho_gap:.2f}, 12 trials) at no clear cost "
                                 "in validation accuracy (ρ = ")
    bn = effects["batch_norm"]
    assert bn.kind == "categorical" and {g["value"]: g["n"] for g in bn.groups} == {"off": 6, "before": 6}
    assert bn.sentence.startswith("batch_norm: the gap was smallest with 'before' (median ")
    assert "validation accuracy was best with" in bn.sentence

    costly = [{"dropout": d / 20, "gap": 0.5 - d / 20, "val": 0.9 - d / 40} for d in range(12)]
    s = {e.knob: e for e in gap_analysis(_synthetic(costly)).effects}["dropout"].sentence
    assert s == "higher dropout narrowed the gap (ρ = -1.00, 12 trials) but cost validation accuracy (ρ = -1.00)."
    few = [{"dropout": 0.1, "gap": 0.1, "val": 0.8}, {"dropout": 0.2, "gap": 0.05, "val": 0.8}]
    assert "too few complete trials (2)" in gap_analysis(_synthetic(few)).effects[0].sentence
    loss = gap_analysis(_synthetic(costly, objective="val_loss", task="regression"))
    assert loss.validation == "val_loss"
    assert "but cost validation loss" in loss.effects[0].sentence


def test_importances_need_two_complete_trials_and_name_the_evaluator():
    one = _synthetic([{"dropout": 0.1, "gap": 0.1, "val": 0.8}])
    imp = param_importances(one)
    assert imp.values == {} and imp.note == "importances need at least 2 complete trials; the study has 1"
    assert imp.evaluator == "FanovaImportanceEvaluator"
    rows = [{"dropout": d / 20, "units": 8 + 3 * d, "gap": 0.5 - d / 20, "val": 0.8} for d in range(8)]
    ped = param_importances(_synthetic(rows), evaluator="ped_anova")
    assert ped.evaluator == "PedAnovaImportanceEvaluator" and set(ped.values) == {"val_accuracy", "gap_loss"}
    with pytest.raises(ConfigError, match=r"--evaluator: evaluator: must be one of"):
        param_importances(_synthetic(rows), evaluator="shap")


def test_a_study_with_no_complete_trial_gets_a_message_not_a_crash():
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, params={}, distributions={},
                                              user_attrs={"fail_reason": "non-finite loss at epoch 1"}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, params={}, distributions={},
                                              user_attrs={"prune_reason": "pruned at epoch 2 (val_loss=3.2)"}))
    report = build_report(StudyResults(study), tracking_uri="none")
    assert not report.ok and report.best is None and report.top == []
    assert report.message.endswith("has no complete trial (1 pruned, 1 failed): 1x non-finite loss at epoch 1; "
                                   "1x pruned at epoch 2.")
    assert report.importances.note == "importances need at least 2 complete trials; the study has 0"
    assert report.gap_analysis.note == "no complete trial"
    json.dumps(report.to_dict())


@pytest.mark.slow
def test_load_study_results_is_what_the_report_reads(stores):
    results = load_study_results("rep", storage=stores["storage"])
    rep = build_report(results, storage=stores["storage"], top=2)
    assert len(rep.top) == 2
    assert rep.mlflow["tracking_uri"] == stores["tracking"]  # found beside the SQLite Optuna storage
    assert not math.isnan(rep.top[0]["objective"]["val_loss"])


def test_report_and_ui_find_the_mlflow_store_a_study_ran_with(tmp_path):
    """A study tracked in a store of its own (``--tracking-uri``) is reported and opened from that store."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    storage, uri = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{elsewhere}/mlflow.db"
    space = SearchSpace.from_dict({**SPACE, "parameters": {**SPACE["parameters"], "epochs": 1}})
    Study(space, "iris", StudySettings(study_name="own", n_trials=1, storage=storage, tracking_uri=uri)).run()
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("own").experiment_id
    study_run = client.search_runs([experiment], filter_string="tags.`tuner.kind` = 'study'")[0]

    rc, out = _run_cli(["report", "own", "--storage", storage, "--json"])
    assert rc == 0
    mlflow_info = json.loads(out)["mlflow"]
    assert mlflow_info["experiment_id"] == experiment and mlflow_info["note"] is None
    assert study_run.info.run_id in json.dumps(mlflow_info)

    proc = subprocess.Popen([sys.executable, "-m", "tuner", "ui", "own", "--storage", storage, "--port", "1"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert line.startswith(f"MLflow UI for {uri} at http://127.0.0.1:1/#/experiments/{experiment}/runs"), line


def test_a_relative_store_recorded_in_another_folder_is_found_beside_the_storage(tmp_path, monkeypatch):
    from tuner._store import study_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # the study ran in tmp_path/run with --tracking-uri sqlite:///mlflow.db
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mlflow.db").touch()
    storage = f"sqlite:///{tmp_path}/run/optuna.db"
    assert study_tracking_uri(storage, recorded="sqlite:///mlflow.db") == f"sqlite:///{tmp_path}/run/mlflow.db"
    assert study_tracking_uri(storage, recorded="sqlite:///run/mlflow.db") == f"sqlite:///{tmp_path}/run/mlflow.db"
    assert study_tracking_uri(storage, recorded="sqlite:///elsewhere/mlflow.db") == f"sqlite:///{tmp_path}/run/mlflow.db"
    # here first: a relative default storage (mlruns/optuna.db) beside its own mlflow.db does not capture it
    (tmp_path / "mlflow.db").touch()
    (tmp_path / "mlruns").mkdir()
    (tmp_path / "mlruns" / "mlflow.db").touch()
    assert study_tracking_uri("sqlite:///mlruns/optuna.db", recorded="sqlite:///mlflow.db") == \
        f"sqlite:///{tmp_path}/mlflow.db"
    assert study_tracking_uri(storage, recorded="http://server:5000") == "http://server:5000"
    assert study_tracking_uri(storage, recorded="none") is None
    assert study_tracking_uri(storage, given="none", recorded="http://server:5000") is None
    assert study_tracking_uri(storage, given="sqlite:///x.db", recorded="http://server:5000") == "sqlite:///x.db"
