"""Where to search next: a refined search space, read off the best trials of a study, each change with its reason.

:func:`refine` ranks a study's complete trials by its first objective, takes the best quarter (at least
3) and changes the study's space where they say so:

- a numeric range whose best trials crowd one of its bounds (their median position in the range, on
  the log scale for log ranges, in the outer quarter) is moved that way by one width of the range, within the
  knob's own domain;
- a log range that spans two decades or more while the best trials sit within a third of it is
  narrowed around them, half a decade either side;
- a categorical choice tried at least twice that never appears among the best trials is dropped (a
  parameter left with one choice becomes fixed; a parameter whose condition can no longer hold is
  removed).

The refined space is written as YAML with the reason for each change as a comment above it; it loads
with :func:`tuner.load_space` and is ready for the next study. Nothing is retrained.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tuner._store import default_storage
from tuner.errors import ConfigError, Problem
from tuner.metrics import maximizes, ranked
from tuner.report._lessons import Section, figure_png, new_figure, record_lesson
from tuner.space import KNOBS, SearchSpace, check_value, layer_keys
from tuner.study import StudyRecord, load_study_results

__all__ = ["refine", "refine_parameters", "refined_yaml", "refinement_section", "refinement_table"]

_CROWD = 0.75  # median position of the best trials beyond which a bound is crowded (or below 1 - _CROWD)


def _values(trial: Any, name: str, entry: Mapping[str, Any]) -> list[Any]:
    if entry.get("per_layer"):
        return [trial.params[k] for k in layer_keys(trial.params, name)]
    return [trial.params[name]] if name in trial.params else []


def _fmt(x: float) -> float:
    return float(f"{x:.3g}")


def _valid(name: str, value: Any) -> bool:
    knob = KNOBS.get(name)
    return knob is None or check_value(knob, value) is None


def _bound(name: str, entry: Mapping[str, Any], old: float, u_target: float, log: bool) -> Any:
    """The furthest of ``u_target``, halfway, a quarter of the way ... (from ``old``) that the knob accepts."""
    u_old = math.log10(old) if log else float(old)
    for i in range(8):
        u = u_old + (u_target - u_old) / (2**i)
        value = 10**u if log else u
        value = round(value) if entry["type"] == "int" else _fmt(value)
        if entry["type"] == "int" and log:
            value = max(1, value)
        if value != old and _valid(name, value):
            return value
    return old


def _numeric(name: str, entry: Mapping[str, Any], trials: Sequence[Any], top: Sequence[Any]) -> dict | None:
    lo, hi, log = entry["low"], entry["high"], bool(entry.get("log"))
    u = (lambda x: math.log10(x)) if log else float
    width = u(hi) - u(lo)
    tops = [v for t in top for v in _values(t, name, entry)]
    if width <= 0 or len(tops) < 3:
        return None
    pos = [(u(v) - u(lo)) / width for v in tops]
    median = statistics.median(pos)
    scale = " (log scale)" if log else ""
    where = f"the best {len(top)} trials' values ({_short_list(tops)})"
    new = dict(entry)
    if median >= _CROWD or median <= 1 - _CROWD:
        up = median >= _CROWD
        edge = hi if up else lo
        moved = _bound(name, entry, edge, u(edge) + (width if up else -width), log)
        if moved == edge:
            return None  # already at the knob's limit
        inner = min(tops) if up else max(tops)
        inner = _fmt(inner) if entry["type"] == "float" else int(inner)
        new.update(low=inner, high=moved) if up else new.update(low=moved, high=inner)
        if new["low"] >= new["high"]:
            return None
        side = "upper" if up else "lower"
        reason = (
            f"{where} crowd the {side} bound of [{lo}, {hi}]{scale}: median position {median:.0%}; range moved "
            f"{'up' if up else 'down'} to [{new['low']}, {new['high']}]"
        )
        return {"action": f"moved {'up' if up else 'down'}", "new": _snap(new), "reason": reason}
    spread = max(u(v) for v in tops) - min(u(v) for v in tops)
    if log and width >= 2 and spread <= width / 3:
        low = 10 ** max(u(lo), min(u(v) for v in tops) - 0.5)
        high = 10 ** min(u(hi), max(u(v) for v in tops) + 0.5)
        if entry["type"] == "int":
            low, high = max(1, math.floor(low)), math.ceil(high)
        else:
            low, high = _fmt(low), _fmt(high)
        if (u(high) - u(low)) < 0.8 * width and low < high:
            new.update(low=low, high=high)
            reason = (
                f"the log range [{lo}, {hi}] spans {width:.1f} decades but {where} lie within {spread:.1f}; "
                f"narrowed to [{low}, {high}], half a decade around them"
            )
            return {"action": "narrowed", "new": _snap(new), "reason": reason}
    return None


def _snap(entry: dict[str, Any]) -> dict[str, Any]:
    """A stepped range's high bound on its grid (low + a whole number of steps)."""
    step = entry.get("step")
    if step:
        n = max(1, round((entry["high"] - entry["low"]) / step))
        entry["high"] = entry["low"] + n * step
        if entry["type"] == "float":
            entry["high"] = _fmt(entry["high"])
    return entry


def _short_list(values: Sequence[Any], n: int = 6) -> str:
    shown = ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in values[:n])
    return shown + (", ..." if len(values) > n else "")


def _categorical(name: str, entry: Mapping[str, Any], trials: Sequence[Any], top: Sequence[Any]) -> dict | None:
    tried = {repr(c): 0 for c in entry["choices"]}
    won = dict.fromkeys(tried, 0)
    for t in trials:
        for v in _values(t, name, entry):
            tried[repr(v)] = tried.get(repr(v), 0) + 1
    tops = [v for t in top for v in _values(t, name, entry)]
    for v in tops:
        won[repr(v)] = won.get(repr(v), 0) + 1
    if not tops:
        return None
    dropped = [c for c in entry["choices"] if tried[repr(c)] >= 2 and won[repr(c)] == 0]
    if not dropped:
        return None
    kept = [c for c in entry["choices"] if c not in dropped]
    detail = ", ".join(f"{c} (tried {tried[repr(c)]}x)" for c in dropped)
    reason = f"never among the best {len(top)} trials: {detail}"
    if len(kept) == 1:
        new: Any = {"value": kept[0], **{k: v for k, v in entry.items() if k in ("condition", "per_layer")}}
        if set(new) == {"value"}:
            new = kept[0]
        return {"action": "fixed", "new": new, "dropped": dropped, "reason": f"{reason}; fixed to {kept[0]}"}
    return {
        "action": "dropped choices",
        "new": {**entry, "choices": kept},
        "dropped": dropped,
        "reason": f"{reason}; dropped",
    }


def refine_parameters(
    parameters: Mapping[str, Any],
    trials: Sequence[Any],
    *,
    maximize: bool,
    top_fraction: float = 0.25,
    min_trials: int = 6,
) -> tuple[dict[str, Any], list[dict], str]:
    """Refine a space's ``parameters`` (plain data, as in a space file) from complete ``optuna`` trials.

    Returns:
        ``(refined parameters, changes, note)``; each change has ``param``, ``action``, ``old``, ``new``
        (`None` when removed) and ``reason``.
    """
    if not 0 < top_fraction <= 1:
        raise ConfigError([Problem("--top-fraction", "top_fraction", "must be in (0, 1]", value=top_fraction)])
    params = copy.deepcopy(dict(parameters))
    if len(trials) < min_trials:
        return (
            params,
            [],
            (
                f"{len(trials)} complete trials: too few to say where to search next "
                f"(refine needs {min_trials}); the space is left as it was"
            ),
        )
    best_first = ranked(trials, "maximize" if maximize else "minimize")
    top = best_first[: max(3, math.ceil(top_fraction * len(best_first)))]
    changes: list[dict[str, Any]] = []
    for name, entry in list(params.items()):
        if not isinstance(entry, dict) or "type" not in entry:
            continue
        kind = entry["type"]
        found = (
            _numeric(name, entry, trials, top) if kind in ("int", "float") else _categorical(name, entry, trials, top)
        )
        if found is None:
            continue
        changes.append({"param": name, "old": entry, **found})
        params[name] = found["new"]
    for change in [c for c in changes if c.get("dropped")]:
        parent, dropped = change["param"], change["dropped"]
        for name, entry in list(params.items()):
            condition = entry.get("condition") if isinstance(entry, dict) else None
            if not condition or parent not in condition:
                continue
            allowed = [v for v in condition[parent] if v not in dropped]
            if allowed:
                params[name] = {**entry, "condition": {**condition, parent: allowed}}
            else:
                del params[name]
                changes.append(
                    {
                        "param": name,
                        "action": "removed",
                        "old": entry,
                        "new": None,
                        "reason": f"its condition {parent} in {condition[parent]} can no longer hold",
                    }
                )
    note = (
        f"the best {len(top)} of {len(trials)} complete trials by the first objective "
        f"({'maximized' if maximize else 'minimized'}) decide"
    )
    return params, changes, note


def refined_yaml(
    name: str,
    description: str,
    parameters: Mapping[str, Any],
    changes: Sequence[Mapping[str, Any]],
    header: Sequence[str] = (),
) -> str:
    """A space file: ``name``, ``description`` and ``parameters``, each change's reason as a comment above it."""
    reasons = {c["param"]: c["reason"] for c in changes}
    lines = [f"# {line}" for line in header]
    lines.append(yaml.safe_dump({"name": name, "description": description}, sort_keys=False, width=10_000).rstrip())
    lines.append("parameters:")
    for pname, entry in parameters.items():
        if pname in reasons:
            lines.append(f"  # {pname}: {reasons[pname]}")
        flow = None if isinstance(entry, (dict, list)) else False  # `{x: 1}` for a bare value otherwise
        dumped = yaml.safe_dump({pname: entry}, sort_keys=False, default_flow_style=flow, width=10_000).rstrip()
        lines += [f"  {line}" for line in dumped.splitlines()]
    for c in changes:
        if c.get("new", "") is None:
            lines.append(f"  # {c['param']} removed: {c['reason']}")
    return "\n".join(lines) + "\n"


def refine(
    study: Any,
    *,
    storage: str | None = None,
    output: str | Path | None = None,
    top_fraction: float = 0.25,
    min_trials: int = 6,
    tracking_uri: str | None = None,
    log: bool = True,
) -> dict[str, Any]:
    """Write the study's space refined by where its best trials lie, each change with its reason.

    Args:
        study: a study name or a :class:`~tuner.study.Study`.
        storage: the Optuna storage of a named study. Defaults to tuner's default storage.
        output: the YAML file to write; `None` writes nothing (the text is in the result's ``yaml``).
        top_fraction: the share of complete trials that counts as "best" (at least 3). Defaults to `0.25`.
        min_trials: complete trials needed to change anything. Defaults to `6`.
        tracking_uri, log: where to log the table and plot (as :func:`tuner.report.ablate`).

    Returns:
        The refinement as stored on the study: ``changes``, ``note``, ``yaml``, ``output``, ``mlflow``.

    Raises:
        ConfigError: when the study does not exist or was not made by tuner (no space recipe).
    """
    if isinstance(study, str):
        url = storage or default_storage()
        opt = load_study_results(study, storage=url).study
    else:
        opt, url = study.optuna_study, study.settings.storage
        tracking_uri = tracking_uri or study.settings.tracking_uri
    recipe = StudyRecord(opt).recipe
    if recipe.space is None:
        raise ConfigError(
            [
                Problem(
                    url,
                    f"study {opt.study_name!r}",
                    "has no space recipe (not made by `tuner study`), so there is no space to refine",
                    value=opt.study_name,
                )
            ]
        )
    trials = [t for t in opt.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    maximize = maximizes(opt.directions[0])
    params, changes, note = refine_parameters(
        recipe.space, trials, maximize=maximize, top_fraction=top_fraction, min_trials=min_trials
    )
    objective = (recipe.objective or ["objective"])[0]
    space_name = str(recipe.space_name)
    base = space_name[: -len("-refined")] if space_name.endswith("-refined") else space_name
    header = [
        f"Refined from study {opt.study_name!r} by `python -m tuner refine`: {note}, on {objective}.",
        f"{len(changes)} change(s), each explained above it; parameters without a comment are as the study had them.",
    ]
    text = refined_yaml(f"{base}-refined", f"{space_name} refined by study {opt.study_name}", params, changes, header)
    SearchSpace.from_yaml(text, source=f"refined space of study {opt.study_name!r}")  # loads as the next study will
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
    data = {
        "objective": objective,
        "note": note,
        "changes": changes,
        "yaml": text,
        "output": None if output is None else str(output),
        "space": recipe.space,
        "trials": [{"number": t.number, "value": t.values[0], "params": dict(t.params)} for t in trials],
    }
    headers, rows = refinement_table(data)
    return record_lesson(
        opt,
        "refinement",
        data,
        storage=url,
        headers=headers,
        rows=rows,
        figure=refinement_figure,
        tracking_uri=tracking_uri,
        log=log,
    )


def _entry_text(entry: Any) -> str:
    if entry is None:
        return "(removed)"
    if not isinstance(entry, dict):
        return str(entry)
    if "choices" in entry:
        return str(entry["choices"])
    if "low" in entry:
        return f"[{entry['low']}, {entry['high']}]{' log' if entry.get('log') else ''}"
    return str(entry.get("value", entry))


def refinement_table(data: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The refinement as a table: per change, the parameter, what changed, before, after and why."""
    headers = ["parameter", "change", "before", "after", "reason"]
    return headers, [
        [c["param"], c["action"], _entry_text(c["old"]), _entry_text(c["new"]), c["reason"]] for c in data["changes"]
    ]


def refinement_figure(data: Mapping[str, Any]) -> Any:
    """Per searched numeric parameter: each trial's value against the objective, the best trials marked, the old
    range shaded and the refined one in dashed green."""
    space = data["space"]
    numeric = [(n, e) for n, e in space.items() if isinstance(e, dict) and e.get("type") in ("int", "float")][:9]
    new = {c["param"]: c["new"] for c in data["changes"]}
    cols = min(3, max(1, len(numeric)))
    rows = max(1, math.ceil(len(numeric) / cols))
    fig = new_figure(figsize=(4.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    trials = data["trials"]
    for ax, (name, entry) in zip(axes, numeric, strict=False):  # the grid may hold more panels
        points = [(v, t["value"]) for t in trials for v in _values(_Frozen(t["params"]), name, entry)]
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], s=16, color="#1f77b4", alpha=0.7)
        ax.axvspan(entry["low"], entry["high"], color="#999", alpha=0.15, label="studied range")
        changed = new.get(name)
        if isinstance(changed, dict) and "low" in changed:
            for x in (changed["low"], changed["high"]):
                ax.axvline(x, color="#2ca02c", ls="--", lw=1.2)
        if entry.get("log"):
            ax.set_xscale("log")
        ax.set_xlabel(name + (" (refined: dashed)" if name in new else ""))
        ax.set_ylabel(data["objective"])
    for ax in axes[len(numeric) :]:
        ax.axis("off")
    if not numeric:
        axes[0].text(0.5, 0.5, "no numeric parameter was searched", ha="center", va="center")
    fig.suptitle("Where the trials lie in each searched range")
    fig.tight_layout()
    return fig


class _Frozen:
    """Just enough of a trial (its ``params``) for :func:`_values`."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)


def refinement_section(data: Mapping[str, Any]) -> Section:
    """The HTML report's section for a stored refinement."""
    headers, rows = refinement_table(data)
    sentences = [f"Where to search next: {data['note']}."]
    if not data["changes"]:
        sentences.append("No change: no range is crowded at a bound, no log range is too wide, every choice wins.")
    if data.get("output"):
        sentences.append(f"Written to {data['output']}.")
    return Section("refinement", "Where to search next", sentences, headers, rows, figure_png(refinement_figure(data)))
