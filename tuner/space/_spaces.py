"""Search spaces: declarative YAML files that say which knobs are fixed and which are searched.

A space file has a ``parameters`` mapping. Each entry names a knob of :mod:`tuner.knobs` and gives
either a fixed value or a distribution::

    name: my-space                 # optional
    description: what it answers   # optional
    parameters:
      n_layers: {type: int, low: 1, high: 3}
      units: {type: int, low: 16, high: 256, log: true, per_layer: true}
      dropout: {type: float, low: 0.0, high: 0.5}
      batch_norm: {type: categorical, choices: [off, before, after]}
      bn_momentum:
        type: float
        low: 0.8
        high: 0.999
        condition: {batch_norm: [before, after]}
      epochs: 20                   # fixed

Loading validates the whole file and reports every problem, one line each, naming the file, the
parameter path, the rule and the value received. A space turns an Optuna trial into a flat dict of
resolved parameters with :meth:`SearchSpace.suggest`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tuner.errors import Problem, SpaceError
from tuner.space._catalogue import KNOBS, check_value

if TYPE_CHECKING:
    import optuna

__all__ = ["SearchSpace", "Param", "load_space", "shipped_spaces", "SPACES_DIR", "parse_override"]



def _spaces_dir() -> Path:
    """The shipped spaces: ``tuner/search_spaces/`` in an installed wheel, ``search_spaces/`` in a checkout."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "search_spaces"
    return installed if installed.is_dir() else package.parent / "search_spaces"


SPACES_DIR = _spaces_dir()
_TOP_KEYS = ("name", "description", "parameters")
_DIST_KEYS = ("type", "low", "high", "step", "log", "choices", "condition", "per_layer")
_FIXED_KEYS = ("value", "condition", "per_layer")
_TYPES = ("int", "float", "categorical")


@dataclasses.dataclass
class Param:
    """One entry of a space: a fixed value or a distribution, optionally conditional."""

    name: str
    type: str  # "fixed", "int", "float", "categorical"
    value: Any = None
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: list[Any] | None = None
    condition: dict[str, list[Any]] | None = None
    per_layer: bool = False

    @property
    def is_fixed(self) -> bool:
        return self.type == "fixed"

    def possible_values(self) -> list[Any] | None:
        """The values this parameter can take, when they are few enough to list (else None)."""
        if self.type == "fixed":
            return [self.value]
        if self.type == "categorical":
            return list(self.choices or [])
        return None

    def to_config(self) -> Any:
        if self.type == "fixed" and not self.condition and not self.per_layer:
            return self.value
        out: dict[str, Any] = {}
        if self.type == "fixed":
            out["value"] = self.value
        else:
            out["type"] = self.type
            if self.type == "categorical":
                out["choices"] = list(self.choices or [])
            else:
                out["low"] = self.low
                out["high"] = self.high
                if self.step is not None:
                    out["step"] = self.step
                if self.log:
                    out["log"] = True
        if self.per_layer:
            out["per_layer"] = True
        if self.condition:
            out["condition"] = {k: list(v) for k, v in self.condition.items()}
        return out


class SearchSpace:
    """A validated search space.

    Args:
        params: the parameters in file order.
        name: a short name. Defaults to the file's stem.
        description: free text.
        source: where the space came from (a file path), used in error messages.
    """

    def __init__(self, params: Mapping[str, Param], *, name: str = "space", description: str = "",
                 source: str = "<space>") -> None:
        self.params: dict[str, Param] = dict(params)
        self.name = name
        self.description = description
        self.source = source
        self._order = _sampling_order(self.params, source)

    # -- round trip -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The space as plain data; ``SearchSpace.from_dict(space.to_dict())`` gives the same space."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["parameters"] = {n: p.to_config() for n, p in self.params.items()}
        return out

    get_config = to_dict

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<space>") -> SearchSpace:
        """Validate ``data`` (as read from YAML) and build a space, or raise :class:`SpaceError`."""
        return _parse(data, source)

    from_config = from_dict

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<string>") -> SearchSpace:
        return _parse(_safe_load(text, source), source)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        searched = [n for n, p in self.params.items() if not p.is_fixed]
        return f"SearchSpace(name={self.name!r}, searched={searched})"

    # -- queries ---------------------------------------------------------------------------
    @property
    def searched(self) -> list[str]:
        """Names of the parameters that are sampled (not fixed)."""
        return [n for n, p in self.params.items() if not p.is_fixed]

    def defaults(self) -> dict[str, Any]:
        """Every knob's embedded default."""
        return {name: knob.default for name, knob in KNOBS.items()}

    def with_fixed(self, overrides: Mapping[str, Any], *, source: str = "--set") -> SearchSpace:
        """A copy of this space in which each named parameter is fixed to the given value.

        Raises:
            SpaceError: naming each unknown parameter or value that breaks its knob's rule.
        """
        data = self.to_dict()
        params = data["parameters"]
        for name, value in overrides.items():
            old = self.params.get(name)
            if old is not None and (old.condition or old.per_layer):
                entry: dict[str, Any] = {"value": value}
                if old.condition:
                    entry["condition"] = {k: list(v) for k, v in old.condition.items()}
                params[name] = entry
            else:
                params[name] = value
        problems = [
            Problem(source, name, f"unknown parameter{_did_you_mean(name, KNOBS)}", value=value)
            for name, value in overrides.items() if name not in KNOBS
        ]
        if problems:
            raise SpaceError(problems)
        # A parameter whose condition can no longer hold once its parent is fixed is inactive: drop it.
        changed = True
        while changed:
            changed = False
            for name, entry in list(params.items()):
                condition = entry.get("condition") if isinstance(entry, dict) else None
                for parent, values in (condition or {}).items():
                    fixed = params.get(parent, KNOBS[parent].default if parent in KNOBS else None)
                    if not isinstance(fixed, dict) and fixed not in (values if isinstance(values, list) else [values]):
                        del params[name]
                        changed = True
                        break
        try:
            return _parse(data, self.source)
        except SpaceError as err:
            raise SpaceError([Problem(source, p.path.removeprefix("parameters."), p.rule, value=p.value,
                                      has_value=p.has_value) for p in err.problems]) from None

    # -- sampling --------------------------------------------------------------------------
    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """Sample this space with an Optuna trial and return the flat, fully resolved parameters.

        Knobs the space does not name get their defaults. Parameters whose condition does not hold
        are left out (their knob default is used by the builder). Per-layer parameters resolve to
        ``name_1 .. name_<n_layers>``.
        """
        resolved: dict[str, Any] = self.defaults()
        for name in self._order:
            p = self.params[name]
            if p.condition and not all(resolved.get(k) in v for k, v in p.condition.items()):
                resolved.pop(name, None)
                continue
            if p.per_layer:
                resolved.pop(name, None)
                for i in range(1, int(resolved.get("n_layers", KNOBS["n_layers"].default)) + 1):
                    resolved[f"{name}_{i}"] = _suggest_one(trial, p, f"{name}_{i}")
            else:
                resolved[name] = _suggest_one(trial, p, name)
        return resolved

    def grid(self) -> dict[str, list[Any]]:
        """The search space for Optuna's GridSampler: every sampled parameter must be listable.

        Raises:
            SpaceError: for a parameter that is a continuous range, or per-layer or conditional.
        """
        grid: dict[str, list[Any]] = {}
        problems = []
        for name, p in self.params.items():
            if p.is_fixed:
                continue
            if p.per_layer or p.condition:
                problems.append(Problem(self.source, f"parameters.{name}",
                                        "the grid sampler needs unconditional, shared parameters",
                                        value=p.to_config()))
            elif p.type == "categorical":
                grid[name] = list(p.choices or [])
            elif p.step is not None and not p.log:
                n = int(round((p.high - p.low) / p.step))
                values = [round(p.low + i * p.step, 12) for i in range(n + 1)]
                grid[name] = [int(v) for v in values] if p.type == "int" else values
            elif p.type == "int" and not p.log:
                grid[name] = list(range(int(p.low), int(p.high) + 1))
            else:
                problems.append(Problem(self.source, f"parameters.{name}",
                                        "the grid sampler needs categorical or stepped ranges", value=p.to_config()))
        if problems:
            raise SpaceError(problems)
        return grid


def _suggest_one(trial: optuna.trial.BaseTrial, p: Param, name: str) -> Any:
    if p.type == "fixed":
        return copy.deepcopy(p.value)
    if p.type == "categorical":
        return trial.suggest_categorical(name, p.choices)
    if p.type == "int":
        return trial.suggest_int(name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(name, float(p.low), float(p.high), step=p.step, log=p.log)


# -- loading ---------------------------------------------------------------------------------
class _NoDuplicatesSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys (a silent overwrite hides mistakes)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                    "found unhashable key", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_NoDuplicatesSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.2 booleans: only true/false. YAML 1.1 also reads off/on/yes/no as booleans, which would turn
# `batch_norm: off` into False.
_NoDuplicatesSafeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_NoDuplicatesSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
# YAML 1.2 floats: 1e-3 is a number (YAML 1.1 needs a dot, 1.0e-3, and reads 1e-3 as a string).
_NoDuplicatesSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _safe_load(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_NoDuplicatesSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "document"
        problem = getattr(err, "problem", None) or str(err)
        context = getattr(err, "context", None)
        rule = "must be valid YAML readable by a safe loader (no Python tags)"
        detail = f"{context + ' ' if context else ''}{problem}".strip()
        raise SpaceError([Problem(source, where, rule, value=detail)]) from None


def load_space(path: str | Path) -> SearchSpace:
    """Load and validate a space file.

    Args:
        path: a YAML file, or the name of a shipped space (``default``, ``regularization``, ...).

    Returns:
        The validated :class:`SearchSpace`.

    Raises:
        SpaceError: listing every problem in the file.
    """
    file = _resolve_path(path)
    source = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(sorted(shipped_spaces()))
        raise SpaceError([Problem(source, "", f"no such file (shipped spaces: {known})", has_value=False)]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpaceError([Problem(source, "", "must be a readable UTF-8 text file", value=str(err))]) from None
    space = _parse(_safe_load(text, source), source)
    if space.name == "space":
        space.name = file.stem
    return space


def shipped_spaces() -> dict[str, Path]:
    """The spaces that ship with tuner, by name."""
    if not SPACES_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(SPACES_DIR.glob("*.yaml"))}


def _resolve_path(path: str | Path) -> Path:
    p = Path(path)
    if p.exists() or p.suffix or "/" in str(path):
        return p
    return shipped_spaces().get(str(path), p)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``PARAM=VALUE`` (the value read as YAML: ``0.2``, ``true``, ``relu``, ``null``)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise SpaceError([Problem("--set", text, "must be PARAM=VALUE", value=text)])
    try:
        value = yaml.load(raw, Loader=_NoDuplicatesSafeLoader) if raw.strip() else ""  # noqa: S506
    except yaml.YAMLError:
        value = raw
    return name, value


# -- validation ------------------------------------------------------------------------------
def _did_you_mean(name: str, options: Mapping[str, Any] | list[str]) -> str:
    close = difflib.get_close_matches(str(name), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse(data: Any, source: str) -> SearchSpace:
    problems: list[Problem] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpaceError([Problem(source, "(top level)", "must be a mapping with a 'parameters' key",
                                  value=data)])
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(Problem(source, str(key), f"unknown top-level key{_did_you_mean(key, _TOP_KEYS)}; "
                                    f"allowed: {list(_TOP_KEYS)}", value=data[key]))
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
        problems.append(Problem(source, "parameters", "must be a mapping of parameter name to value or "
                                "distribution", value=raw_params))
        raw_params = {}

    params: dict[str, Param] = {}
    for pname, spec in raw_params.items():
        path = f"parameters.{pname}"
        if not isinstance(pname, str) or pname not in KNOBS:
            problems.append(Problem(source, path, f"unknown parameter{_did_you_mean(str(pname), KNOBS)}; "
                                    "see the README's space reference", value=pname))
            continue
        param = _parse_param(pname, spec, path, source, problems)
        if param is not None:
            params[pname] = param

    invalid = {str(n) for n in raw_params if n in KNOBS and n not in params}
    _check_conditions(params, source, problems, skip=invalid)
    if problems:
        raise SpaceError(problems)
    try:
        return SearchSpace(params, name=name, description=description, source=source)
    except SpaceError:
        raise


def _parse_param(name: str, spec: Any, path: str, source: str, problems: list[Problem]) -> Param | None:
    knob = KNOBS[name]
    start = len(problems)
    if not isinstance(spec, dict):
        if isinstance(spec, list):
            problems.append(Problem(source, path, "must be a fixed value or a mapping with 'type' "
                                    "(a list of options is written {type: categorical, choices: [...]})", value=spec))
            return None
        rule = check_value(knob, spec)
        if rule:
            problems.append(Problem(source, path, rule, value=spec))
            return None
        return Param(name, "fixed", value=spec)

    is_fixed = "value" in spec
    allowed = _FIXED_KEYS if is_fixed else _DIST_KEYS
    for key in spec:
        if key not in allowed:
            hint = _did_you_mean(key, allowed)
            problems.append(Problem(source, f"{path}.{key}", f"unknown key{hint}; allowed: {list(allowed)}",
                                    value=spec[key]))
    per_layer = spec.get("per_layer", False)
    if not isinstance(per_layer, bool):
        problems.append(Problem(source, f"{path}.per_layer", "must be true or false", value=per_layer))
        per_layer = False
    if per_layer and not knob.per_layer:
        per_layer_knobs = [k.name for k in KNOBS.values() if k.per_layer]
        problems.append(Problem(source, f"{path}.per_layer", f"only {per_layer_knobs} can be set per layer",
                                value=per_layer))
        per_layer = False
    condition = _parse_condition(spec.get("condition"), f"{path}.condition", source, problems)

    if is_fixed:
        rule = check_value(knob, spec["value"])
        if rule:
            problems.append(Problem(source, f"{path}.value", rule, value=spec["value"]))
        if len(problems) > start:
            return None
        return Param(name, "fixed", value=spec["value"], condition=condition, per_layer=per_layer)

    ptype = spec.get("type")
    if ptype not in _TYPES:
        rule = "is required: 'int', 'float' or 'categorical' (or give 'value' for a fixed value)" \
            if ptype is None else f"must be one of {list(_TYPES)}"
        problems.append(Problem(source, f"{path}.type", rule, value=ptype, has_value=ptype is not None))
        return None
    if ptype == "categorical":
        for key in ("low", "high", "step", "log"):
            if key in spec:
                problems.append(Problem(source, f"{path}.{key}", "does not apply to a categorical parameter",
                                        value=spec[key]))
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            problems.append(Problem(source, f"{path}.choices", "must be a non-empty list", value=choices))
            return None
        for i, c in enumerate(choices):
            if c is not None and not isinstance(c, (bool, int, float, str)):
                problems.append(Problem(source, f"{path}.choices[{i}]", "must be a scalar (null, bool, number, "
                                        "string)", value=c))
                continue
            rule = check_value(knob, c)
            if rule:
                problems.append(Problem(source, f"{path}.choices[{i}]", rule, value=c))
        if len(set(map(repr, choices))) != len(choices):
            problems.append(Problem(source, f"{path}.choices", "must not repeat a choice", value=choices))
        if len(problems) > start:
            return None
        return Param(name, "categorical", choices=list(choices), condition=condition, per_layer=per_layer)

    # int / float ranges
    if "choices" in spec:
        problems.append(Problem(source, f"{path}.choices", f"does not apply to a {ptype} range (use low/high)",
                                value=spec["choices"]))
    if knob.kind == "int" and ptype == "float":
        problems.append(Problem(source, f"{path}.type", f"{name} is an integer knob; use type int", value=ptype))
    if knob.kind in ("str", "bool"):
        problems.append(Problem(source, f"{path}.type", f"{name} is a {knob.kind} knob; use type categorical",
                                value=ptype))
        return None
    low, high, step, log = spec.get("low"), spec.get("high"), spec.get("step"), spec.get("log", False)
    for key, v in (("low", low), ("high", high)):
        if v is None:
            problems.append(Problem(source, f"{path}.{key}", f"is required for a {ptype} range", has_value=False))
        elif not _is_number(v) or (ptype == "int" and not isinstance(v, int)) or not math.isfinite(v):
            problems.append(Problem(source, f"{path}.{key}", f"must be {'an integer' if ptype == 'int' else 'a finite number'}",
                                    value=v))
    if not isinstance(log, bool):
        problems.append(Problem(source, f"{path}.log", "must be true or false", value=log))
        log = False
    if step is not None and (not _is_number(step) or step <= 0 or (ptype == "int" and not isinstance(step, int))):
        problems.append(Problem(source, f"{path}.step", f"must be a positive {'integer' if ptype == 'int' else 'number'}",
                                value=step))
        step = None
    if len(problems) > start:
        return None
    if low > high:
        problems.append(Problem(source, path, "`low <= high` must hold", value={"low": low, "high": high}))
    elif low == high:
        problems.append(Problem(source, path, "the range is empty (`low < high` must hold; write a fixed value "
                                "instead)", value={"low": low, "high": high}))
    if log and low <= 0:
        problems.append(Problem(source, f"{path}.low", "must be > 0 on a log scale (log ranges cannot touch zero)",
                                value=low))
    if log and step is not None:
        problems.append(Problem(source, f"{path}.step", "cannot be combined with log: true", value=step))
    if step is not None and low < high and not log:
        span = (high - low) / step
        if abs(span - round(span)) > 1e-9:
            problems.append(Problem(source, f"{path}.step", "must divide `high - low` evenly",
                                    value={"low": low, "high": high, "step": step}))
    for key, v in (("low", low), ("high", high)):
        rule = check_value(knob, v)
        if rule:
            problems.append(Problem(source, f"{path}.{key}", f"{rule} ({name})", value=v))
    if len(problems) > start:
        return None
    return Param(name, ptype, low=low, high=high, step=step, log=log, condition=condition, per_layer=per_layer)


def _parse_condition(raw: Any, path: str, source: str, problems: list[Problem]) -> dict[str, list[Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        problems.append(Problem(source, path, "must be a mapping of parameter name to a value or list of values",
                                value=raw))
        return None
    out: dict[str, list[Any]] = {}
    for k, v in raw.items():
        values = v if isinstance(v, list) else [v]
        if not values:
            problems.append(Problem(source, f"{path}.{k}", "must list at least one value", value=v))
            continue
        out[str(k)] = values
    return out


def _check_conditions(params: dict[str, Param], source: str, problems: list[Problem], *,
                      skip: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    for name, p in params.items():
        for parent, values in (p.condition or {}).items():
            path = f"parameters.{name}.condition.{parent}"
            if parent in skip:  # the parent has its own error already
                continue
            if parent not in KNOBS:
                problems.append(Problem(source, path, f"refers to a parameter that does not exist"
                                        f"{_did_you_mean(parent, KNOBS)}", value=parent))
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
                    problems.append(Problem(source, path, f"can never hold: {parent} takes only {possible}",
                                            value=values))
            else:
                knob = KNOBS[parent]
                bad = False
                for v in values:
                    rule = check_value(knob, v)
                    if rule:
                        problems.append(Problem(source, path, rule, value=v))
                        bad = True
                rng = params[parent]
                if not bad and not any(_is_number(v) and rng.low <= v <= rng.high for v in values):
                    problems.append(Problem(source, path, f"can never hold: {parent} ranges over "
                                            f"[{rng.low}, {rng.high}]", value=values))


def _dependencies(name: str, p: Param, params: Mapping[str, Param]) -> list[str]:
    deps = [k for k in (p.condition or {}) if k in params]
    if p.per_layer and "n_layers" in params and name != "n_layers":
        deps.append("n_layers")
    return deps


def _sampling_order(params: Mapping[str, Param], source: str) -> list[str]:
    """Parents before children (conditions, and n_layers before per-layer parameters); cycles are errors."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, stack: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = stack[stack.index(name):] + [name]
            raise SpaceError([Problem(source, f"parameters.{name}.condition",
                                      "conditions must not form a cycle", value=" -> ".join(cycle))])
        state[name] = 1
        for dep in _dependencies(name, params[name], params):
            visit(dep, stack + [name])
        state[name] = 2
        order.append(name)

    for name in params:
        visit(name, [])
    return order
