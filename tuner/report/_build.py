"""Building a study's report from its Optuna storage and its MLflow store alone, and drawing its plots.

:func:`build_report` gathers a :class:`StudyReport`: the top trials, the counts of complete, pruned and
failed trials with their reasons, the best trial and its test-split score, the importances and the gap
analysis (:mod:`tuner.report._analysis`), the Pareto front of a multi-objective study, and what the MLflow
store holds about the study. :func:`make_plots` draws the plots and logs them to MLflow.

MLflow is reached through :mod:`tuner.tracking`, imported inside the functions that need it (as are the
plots' Matplotlib and Optuna), so importing this module stays light.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuner._store import mask_secrets, masked, sqlite_path, study_tracking_uri
from tuner.errors import ConfigError, Problem
from tuner.metrics import ranked
from tuner.report._analysis import GapAnalysis, Importances, evaluator_for, gap_analysis, param_importances
from tuner.report._curves import trial_plots
from tuner.report._figures import PlotSet
from tuner.report._plots import log_plots, study_plots
from tuner.report._selection import pareto_front
from tuner.report._trials import complete_trials, study_metric, varying_params
from tuner.study import StudyRecord, StudyResults, TrialReport

__all__ = ["StudyReport", "build_report", "make_plots"]


@dataclasses.dataclass
class StudyReport:
    """Everything a report shows, read from the stores. ``to_dict()`` is the ``--json`` output."""

    study: str
    storage: str
    objective: list[str]
    directions: list[str]
    dataset: dict[str, Any]
    metric: str | None
    counts: dict[str, int]
    problems: list[dict[str, Any]]
    varying: list[str]
    top: list[dict[str, Any]]
    best: dict[str, Any] | None
    test: dict[str, float] | None
    test_note: str | None
    importances: Importances
    gap_analysis: GapAnalysis
    pareto: dict[str, Any] | None
    mlflow: dict[str, Any]
    message: str | None = None
    plots: PlotSet = dataclasses.field(default_factory=PlotSet)
    lessons: dict[str, Any] = dataclasses.field(default_factory=dict)  # explain / --confirm / refine, when they ran
    tracking_uri: str | None = dataclasses.field(default=None, repr=False)  # unmasked, to read the runs; never shown

    @property
    def ok(self) -> bool:
        """Whether the study has a complete trial to report on."""
        return self.best is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "storage": self.storage,
            "objective": self.objective,
            "directions": self.directions,
            "dataset": self.dataset,
            "metric": self.metric,
            "counts": self.counts,
            "problems": self.problems,
            "varying_params": self.varying,
            "top": self.top,
            "best": self.best,
            "test": self.test,
            "test_note": self.test_note,
            "importances": self.importances.to_dict(),
            "gap_analysis": self.gap_analysis.to_dict(),
            "pareto": self.pareto,
            "mlflow": self.mlflow,
            "message": self.message,
            "plots": {"files": [f.to_dict() for f in self.plots.files], "skipped": self.plots.skipped},
            "lessons": self.lessons,
        }


def _mlflow_context(results: StudyResults, tracking_uri: str | None) -> dict[str, Any]:
    """What the MLflow store holds about the study: its experiment and its study (parent) runs."""
    info: dict[str, Any] = {
        "tracking_uri": tracking_uri,
        "experiment_id": None,
        "parent_run_id": None,
        "parent_run_ids": [],
        "note": None,
    }
    if tracking_uri is None:
        info["note"] = "no MLflow store found (pass --tracking-uri): learning curves and artifacts are left out"
        return info
    db = sqlite_path(tracking_uri)
    if db is not None and not db.exists():
        info["note"] = f"no MLflow store at {tracking_uri}: learning curves and artifacts are left out"
        return info
    from tuner.tracking import find_experiment, open_reader, study_run_ids

    reader = open_reader(tracking_uri)
    name = results.study.study_name
    exp_id = find_experiment(reader, name, experiment_id=StudyRecord(results.study).mlflow_experiment_id)
    if exp_id is None:
        info["note"] = f"the MLflow store {tracking_uri} has no experiment {name!r}"
        return info
    info["experiment_id"] = exp_id
    parents = study_run_ids(reader, exp_id)
    info["parent_run_ids"] = parents
    info["parent_run_id"] = parents[0] if parents else None
    if not parents:
        info["note"] = f"experiment {name!r} has no study run tagged tuner.kind=study"
    return info


# -- building the report ---------------------------------------------------------------------------


def _problems(results: StudyResults) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[int]] = {}
    for t in results.trials():
        if t.state in ("complete", "running", "waiting"):
            continue
        reason = t.fail_reason or "no reason recorded"
        if t.state == "pruned":
            reason = re.sub(r"\s*\(.*\)\s*$", "", reason)  # "pruned at epoch 2 (val_loss=...)" -> by epoch
        reason = reason if len(reason) <= 200 else reason[:197] + "..."
        groups.setdefault((t.state, reason), []).append(t.number)
    return [
        {"state": state, "reason": reason, "count": len(nums), "trials": nums}
        for (state, reason), nums in sorted(groups.items(), key=lambda kv: (kv[0][0], -len(kv[1])))
    ]


def _no_complete_message(name: str, counts: dict[str, int], problems: list[dict[str, Any]]) -> str:
    total = sum(counts.values())
    if total == 0:
        return f"study {name!r} has no trials yet: run `python -m tuner study --study {name}` to add some."
    states = ", ".join(f"{n} {'failed' if s == 'fail' else s}" for s, n in counts.items() if n)
    reasons = "; ".join(f"{p['count']}x {p['reason']}" for p in problems[:5])
    text = f"study {name!r} has no complete trial ({states})"
    return text + (f": {reasons}." if reasons else ".")


def _row(t: TrialReport, results: StudyResults, varying: Sequence[str], front: set[int]) -> dict[str, Any]:
    return {
        "number": t.number,
        "state": t.state,
        "params": {k: t.params.get(k) for k in varying},
        "objective": dict(zip(results.objective, t.values or [], strict=False)),
        "metrics": dict(t.metrics),
        "verdict": t.verdict,
        "best_epoch": t.best_epoch,
        "on_front": t.number in front,
        "mlflow_run_id": t.mlflow_run_id,
    }


def build_report(
    results: StudyResults,
    *,
    storage: str | None = None,
    tracking_uri: str | None = None,
    top: int = 10,
    evaluator: str = "fanova",
    seed: int = 0,
    gap: str = "gap_loss",
) -> StudyReport:
    """Gather a study's report from its Optuna storage (and MLflow store, for the runs).

    Args:
        results: from :func:`tuner.study.load_study_results`.
        storage: the Optuna storage URL the study was loaded from (shown, and used to find the MLflow
            store beside it). Defaults to the study's own storage URL when it has one.
        tracking_uri: the MLflow store; `None`: the one the study ran with (see
            :func:`tuner._store.study_tracking_uri`); ``"none"`` leaves MLflow out. Defaults to `None`.
        top: how many complete trials the table lists. Defaults to `10`.
        evaluator: the Optuna importance evaluator (see :func:`param_importances`). Defaults to `"fanova"`.
        seed: the evaluator's seed. Defaults to `0`.
        gap: the gap analysed. Defaults to `"gap_loss"`.

    Returns:
        A :class:`StudyReport`. With no complete trial, ``best`` is `None` and ``message`` says why.
    """
    if top < 1:
        raise ConfigError([Problem("--top", "top", "must be a positive integer", value=top)])
    if not re.fullmatch(r"gap_[a-z0-9_]+", gap):
        raise ConfigError(
            [Problem("--gap", "gap", "must name a gap metric such as gap_loss or gap_accuracy", value=gap)]
        )
    evaluator_for(evaluator)  # validates the name before any work
    study = results.study
    record = StudyRecord(study)
    storage = storage or results.storage or ""
    directions = [d.name.lower() for d in study.directions]
    metric = study_metric(results)
    counts = results.counts()
    problems = _problems(results)
    complete = complete_trials(study)
    varying = varying_params(complete)
    front = set(pareto_front(results)) if results.multi_objective else set()
    recorded = record.recipe.tracking_uri
    mlflow_info = _mlflow_context(results, study_tracking_uri(storage, given=tracking_uri, recorded=recorded))
    if (tracking_uri or recorded) == "none":
        mlflow_info["note"] = "MLflow left out (tracking URI 'none'): no learning curves or artifacts"
    reports = {t.number: t for t in results.trials()}
    front_first = sorted(ranked(complete, directions[0]), key=lambda t: t.number not in front)  # a stable sort
    rows = [_row(reports[t.number], results, varying, front) for t in front_first[:top]]
    best = test = test_note = message = None
    pareto = None
    if complete:
        b = results.best()
        selected = record.selected_trial if results.multi_objective else None
        selection = record.selection if selected is not None else None
        best = {
            **_row(b, results, list(b.params), front),
            "params": dict(b.params),
            "reason": b.reason,
            "suggestion": b.suggestion,
            "n_params": b.n_params,
            "wall_time": b.wall_time,
            "selected_by": (selection or {}).get("rule"),
        }
        test = results.best_test()
        if test is None:
            scored = record.best_test_trial
            test_note = (
                "the test split was not scored (tracking off, or the best model was not kept)"
                if scored is None
                else f"the test split was scored for trial {scored}, not for this trial: the test split is "
                "scored once, for the trial that was best when the study ran"
            )
        if results.multi_objective:
            note = None
            if selected is None:
                note = (
                    "no trade-off selected: best is the front trial with the best first objective; choose one "
                    f"with `python -m tuner select {study.study_name} --rule knee`"
                )
            pareto = {"front": sorted(front), "selected": selected, "selection": selection, "note": note}
    else:
        message = _no_complete_message(study.study_name, counts, problems)
    return StudyReport(
        study=study.study_name,
        storage=mask_secrets(storage),
        objective=list(results.objective),
        directions=directions,
        dataset=record.dataset_description,
        metric=metric,
        counts=counts,
        problems=problems,
        varying=varying,
        top=rows,
        best=best,
        test=test,
        test_note=test_note,
        importances=param_importances(results, evaluator=evaluator, seed=seed, gap=gap),
        gap_analysis=gap_analysis(results, gap=gap),
        pareto=pareto,
        mlflow=masked(mlflow_info),
        message=message,
        lessons=record.lessons(),
        tracking_uri=mlflow_info.get("tracking_uri"),
    )


def make_plots(
    report: StudyReport,
    results: StudyResults,
    out_dir: str | Path,
    *,
    log: bool = True,
    evaluator: str = "fanova",
    seed: int = 0,
    plotlyjs: str = "inline",
) -> PlotSet:
    """Draw the study's plots and every trial's learning curves into ``out_dir`` and log them to MLflow.

    Study plots go to the study's latest parent run, learning curves to each trial's child run, under
    ``plots/``. Without an MLflow store the study plots are still drawn; the learning curves need the
    per-epoch histories kept in MLflow.

    Args:
        report: from :func:`build_report`; its ``plots`` are filled in.
        results: the same study's results.
        out_dir: the folder of the files (study plots at the top, ``trial-<n>/`` per trial).
        log: log the files as MLflow artifacts. Defaults to `True`.
        evaluator, seed: the importance evaluator of the importance plot (as the report's). Defaults to
            `"fanova"` and `0`.
        plotlyjs: ``"inline"`` or ``"cdn"`` for the HTML plots. Defaults to `"inline"`.
    """
    out_dir = Path(out_dir)
    selected = None
    label = None
    if report.pareto is not None and report.best is not None:
        selected = report.best["number"]
        rule = (report.pareto.get("selection") or {}).get("rule")
        label = f"selected trial {selected} ({rule})" if rule else f"best trial {selected} (no trade-off selected)"
    plots = study_plots(
        results,
        out_dir,
        evaluator=evaluator_for(evaluator, seed=seed),
        evaluator_name=report.importances.evaluator,
        selected=selected,
        selected_label=label,
        gap=report.gap_analysis.gap,
        plotlyjs=plotlyjs,
    )
    uri = report.tracking_uri or report.mlflow.get("tracking_uri")
    reader = None
    if uri and report.mlflow.get("experiment_id"):
        from tuner.tracking import open_reader

        reader = open_reader(uri)
        plots.extend(trial_plots(results, reader, out_dir, metric=report.metric))
    else:
        plots.skipped["learning_curves"] = report.mlflow.get("note") or "no MLflow store"
    if log and reader is not None:
        log_plots(reader, plots, parent_run_id=report.mlflow.get("parent_run_id"))
    report.plots = plots
    return plots
