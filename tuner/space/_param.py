"""One entry of a search space: a fixed value or a distribution, optionally conditional or per layer."""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna


NO_OFF = None.__class__  # marks a parameter with no ``regularizer_off`` declaration (None itself is a valid one)


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
    model: bool = False  # a parameter of the user's own model (``model_parameters``), not a built-in knob
    regularizer_off: Any = NO_OFF  # model parameters only: the value that switches this regularizer off

    @property
    def is_fixed(self) -> bool:
        return self.type == "fixed"

    def bounds(self) -> tuple[float | int, float | int]:
        """``(low, high)`` of an ``int``/``float`` range (a parsed range always has both)."""
        if self.low is None or self.high is None:
            raise ValueError(f"parameter {self.name!r} of type {self.type!r} has no low/high range")
        return self.low, self.high

    def possible_values(self) -> list[Any] | None:
        """The values this parameter can take, when they are few enough to list (else None)."""
        if self.type == "fixed":
            return [self.value]
        if self.type == "categorical":
            return list(self.choices or [])
        return None

    def to_config(self) -> Any:
        if self.type == "fixed" and not self.condition and not self.per_layer and self.regularizer_off is NO_OFF:
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
        if self.regularizer_off is not NO_OFF:
            out["regularizer_off"] = self.regularizer_off
        return out


def suggest_one(trial: optuna.trial.BaseTrial, p: Param, name: str) -> Any:
    if p.type == "fixed":
        return copy.deepcopy(p.value)
    if p.type == "categorical":
        if p.choices is None:
            raise ValueError(f"categorical parameter {name!r} has no choices")
        return trial.suggest_categorical(name, p.choices)
    low, high = p.bounds()
    if p.type == "int":
        return trial.suggest_int(name, int(low), int(high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(name, float(low), float(high), step=p.step, log=p.log)
