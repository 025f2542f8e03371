"""Search spaces: declarative YAML files that say which knobs are fixed and which are searched.

A space file has a ``parameters`` mapping. Each entry names a knob of :data:`tuner.space.KNOBS` and gives
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

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tuner.errors import Problem, SpaceError, did_you_mean
from tuner.space._catalogue import KNOBS, knob_of, layer_key, names_known_to_keras
from tuner.space._param import Param, suggest_one
from tuner.space._validate import validate
from tuner.space._yaml import safe_load

if TYPE_CHECKING:
    import optuna

__all__ = ["SPACES_DIR", "SearchSpace", "load_space", "shipped_spaces"]


def _spaces_dir() -> Path:
    """The shipped spaces: ``tuner/search_spaces/`` in an installed wheel, ``search_spaces/`` in a checkout."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "search_spaces"
    return installed if installed.is_dir() else package.parent / "search_spaces"


SPACES_DIR = _spaces_dir()


class SearchSpace:
    """A validated search space.

    Args:
        params: the parameters in file order.
        name: a short name. Defaults to the file's stem.
        description: free text.
        source: where the space came from (a file path), used in error messages.
    """

    def __init__(
        self, params: Mapping[str, Param], *, name: str = "space", description: str = "", source: str = "<space>"
    ) -> None:
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
        out["parameters"] = {n: p.to_config() for n, p in self.params.items() if not p.model}
        model = {n: p.to_config() for n, p in self.params.items() if p.model}
        if model:
            out["model_parameters"] = model
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
        return _parse(safe_load(text, source), source)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        searched = [n for n, p in self.params.items() if not p.is_fixed]
        return f"SearchSpace(name={self.name!r}, searched={searched})"

    # -- queries ---------------------------------------------------------------------------
    @property
    def model_names(self) -> list[str]:
        """Names of the parameters of the user's model (``model_parameters``)."""
        return [n for n, p in self.params.items() if p.model]

    def with_model_parameters(self, declared: Mapping[str, Param]) -> SearchSpace:
        """A copy in which the user-model parameters ``declared`` (by a define-by-run builder) are added;
        an entry this space names already (to fix or narrow it) is kept as the space has it."""
        params = dict(self.params)
        for name, p in declared.items():
            params.setdefault(name, p)
        return SearchSpace(params, name=self.name, description=self.description, source=self.source)

    @property
    def searched(self) -> list[str]:
        """Names of the parameters that are sampled (not fixed)."""
        return [n for n, p in self.params.items() if not p.is_fixed]

    @property
    def varying_knobs(self) -> frozenset[str]:
        """The knobs whose value the study samples (``dropout`` for ``dropout_2``): what a model shared
        between trials must hold as state rather than build in (``tuner.train_model``'s ``varying``)."""
        return frozenset(knob_of(name) for name in self.searched)

    def defaults(self) -> dict[str, Any]:
        """Every knob's embedded default."""
        return {name: knob.default for name, knob in KNOBS.items()}

    def with_fixed(self, overrides: Mapping[str, Any], *, source: str = "--set") -> SearchSpace:
        """A copy of this space in which each named parameter is fixed to the given value.

        Raises:
            SpaceError: naming each unknown parameter or value that breaks its knob's rule.
        """
        data = self.to_dict()
        model = data.setdefault("model_parameters", {})
        params = data["parameters"]
        for name, value in overrides.items():
            old = self.params.get(name)
            section = model if old is not None and old.model else params
            if old is not None and (old.condition or old.per_layer):
                entry: dict[str, Any] = {"value": value}
                if old.condition:
                    entry["condition"] = {k: list(v) for k, v in old.condition.items()}
                section[name] = entry
            else:
                section[name] = value
        known = [*KNOBS, *self.model_names]
        problems = [
            Problem(source, name, f"unknown parameter{did_you_mean(name, known)}", value=value)
            for name, value in overrides.items()
            if name not in known
        ]
        if problems:
            raise SpaceError(problems)
        # A parameter whose condition can no longer hold once its parent is fixed is inactive: drop it.
        changed = True
        while changed:
            changed = False
            for section, name, entry in [(sec, n, e) for sec in (params, model) for n, e in list(sec.items())]:
                condition = entry.get("condition") if isinstance(entry, dict) else None
                for parent, values in (condition or {}).items():
                    fixed = params.get(parent, model.get(parent, KNOBS[parent].default if parent in KNOBS else None))
                    if not isinstance(fixed, dict) and fixed not in (values if isinstance(values, list) else [values]):
                        del section[name]
                        changed = True
                        break
        try:
            return _parse(data, self.source)
        except SpaceError as err:
            raise SpaceError(
                [
                    Problem(source, p.path.removeprefix("parameters."), p.rule, value=p.value, has_value=p.has_value)
                    for p in err.problems
                ]
            ) from None

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
                    resolved[layer_key(name, i)] = suggest_one(trial, p, layer_key(name, i))
            else:
                resolved[name] = suggest_one(trial, p, name)
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
                problems.append(
                    Problem(
                        self.source,
                        f"parameters.{name}",
                        "the grid sampler needs unconditional, shared parameters",
                        value=p.to_config(),
                    )
                )
            elif p.type == "categorical":
                grid[name] = list(p.choices or [])
            elif p.step is not None and not p.log:
                low, high = p.bounds()
                n = round((high - low) / p.step)
                values = [round(low + i * p.step, 12) for i in range(n + 1)]
                grid[name] = [int(v) for v in values] if p.type == "int" else values
            elif p.type == "int" and not p.log:
                low, high = p.bounds()
                grid[name] = list(range(int(low), int(high) + 1))
            else:
                problems.append(
                    Problem(
                        self.source,
                        f"parameters.{name}",
                        "the grid sampler needs categorical or stepped ranges",
                        value=p.to_config(),
                    )
                )
        if problems:
            raise SpaceError(problems)
        return grid


def load_space(path: str | Path) -> SearchSpace:
    """Load and validate a space file.

    Args:
        path: a YAML file, or the name of a shipped space (``default``, ``regularization``, ...). A shipped
            space named so is checked without asking Keras about its names (the test suite does), so
            loading it does not import Keras.

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
    shipped = file in shipped_spaces().values()
    with names_known_to_keras() if shipped else contextlib.nullcontext():
        space = _parse(safe_load(text, source), source)
    if space.name == "space":
        space.name = file.stem
    return space


def _parse(data: Any, source: str) -> SearchSpace:
    params, name, description = validate(data, source)
    return SearchSpace(params, name=name, description=description, source=source)


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
            cycle = [*stack[stack.index(name) :], name]
            raise SpaceError(
                [
                    Problem(
                        source,
                        f"parameters.{name}.condition",
                        "conditions must not form a cycle",
                        value=" -> ".join(cycle),
                    )
                ]
            )
        state[name] = 1
        for dep in _dependencies(name, params[name], params):
            visit(dep, [*stack, name])
        state[name] = 2
        order.append(name)

    for name in params:
        visit(name, [])
    return order
