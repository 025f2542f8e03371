"""The report for a terminal (rich tables, plain text when the output is not a terminal) and for a script (JSON).

Rich is imported inside :func:`print_report`, so importing this module stays light.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tuner.report._build import StudyReport

__all__ = ["fmt", "table_columns", "print_report", "report_json"]


def fmt(value: Any, digits: int = 4) -> str:
    """A cell of a table: ``-`` for `None`, floats to ``digits`` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table_columns(report: StudyReport) -> list[tuple[str, Any]]:
    """(header, getter) pairs of the top-trials table."""
    m = report.metric
    cols: list[tuple[str, Any]] = [("trial", lambda r: r["number"])]
    if report.pareto is not None:
        cols.append(("front", lambda r: "*" if r["on_front"] else ""))
    cols += [(p, lambda r, p=p: r["params"].get(p)) for p in report.varying]
    cols += [(o, lambda r, o=o: r["objective"].get(o)) for o in report.objective]
    keys = (
        ["train_loss", "val_loss"]
        + ([f"train_{m}", f"val_{m}"] if m else [])
        + ["gap_loss"]
        + ([f"gap_{m}"] if m else [])
    )
    cols += [(k, lambda r, k=k: r["metrics"].get(k)) for k in keys if k not in report.objective]
    cols += [("verdict", lambda r: r["verdict"]), ("epoch", lambda r: r["best_epoch"]), ("state", lambda r: r["state"])]
    return cols


def print_report(report: StudyReport, *, file: Any = None) -> None:
    """Print the report as rich tables (plain text when the output is not a terminal)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def cell(value: Any, head: str = "") -> Text:
        style = (
            {"overfitting": "red", "underfitting": "blue", "good_fit": "green"}.get(str(value), "")
            if head == "verdict"
            else ""
        )
        return Text(fmt(value), style=style)

    def heading(text: str) -> None:
        console.print(Text(text, style="bold"))

    out = file or sys.stdout
    console = Console(file=out, width=None if out.isatty() else 200, highlight=False, soft_wrap=False)
    ds = report.dataset
    dataset = f"{ds.get('name')} ({ds.get('task')})" if ds else "unknown dataset"
    objective = ", ".join(f"{o} ({d})" for o, d in zip(report.objective, report.directions, strict=False))
    heading(f"Study {report.study!r}: {dataset}, objective {objective}")
    c = report.counts
    console.print(
        Text(
            f"Trials: {c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, "
            f"{c.get('fail', 0)} failed" + (f", {c.get('running', 0)} running" if c.get("running") else "")
        )
    )
    if report.problems:
        heading("Trials that did not complete")
        t = Table()
        for col in ("state", "count", "reason", "trials"):
            t.add_column(col)
        for p in report.problems:
            t.add_row(
                cell(p["state"]),
                cell(p["count"]),
                cell(p["reason"]),
                cell(", ".join(map(str, p["trials"][:12])) + (" ..." if len(p["trials"]) > 12 else "")),
            )
        console.print(t)
    b = report.best
    if b is None:  # not report.ok: no complete trial to report on
        return
    cols = table_columns(report)
    heading(
        f"Top {len(report.top)} complete trials by {report.objective[0]}"
        + (" (Pareto front first)" if report.pareto is not None else "")
    )
    t = Table()
    for head, _ in cols:
        t.add_column(head, justify="left" if head in ("verdict", "state", "front") else "right")
    for r in report.top:
        t.add_row(*[cell(get(r), head) for head, get in cols])
    console.print(t)
    sel = f", selected by the {b['selected_by']} rule" if b.get("selected_by") else ""
    heading(
        f"Best trial {b['number']}{sel}: "
        + ", ".join(f"{k}={fmt(v)}" for k, v in b["objective"].items())
        + f"; verdict {b['verdict']}, chosen epoch {b['best_epoch']}"
    )
    lines = []
    if b.get("reason"):
        lines.append(f"  {b['reason']} Suggestion: {b['suggestion']}.")
    lines.append("  params: " + ", ".join(f"{k}={fmt(v)}" for k, v in b["params"].items()))
    if report.test:
        lines.append("  test split: " + ", ".join(f"{k}={fmt(v)}" for k, v in report.test.items()))
    else:
        lines.append(f"  test split: {report.test_note}")
    if report.pareto is not None:
        p = report.pareto
        lines.append(
            f"Pareto front: trials {', '.join(map(str, p['front']))}"
            + (
                f"; selected trial {p['selected']} ({p['selection']['rule']})"
                if p.get("selection")
                else f"; {p['note']}"
            )
        )
    for line in lines:
        console.print(Text(line))
    lines = []
    imp = report.importances
    if imp.values:
        targets = list(imp.values)
        params = list(dict.fromkeys(k for v in imp.values.values() for k in v))
        heading(f"Parameter importances ({imp.evaluator}, {imp.n_trials} complete trials)")
        t = Table()
        t.add_column("parameter")
        for name in targets:
            t.add_column(name, justify="right")
        for param in params:
            t.add_row(cell(param), *[Text(fmt(imp.values[n].get(param), 3)) for n in targets])
        console.print(t)
    if imp.note:
        lines.append(f"Parameter importances ({imp.evaluator}): {imp.note}")
    for line in lines:
        console.print(Text(line))
    lines = []
    ga = report.gap_analysis
    heading(f"Gap analysis ({ga.gap} against each knob; {ga.validation} for validation performance)")
    if ga.note:
        lines.append(f"  {ga.note}")
    lines += [f"  - {e.sentence}" for e in ga.effects]
    mf = report.mlflow
    if mf.get("experiment_id"):
        lines.append(f"MLflow: {mf['tracking_uri']} experiment {mf['experiment_id']}, study run {mf['parent_run_id']}")
    elif mf.get("note"):
        lines.append(f"MLflow: {mf['note']}")
    if report.plots.files:
        folders = sorted({str(f.png.parent if f.trial is None else f.png.parent.parent) for f in report.plots.files})
        logged = sum(1 for f in report.plots.files if f.artifacts)
        lines.append(f"Plots: {len(report.plots.files)} written to {', '.join(folders)}; {logged} logged to MLflow")
    lines += [
        f"  plot {name} left out: {why}" for name, why in report.plots.skipped.items() if not name.startswith("trial-")
    ]
    for line in lines:
        console.print(Text(line))


def report_json(report: StudyReport) -> str:
    """The report as JSON text (what ``--json`` prints)."""
    return json.dumps(report.to_dict(), indent=2, default=str)
