"""Parameters of the user's own model: the ``model_parameters`` section of a space.

A space file names tuner's built-in knobs under ``parameters`` (a typo there is caught, with a "did you
mean") and the hyperparameters of a model the user brings under ``model_parameters``, with the same
types, ranges, log scales, steps, conditions and per-layer options::

    parameters:
      epochs: 5
    model_parameters:
      my_width: {type: int, low: 16, high: 64, log: true}
      my_dropout: {type: float, low: 0.0, high: 0.5, condition: {my_width: [32, 64]}}

Their values reach the builder in the same flat ``params`` dict as the knobs (and an ``hp`` object of a
define-by-run builder), and are recorded like any knob.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tuner.errors import Problem
from tuner.space._catalogue import Knob
from tuner.space._param import NO_OFF, Param

__all__ = ["parse_model_parameters", "user_knob"]


def user_knob(name: str) -> Knob:
    """The rule a user parameter follows: any scalar value, ranges of numbers, per layer allowed."""
    return Knob(name, "any", None, "a parameter of the user's model", per_layer=True, nullable=True, group="user")


def parse_model_parameters(
    raw: Any, source: str, problems: list[Problem], *, taken: Mapping[str, Any], parse: Callable[..., Param | None]
) -> tuple[dict[str, Param], set[str]]:
    """The ``model_parameters`` section: ``({name: Param}, names of the entries that have problems)``.

    Args:
        raw: the section as read from YAML (None when absent).
        source: the file, for messages.
        problems: every problem found is appended here.
        taken: the names under ``parameters``, which a model parameter may not repeat.
        parse: the parser of one entry (``_validate._parse_param``), given ``knob=``.
    """
    if raw is None:
        return {}, set()
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                source, "model_parameters", "must be a mapping of parameter name to value or distribution", value=raw
            )
        )
        return {}, set()
    params: dict[str, Param] = {}
    invalid: set[str] = set()
    for name, spec in raw.items():
        path = f"model_parameters.{name}"
        if not isinstance(name, str) or not name.isidentifier():
            problems.append(
                Problem(
                    source,
                    path,
                    "the name must be an identifier (letters, digits and _, not starting with a digit)",
                    value=name,
                )
            )
            invalid.add(str(name))
            continue
        if name in taken:
            problems.append(Problem(source, path, "is also under parameters; name it in one section only", value=name))
            invalid.add(name)
            continue
        off = NO_OFF
        if isinstance(spec, dict) and "regularizer_off" in spec:  # what `tuner explain` sets to switch it off
            spec = dict(spec)
            off = spec.pop("regularizer_off")
            if off is not None and not isinstance(off, (bool, int, float, str)):
                problems.append(
                    Problem(
                        source, f"{path}.regularizer_off", "must be a scalar (null, bool, number, string)", value=off
                    )
                )
                invalid.add(name)
                continue
        param = parse(name, spec, path, source, problems, knob=user_knob(name))
        if param is None:
            invalid.add(name)
            continue
        param.model = True
        param.regularizer_off = off
        params[name] = param
    return params, invalid
