"""What the lessons of a study share: statistics over seeds, storing a lesson on the study, logging it to MLflow.

A *lesson* is what ``explain`` (the ablation of the winner), ``--confirm`` (the top trials retrained)
and ``refine`` (where to search next) found. Each is stored on the Optuna study through
:meth:`tuner.study.StudyRecord.set_lesson` and logged on the study's parent MLflow run as a table (JSON
and CSV) and a plot (PNG) under ``lessons/``, through :func:`tuner.tracking.log_file`. The HTML report
shows one :class:`Section` per stored lesson.

Matplotlib, SciPy and :mod:`tuner.tracking` are imported inside the functions that use them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tuner._store import study_tracking_uri
from tuner.report._build import _mlflow_context
from tuner.report._figures import new_figure  # re-exported: the lessons' figures are drawn the same way
from tuner.study import StudyRecord, StudyResults

__all__ = ["ARTIFACT_DIR", "Section", "clean", "figure_png", "new_figure", "paired", "record_lesson", "spread", "welch"]

ARTIFACT_DIR = "lessons"


@dataclasses.dataclass
class Section:
    """One lesson as the HTML report shows it: a title, sentences, a table and a plot."""

    kind: str
    title: str
    sentences: list[str]
    headers: list[str]
    rows: list[list[Any]]
    png: bytes | None = None


def clean(value: Any) -> Any:
    """``value`` as plain JSON data: NumPy numbers as Python ones, non-finite floats as `None`."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation and count of the finite ``values`` (`None` when there are none)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return {"mean": None, "sd": None, "n": 0}
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": len(xs)}


def figure_png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def record_lesson(
    optuna_study: Any,
    kind: str,
    data: dict[str, Any],
    *,
    storage: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    figure: Callable[[dict[str, Any]], Any],
    tracking_uri: str | None = None,
    log: bool = True,
) -> dict:
    """Log a lesson's table and plot on the study's parent MLflow run, then store it on the study.

    Args:
        optuna_study: the ``optuna.Study`` it is about.
        kind: ``ablation``, ``confirmation`` or ``refinement``.
        data: the lesson as JSON-able data; its ``mlflow`` entry says where it was logged (or why not).
        storage: the study's storage URL (the MLflow store beside it is the default).
        headers, rows: its table.
        figure: draws its plot from ``data``.
        tracking_uri: the MLflow store; `None`: the one in the study's recipe, else the one beside its
            storage (:func:`tuner._store.study_tracking_uri`). ``"none"`` logs nothing. Defaults to `None`.
        log: log to MLflow at all. Defaults to `True`.

    Returns:
        ``data``, cleaned, as stored.
    """
    data = clean(data)
    data["mlflow"] = {"run_id": None, "artifacts": [], "note": "not logged"}
    if log:
        recipe_uri = StudyRecord(optuna_study).recipe.tracking_uri
        uri = study_tracking_uri(storage, given=tracking_uri, recorded=recipe_uri)
        info = _mlflow_context(StudyResults(optuna_study), uri)
        run_id = info.get("parent_run_id")
        if uri is None or run_id is None:  # no store: _mlflow_context found no run and says why
            data["mlflow"]["note"] = info.get("note") or "no MLflow store"
        else:
            from tuner.tracking import log_file, open_reader

            reader = open_reader(uri)
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                (folder / f"{kind}.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
                with (folder / f"{kind}.csv").open("w", newline="", encoding="utf-8") as f:
                    writer = csv.writer(f)
                    writer.writerow(headers)
                    writer.writerows(rows)
                (folder / f"{kind}.png").write_bytes(figure_png(figure(data)))
                artifacts = [
                    log_file(reader, run_id, folder / f"{kind}.{ext}", artifact_path=ARTIFACT_DIR)
                    for ext in ("json", "csv", "png")
                ]
            data["mlflow"] = {"run_id": run_id, "artifacts": artifacts, "note": None}
    StudyRecord(optuna_study).set_lesson(kind, data)
    return data


def welch(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The two-sided p-value of Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``); `None` when undefined."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return p if math.isfinite(p) else None


def paired(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The two-sided p-value of the paired t-test on shared seeds (``scipy.stats.ttest_rel``); `None` when undefined."""
    from scipy import stats

    if len(a) < 2 or len(a) != len(b):
        return None
    p = float(stats.ttest_rel(a, b).pvalue)
    return p if math.isfinite(p) else None
