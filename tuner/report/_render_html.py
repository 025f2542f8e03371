"""The report as one self-contained HTML page: images inline, plotly.js inline, no network needed.

Plotly is imported inside :func:`write_html`, so importing this module stays light.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuner.report._build import StudyReport
from tuner.report._explain import lesson_sections
from tuner.report._render_text import fmt, table_columns

__all__ = ["write_html"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px 32px;color:#222;background:#fff}
h1{margin:0 0 4px 0;font-size:26px} h2{margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px;font-size:20px}
.sub{color:#555;margin:0 0 12px 0} .cards{display:flex;gap:14px;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:160px}
.card b{display:block;font-size:20px} table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f3f3f3}
td.l,th.l{text-align:left} .grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:18px}
figure{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:8px;background:#fff}
figcaption{font-weight:600;margin-bottom:6px} figure img{max-width:100%;height:auto;display:block}
.overfitting{color:#d62728;font-weight:600} .underfitting{color:#1f77b4;font-weight:600}
.good_fit{color:#2ca02c;font-weight:600} li{margin:4px 0} .note{color:#777} figure.wide{grid-column:1/-1}
"""
_WIDE = ("gap_vs_regularization", "parallel_coordinate", "slice")
_ORDER = ("pareto_front", "optimization_history", "param_importances", "param_importances_gap", *_WIDE)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: Sequence[str] = ()) -> str:
    head = "".join(f'<th class="{"l" if h in left else ""}">{html.escape(str(h))}</th>' for h in headers)
    body = []
    for row in rows:
        cells = []
        for h, v in zip(headers, row, strict=False):
            cls = ["l"] if h in left else []
            if h == "verdict" and v:
                cls.append(str(v))
            cells.append(f'<td class="{" ".join(cls)}">{html.escape(fmt(v))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_html(report: StudyReport, path: str | Path, *, plotlyjs: str = "inline") -> Path:
    """Write the report as one self-contained HTML page: PNGs embedded, Optuna's plotly plots interactive.

    Args:
        report: a report, with plots from :func:`make_plots` (a report without plots has tables only).
        path: the HTML file.
        plotlyjs: ``"inline"`` embeds plotly.js once (works offline); ``"cdn"`` loads it from the CDN.
            Defaults to `"inline"`.

    Returns:
        The path written.
    """
    import plotly.graph_objects as go
    import plotly.io as pio

    if plotlyjs not in ("inline", "cdn"):
        raise ValueError(f"`plotlyjs` must be 'inline' or 'cdn', but got {plotlyjs=!r}.")
    path = Path(path)
    e = html.escape
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>tuner report: {e(report.study)}"
        f"</title><style>{_CSS}</style></head><body>"
    ]
    ds = report.dataset
    parts.append(
        f"<h1>Study {e(report.study)}</h1><p class='sub'>{e(str(ds.get('name', '?')))} "
        f"({e(str(ds.get('task', '?')))}) &middot; objective "
        f"{e(', '.join(f'{o} ({d})' for o, d in zip(report.objective, report.directions, strict=False)))}"
        " &middot; "
        f"storage {e(report.storage)}</p>"
    )
    c = report.counts
    cards: list[tuple[str, object]] = [
        ("complete", c.get("complete", 0)),
        ("pruned", c.get("pruned", 0)),
        ("failed", c.get("fail", 0)),
    ]
    b = report.best
    if b:
        obj0 = report.objective[0]
        cards.append((f"best trial ({obj0})", f"#{b['number']}: {fmt(b['objective'].get(obj0))}"))
        if report.test:
            cards += [(k, fmt(v)) for k, v in report.test.items()]
    parts.append(
        "<div class='cards'>"
        + "".join(f"<div class='card'>{e(str(k))}<b>{e(str(v))}</b></div>" for k, v in cards)
        + "</div>"
    )
    if report.message:
        parts.append(f"<p><b>{e(report.message)}</b></p>")
    if b:
        sel = f", selected by the {b['selected_by']} rule" if b.get("selected_by") else ""
        parts.append(
            f"<h2>Best trial {b['number']}{e(sel)}</h2><p>Verdict <span class='{e(str(b['verdict']))}'>"
            f"{e(str(b['verdict']))}</span> at epoch {e(fmt(b['best_epoch']))}. {e(b.get('reason') or '')} "
            f"Suggestion: {e(b.get('suggestion') or '-')}.</p>"
        )
        parts.append(_html_table(["parameter", "value"], list(b["params"].items()), left=["parameter", "value"]))
        if not report.test:
            parts.append(f"<p class='note'>Test split: {e(report.test_note or '-')}</p>")
        if report.pareto is not None:
            p = report.pareto
            parts.append(
                f"<p>Pareto front: trials {e(', '.join(map(str, p['front'])))}. "
                + (
                    e(f"Selected trial {p['selected']} by the {p['selection']['rule']} rule.")
                    if p.get("selection")
                    else e(p.get("note") or "")
                )
                + "</p>"
            )
    ga = report.gap_analysis
    parts.append(f"<h2>Gap analysis</h2><p class='note'>{e(ga.method)}</p>")
    if ga.note:
        parts.append(f"<p class='note'>{e(ga.note)}</p>")
    parts.append("<ul>" + "".join(f"<li>{e(x.sentence)}</li>" for x in ga.effects) + "</ul>")
    for sec in lesson_sections(report.lessons):  # what explain, --confirm and refine found, when they ran
        parts.append(
            f"<h2 id='lesson-{e(sec.kind)}'>{e(sec.title)}</h2>" + "".join(f"<p>{e(t)}</p>" for t in sec.sentences)
        )
        parts.append(_html_table(sec.headers, sec.rows, left=[sec.headers[0], "change", "before", "after", "reason"]))
        if sec.png:
            parts.append(
                f"<figure><img alt='{e(sec.title)}' src='data:image/png;base64,"
                f"{base64.b64encode(sec.png).decode('ascii')}'></figure>"
            )
    study_files = sorted(
        (f for f in report.plots.files if f.trial is None),
        key=lambda f: (f.name in _WIDE, _ORDER.index(f.name) if f.name in _ORDER else len(_ORDER)),
    )
    narrow = [f.name for f in study_files if f.name not in _WIDE]
    wide_names = set(_WIDE) | ({narrow[-1]} if len(narrow) % 2 else set())  # no hole in the two-column grid
    if study_files:
        parts.append("<h2>Study plots</h2><div class='grid'>")
        first = True
        for f in study_files:
            if f.figure is not None:
                include = (True if plotlyjs == "inline" else "cdn") if first else False
                figure = go.Figure(f.figure).update_layout(width=None, height=None, autosize=True)
                body = pio.to_html(
                    figure,
                    full_html=False,
                    include_plotlyjs=include,
                    default_height="440px",
                    default_width="100%",
                    config={"displaylogo": False, "responsive": True},
                )
                first = False
            else:
                body = _img(f.png, f.title)
            wide = " class='wide'" if f.name in wide_names else ""
            parts.append(f"<figure id='plot-{e(f.name)}'{wide}><figcaption>{e(f.title)}</figcaption>{body}</figure>")
        parts.append("</div>")
    skipped = {k: v for k, v in report.plots.skipped.items() if not k.startswith("trial-")}
    if skipped:
        parts.append("<p class='note'>" + "<br>".join(e(f"{k} left out: {v}") for k, v in skipped.items()) + "</p>")
    if report.top:
        cols = table_columns(report)
        parts.append(f"<h2>Top {len(report.top)} complete trials</h2>")
        parts.append(
            _html_table(
                [h for h, _ in cols],
                [[get(r) for _, get in cols] for r in report.top],
                left=["verdict", "state", "front"],
            )
        )
    imp = report.importances
    parts.append(f"<h2>Parameter importances ({e(imp.evaluator)})</h2>")
    if imp.values:
        targets = list(imp.values)
        params = list(dict.fromkeys(k for v in imp.values.values() for k in v))
        parts.append(
            _html_table(
                ["parameter", *targets],
                [[p, *[imp.values[t].get(p) for t in targets]] for p in params],
                left=["parameter"],
            )
        )
    if imp.note:
        parts.append(f"<p class='note'>{e(imp.note)}</p>")
    if report.problems:
        parts.append("<h2>Trials that did not complete</h2>")
        parts.append(
            _html_table(
                ["state", "count", "reason", "trials"],
                [[p["state"], p["count"], p["reason"], ", ".join(map(str, p["trials"]))] for p in report.problems],
                left=["state", "reason", "trials"],
            )
        )
    shown = [r["number"] for r in report.top]
    if b and b["number"] not in shown:
        shown.insert(0, b["number"])
    curves = {f.trial: f for f in report.plots.files if f.trial is not None}
    if curves:
        parts.append("<h2>Learning curves</h2><div class='grid'>")
        for n in shown:
            if n in curves:
                parts.append(
                    f"<figure id='curves-{n}'><figcaption>{e(curves[n].title)}</figcaption>"
                    f"{_img(curves[n].png, curves[n].title)}</figure>"
                )
        parts.append("</div>")
    mf = report.mlflow
    if mf.get("experiment_id"):
        parts.append(
            f"<p class='note'>MLflow: {e(str(mf['tracking_uri']))}, experiment {e(str(mf['experiment_id']))}, "
            f"study run {e(str(mf['parent_run_id']))}.</p>"
        )
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
