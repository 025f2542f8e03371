"""The learning curves of a study's trials, redrawn from their MLflow metric histories (:func:`trial_plots`),
with the one drawer of learning curves (:func:`tuner.tracking.plot_learning_curves`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuner.report._figures import PlotFile, PlotSet, save_png
from tuner.report._trials import study_metric
from tuner.tracking import metric_history, plot_learning_curves

__all__ = ["trial_plots"]


def trial_plots(
    results: Any, client: Any, out_dir: str | Path, *, trials: Sequence[int] | None = None, metric: str | None = None
) -> PlotSet:
    """Redraw the learning curves of trials from their MLflow metric histories.

    Args:
        results: a :class:`~tuner.study.StudyResults`.
        client: a reader from :func:`tuner.tracking.open_reader` on the study's tracking store.
        out_dir: folder of the plots; each trial's PNG goes to ``trial-<n>/learning_curves.png``.
        trials: trial numbers to draw; `None` draws every trial with an MLflow run. Defaults to `None`.
        metric: the metric panel (``accuracy``, ``mae``); `None` infers it from the trials. Defaults to `None`.
    """
    out = PlotSet()
    wanted = None if trials is None else set(trials)
    metric = metric or study_metric(results)
    keys = ["train_loss", "val_loss"] + ([f"train_{metric}", f"val_{metric}"] if metric else [])
    for t in results.trials():
        if wanted is not None and t.number not in wanted:
            continue
        if not t.mlflow_run_id:
            out.skipped[f"trial-{t.number}"] = "no MLflow run"
            continue
        try:
            history = metric_history(client, t.mlflow_run_id, keys)
        except Exception as err:  # a run deleted from the store
            out.skipped[f"trial-{t.number}"] = f"no MLflow metric history ({type(err).__name__}: {err})"
            continue
        if not any(v == v for k, vals in history.items() if k != "epoch" for v in vals):
            out.skipped[f"trial-{t.number}"] = "no finite per-epoch values in MLflow"
            continue
        state = t.verdict or t.state
        fig = plot_learning_curves(
            history, best_epoch=t.best_epoch, verdict=state, metric=metric, title=f"trial {t.number}"
        )
        png = save_png(fig, Path(out_dir) / f"trial-{t.number}" / "learning_curves.png")
        out.files.append(
            PlotFile(
                "learning_curves", f"Learning curves of trial {t.number}", png, trial=t.number, run_id=t.mlflow_run_id
            )
        )
    return out
