"""Validation of a search space as read from YAML: every problem found, each naming file, path, rule and value."""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet
from typing import Any

from tuner.errors import Problem, SpaceError, did_you_mean
from tuner.space._catalogue import KNOBS, Knob, check_value
from tuner.space._param import Param
from tuner.space._user import parse_model_parameters, user_knob

_TOP_KEYS = ("name", "description", "parameters", "model_parameters")
_DIST_KEYS = ("type", "low", "high", "step", "log", "choices", "condition", "per_layer")
_FIXED_KEYS = ("value", "condition", "per_layer")
_TYPES = ("int", "float", "categorical")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate(data: Any, source: str) -> tuple[dict[str, Param], str, str]:
    """Check a space as read from YAML, every entry and condition: ``(parameters, name, description)``.

    Raises:
        SpaceError: listing every problem found.
    """
    problems: list[Problem] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpaceError([Problem(source, "(top level)", "must be a mapping with a 'parameters' key", value=data)])
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(
                Problem(
                    source,
                    str(key),
                    f"unknown top-level key{did_you_mean(key, _TOP_KEYS)}; allowed: {list(_TOP_KEYS)}",
                    value=data[key],
                )
            )
    name = data.get("name", "space")
    if not isinstance(name, str) or not name:
        problems.append(Problem(source, "name", "must be a non-empty string", value=name))
        name = "space"
    description = data.get("description", "") or ""
    if not isinstance(description, str):
        problems.append(Problem(source, "description", "must be a string", value=description))
        description = ""
    raw_params = data.get("parameters", {})
    if raw_params is None:
        raw_params = {}
    if not isinstance(raw_params, dict):
        problems.append(
            Problem(
                source, "parameters", "must be a mapping of parameter name to value or distribution", value=raw_params
            )
        )
        raw_params = {}

    params: dict[str, Param] = {}
    for pname, spec in raw_params.items():
        path = f"parameters.{pname}"
        if not isinstance(pname, str) or pname not in KNOBS:
            hint = did_you_mean(str(pname), KNOBS)  # a typo of a knob; else perhaps the user's own parameter
            where = "" if hint else " (a parameter of your own model goes under model_parameters)"
            problems.append(
                Problem(
                    source,
                    path,
                    f"unknown parameter{hint}; see the knob reference in docs/search-spaces.md{where}",
                    value=pname,
                )
            )
            continue
        param = _parse_param(pname, spec, path, source, problems)
        if param is not None:
            params[pname] = param

    invalid = {str(n) for n in raw_params if n in KNOBS and n not in params}
    model_params, model_invalid = parse_model_parameters(
        data.get("model_parameters"), source, problems, taken=raw_params, parse=_parse_param
    )
    params.update(model_params)
    _check_conditions(params, source, problems, skip=invalid | model_invalid)
    if problems:
        raise SpaceError(problems)
    return params, name, description


def _parse_param(
    name: str, spec: Any, path: str, source: str, problems: list[Problem], *, knob: Knob | None = None
) -> Param | None:
    """One entry of ``parameters``: a bare value, ``{value: ...}``, or a categorical, int or float distribution.

    Every problem found is appended to ``problems``; the entry is None when it has any. ``knob`` is the
    rule the entry follows; defaults to the catalogue's knob of that name.
    """
    knob = knob or KNOBS[name]
    start = len(problems)
    if not isinstance(spec, dict):
        return _parse_bare_value(knob, spec, path, source, problems)

    is_fixed = "value" in spec
    per_layer, condition = _parse_entry_keys(
        knob, spec, path, source, problems, allowed=_FIXED_KEYS if is_fixed else _DIST_KEYS
    )
    if is_fixed:
        rule = check_value(knob, spec["value"])
        if rule:
            problems.append(Problem(source, f"{path}.value", rule, value=spec["value"]))
        if len(problems) > start:
            return None
        return Param(name, "fixed", value=spec["value"], condition=condition, per_layer=per_layer)

    ptype = spec.get("type")
    if ptype not in _TYPES:
        rule = (
            "is required: 'int', 'float' or 'categorical' (or give 'value' for a fixed value)"
            if ptype is None
            else f"must be one of {list(_TYPES)}"
        )
        problems.append(Problem(source, f"{path}.type", rule, value=ptype, has_value=ptype is not None))
        return None
    if ptype == "categorical":
        choices = _parse_choices(knob, spec, path, source, problems)
        if choices is None or len(problems) > start:
            return None
        return Param(name, "categorical", choices=choices, condition=condition, per_layer=per_layer)

    bounds = _parse_range_keys(knob, ptype, spec, path, source, problems)
    if bounds is None or len(problems) > start:
        return None
    _check_range(knob, bounds, path, source, problems)
    if len(problems) > start:
        return None
    low, high, step, log = bounds
    return Param(name, ptype, low=low, high=high, step=step, log=log, condition=condition, per_layer=per_layer)


def _parse_bare_value(knob: Knob, spec: Any, path: str, source: str, problems: list[Problem]) -> Param | None:
    """A fixed value written as it is (``epochs: 20``); a list is refused with the categorical spelling."""
    if isinstance(spec, list):
        problems.append(
            Problem(
                source,
                path,
                "must be a fixed value or a mapping with 'type' "
                "(a list of options is written {type: categorical, choices: [...]})",
                value=spec,
            )
        )
        return None
    rule = check_value(knob, spec)
    if rule:
        problems.append(Problem(source, path, rule, value=spec))
        return None
    return Param(knob.name, "fixed", value=spec)


def _parse_entry_keys(
    knob: Knob, spec: dict[str, Any], path: str, source: str, problems: list[Problem], *, allowed: tuple[str, ...]
) -> tuple[bool, dict[str, list[Any]] | None]:
    """The keys every mapping entry shares: unknown keys refused, ``per_layer`` and ``condition`` read."""
    for key in spec:
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            problems.append(
                Problem(source, f"{path}.{key}", f"unknown key{hint}; allowed: {list(allowed)}", value=spec[key])
            )
    per_layer = spec.get("per_layer", False)
    if not isinstance(per_layer, bool):
        problems.append(Problem(source, f"{path}.per_layer", "must be true or false", value=per_layer))
        per_layer = False
    if per_layer and not knob.per_layer:
        per_layer_knobs = [k.name for k in KNOBS.values() if k.per_layer]
        problems.append(
            Problem(source, f"{path}.per_layer", f"only {per_layer_knobs} can be set per layer", value=per_layer)
        )
        per_layer = False
    return per_layer, _parse_condition(spec.get("condition"), f"{path}.condition", source, problems)


def _parse_choices(
    knob: Knob, spec: dict[str, Any], path: str, source: str, problems: list[Problem]
) -> list[Any] | None:
    """The choices of a categorical entry, each checked against the knob."""
    for key in ("low", "high", "step", "log"):
        if key in spec:
            problems.append(
                Problem(source, f"{path}.{key}", "does not apply to a categorical parameter", value=spec[key])
            )
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        problems.append(Problem(source, f"{path}.choices", "must be a non-empty list", value=choices))
        return None
    for i, c in enumerate(choices):
        if c is not None and not isinstance(c, (bool, int, float, str)):
            problems.append(
                Problem(source, f"{path}.choices[{i}]", "must be a scalar (null, bool, number, string)", value=c)
            )
            continue
        rule = check_value(knob, c)
        if rule:
            problems.append(Problem(source, f"{path}.choices[{i}]", rule, value=c))
    if len(set(map(repr, choices))) != len(choices):
        problems.append(Problem(source, f"{path}.choices", "must not repeat a choice", value=choices))
    return list(choices)


_Bounds = tuple[Any, Any, Any, bool]  # low, high, step, log


def _parse_range_keys(
    knob: Knob, ptype: str, spec: dict[str, Any], path: str, source: str, problems: list[Problem]
) -> _Bounds | None:
    """``low``, ``high``, ``step`` and ``log`` of an int or float range, each checked on its own."""
    if "choices" in spec:
        problems.append(
            Problem(
                source, f"{path}.choices", f"does not apply to a {ptype} range (use low/high)", value=spec["choices"]
            )
        )
    if knob.kind == "int" and ptype == "float":
        problems.append(Problem(source, f"{path}.type", f"{knob.name} is an integer knob; use type int", value=ptype))
    if knob.kind in ("str", "bool"):
        problems.append(
            Problem(source, f"{path}.type", f"{knob.name} is a {knob.kind} knob; use type categorical", value=ptype)
        )
        return None
    low, high, step, log = spec.get("low"), spec.get("high"), spec.get("step"), spec.get("log", False)
    for key, v in (("low", low), ("high", high)):
        if v is None:
            problems.append(Problem(source, f"{path}.{key}", f"is required for a {ptype} range", has_value=False))
        elif not _is_number(v) or (ptype == "int" and not isinstance(v, int)) or not math.isfinite(v):
            problems.append(
                Problem(
                    source, f"{path}.{key}", f"must be {'an integer' if ptype == 'int' else 'a finite number'}", value=v
                )
            )
    if not isinstance(log, bool):
        problems.append(Problem(source, f"{path}.log", "must be true or false", value=log))
        log = False
    if step is not None and (not _is_number(step) or step <= 0 or (ptype == "int" and not isinstance(step, int))):
        problems.append(
            Problem(
                source, f"{path}.step", f"must be a positive {'integer' if ptype == 'int' else 'number'}", value=step
            )
        )
        step = None
    return low, high, step, log


def _check_range(knob: Knob, bounds: _Bounds, path: str, source: str, problems: list[Problem]) -> None:
    """The rules between the bounds: a non-empty range, log scales above zero, steps that fit, knob limits."""
    low, high, step, log = bounds
    if low > high:
        problems.append(Problem(source, path, "`low <= high` must hold", value={"low": low, "high": high}))
    elif low == high:
        problems.append(
            Problem(
                source,
                path,
                "the range is empty (`low < high` must hold; write a fixed value instead)",
                value={"low": low, "high": high},
            )
        )
    if log and low <= 0:
        problems.append(
            Problem(source, f"{path}.low", "must be > 0 on a log scale (log ranges cannot touch zero)", value=low)
        )
    if log and step is not None:
        problems.append(Problem(source, f"{path}.step", "cannot be combined with log: true", value=step))
    if step is not None and low < high and not log:
        span = (high - low) / step
        if abs(span - round(span)) > 1e-9:
            problems.append(
                Problem(
                    source,
                    f"{path}.step",
                    "must divide `high - low` evenly",
                    value={"low": low, "high": high, "step": step},
                )
            )
    for key, v in (("low", low), ("high", high)):
        rule = check_value(knob, v)
        if rule:
            problems.append(Problem(source, f"{path}.{key}", f"{rule} ({knob.name})", value=v))


def _parse_condition(raw: Any, path: str, source: str, problems: list[Problem]) -> dict[str, list[Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        problems.append(
            Problem(source, path, "must be a mapping of parameter name to a value or list of values", value=raw)
        )
        return None
    out: dict[str, list[Any]] = {}
    for k, v in raw.items():
        values = v if isinstance(v, list) else [v]
        if not values:
            problems.append(Problem(source, f"{path}.{k}", "must list at least one value", value=v))
            continue
        out[str(k)] = values
    return out


def _check_conditions(
    params: dict[str, Param], source: str, problems: list[Problem], *, skip: AbstractSet[str] = frozenset()
) -> None:
    for name, p in params.items():
        for parent, values in (p.condition or {}).items():
            path = f"{'model_parameters' if p.model else 'parameters'}.{name}.condition.{parent}"
            if parent in skip:  # the parent has its own error already
                continue
            model_parent = parent in params and params[parent].model
            if parent not in KNOBS and not model_parent:
                known = [*KNOBS, *(n for n, q in params.items() if q.model)]
                problems.append(
                    Problem(
                        source,
                        path,
                        f"refers to a parameter that does not exist{did_you_mean(parent, known)}",
                        value=parent,
                    )
                )
                continue
            if parent == name:
                problems.append(Problem(source, path, "a parameter cannot be conditional on itself", value=parent))
                continue
            if parent in params and params[parent].per_layer:
                problems.append(Problem(source, path, "cannot depend on a per-layer parameter", value=parent))
                continue
            possible = params[parent].possible_values() if parent in params else [KNOBS[parent].default]
            if possible is not None:
                if not any(v in possible for v in values):
                    problems.append(
                        Problem(source, path, f"can never hold: {parent} takes only {possible}", value=values)
                    )
            else:
                knob = user_knob(parent) if model_parent else KNOBS[parent]
                bad = False
                for v in values:
                    rule = check_value(knob, v)
                    if rule:
                        problems.append(Problem(source, path, rule, value=v))
                        bad = True
                rng = params[parent]
                if not bad and not any(_is_number(v) and rng.low <= v <= rng.high for v in values):
                    problems.append(
                        Problem(
                            source, path, f"can never hold: {parent} ranges over [{rng.low}, {rng.high}]", value=values
                        )
                    )
