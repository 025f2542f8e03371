"""Define-by-run: KerasTuner's ``hp`` object, answered by an Optuna trial.

A builder may take an ``hp`` and ask for values as it builds (``hp.Int``, ``hp.Float``, ``hp.Choice``,
``hp.Boolean``, ``hp.Fixed``, ``hp.conditional_scope``, ``parent_name``/``parent_values``, ``default``,
``sampling="log"``, ``step``). The object *is* a ``keras_tuner.HyperParameters``: KerasTuner's own
class decides names, scopes, conditions and which values are active (through its public methods ``Int``,
``Float``, ``Choice``, ``Boolean``, which this class extends, and ``space``/``values``); only the moment a
value is chosen is tuner's: the value the space gives (a ``model_parameters`` entry fixes or narrows it) or, for a
parameter the space does not know, an Optuna suggestion with the same range and scale.

:func:`param_of` turns a KerasTuner hyperparameter into a :class:`~tuner.space.Param`, so that what a
builder declares becomes part of the study's space (recorded, reported, ``--set``-able).

keras_tuner is imported inside the functions: importing tuner stays light.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tuner.space._param import Param, suggest_one

if TYPE_CHECKING:
    import optuna

__all__ = ["param_of", "params_of", "trial_hyperparameters"]


def _stepped_high(low: float, high: float, step: float, integer: bool) -> float:
    """The largest ``low + k * step`` not above ``high`` (KerasTuner never samples past it either)."""
    n = math.floor((high - low) / step + 1e-9)
    top = low + n * step
    return int(top) if integer else round(top, 12)


def param_of(hp: Any) -> Param:
    """The :class:`~tuner.space.Param` (a model parameter) that samples what KerasTuner hyperparameter ``hp`` does.

    ``Int``/``Float`` become int/float ranges (``sampling="log"`` or ``"reverse_log"`` a log scale, a
    linear ``step`` a step); a log range with a ``step`` (KerasTuner multiplies by it) becomes the
    categorical of its values; ``Choice`` and ``Boolean`` become categoricals, ``Fixed`` a fixed value.
    KerasTuner's ``conditions`` become the entry's ``condition``.
    """
    import keras_tuner as kt

    condition: dict[str, list[Any]] = {}
    for c in getattr(hp, "conditions", []) or []:
        values = list(c.values)
        condition[c.name] = [v for v in condition[c.name] if v in values] if c.name in condition else values
    common: dict[str, Any] = {"condition": condition or None, "model": True}
    name = hp.name
    types = kt.engine.hyperparameters  # KerasTuner's public module of hyperparameter types
    if isinstance(hp, types.Fixed):
        return Param(name, "fixed", value=hp.value, **common)
    if isinstance(hp, types.Boolean):
        return Param(name, "categorical", choices=[False, True], **common)
    if isinstance(hp, types.Choice):
        return Param(name, "categorical", choices=list(hp.values), **common)
    integer = isinstance(hp, types.Int)
    ptype = "int" if integer else "float"
    log = hp.sampling in ("log", "reverse_log")
    low, high, step = hp.min_value, hp.max_value, hp.step
    if log and step is not None:
        values = sorted({int(v) if integer else float(v) for v in hp.values})
        return (
            Param(name, "categorical", choices=values, **common)
            if len(values) > 1
            else Param(name, "fixed", value=values[0], **common)
        )
    if step is not None:
        high = _stepped_high(low, high, step, integer)
        step = None if integer and step == 1 else step
    if low == high:
        return Param(name, "fixed", value=low, **common)
    return Param(name, ptype, low=low, high=high, step=step, log=log, **common)


def params_of(hps: Any) -> dict[str, Param]:
    """The parameters a ``keras_tuner.HyperParameters`` declares (first declaration of a name wins)."""
    out: dict[str, Param] = {}
    for hp in hps.space:
        out.setdefault(hp.name, param_of(hp))
    return out


@functools.cache
def _trial_class() -> type:
    import keras_tuner as kt

    class TrialHyperParameters(kt.HyperParameters):
        """KerasTuner's ``HyperParameters`` whose new, active values come from an Optuna trial."""

        def __init__(
            self,
            trial: Any = None,
            space: Mapping[str, Param] | None = None,
            values: Mapping[str, Any] | None = None,
            tune_new: bool = True,
        ) -> None:
            super().__init__()
            self._trial = trial
            self._tune_new = tune_new
            self._declared = dict(space or {})
            self.values.update(values or {})

        def _answered(self, declare: str, *args: Any, **kwargs: Any) -> Any:
            """Declare through KerasTuner's public method, then answer a new, active value from the trial."""
            before = set(self.values)
            value = getattr(super(), declare)(*args, **kwargs)
            added = [name for name in self.values if name not in before]  # KerasTuner adds active values only
            if self._trial is None or len(added) != 1:
                return value
            name = added[0]
            param = self._declared.get(name)
            if param is None and not self._tune_new:  # KerasTuner's tune_new_entries=False: its default
                return value
            param = param or param_of([h for h in self.space if h.name == name][-1])
            self.values[name] = suggest_one(self._trial, param, name)
            return self.values[name]

        def Int(self, *args: Any, **kwargs: Any) -> Any:  # KerasTuner's names
            return self._answered("Int", *args, **kwargs)

        def Float(self, *args: Any, **kwargs: Any) -> Any:
            return self._answered("Float", *args, **kwargs)

        def Choice(self, *args: Any, **kwargs: Any) -> Any:
            return self._answered("Choice", *args, **kwargs)

        def Boolean(self, *args: Any, **kwargs: Any) -> Any:
            return self._answered("Boolean", *args, **kwargs)

        def copy(self) -> Any:  # KerasTuner copies through get_config; keep the trial
            new = super().copy()
            new.__class__ = type(self)
            new._trial, new._declared, new._tune_new = self._trial, self._declared, self._tune_new
            return new

    return TrialHyperParameters


def trial_hyperparameters(
    trial: optuna.trial.BaseTrial | None,
    space: Mapping[str, Param] | None = None,
    values: Mapping[str, Any] | None = None,
    *,
    tune_new: bool = True,
) -> Any:
    """A ``keras_tuner.HyperParameters`` answered by ``trial``.

    Args:
        trial: the Optuna trial that chooses each new active value; None gives KerasTuner's defaults.
        space: model parameters of the study's space, by name: a name found here is sampled as the space
            says (a fixed value, a narrower range). Defaults to none.
        values: values already chosen for this trial (the space's sampled model parameters), which the
            builder reads back. Defaults to none.
        tune_new: sample a name ``space`` does not hold (else it keeps KerasTuner's default, as with
            ``tune_new_entries=False``). Defaults to `True`.

    Returns:
        A ``keras_tuner.HyperParameters`` subclass instance.
    """
    return _trial_class()(trial, space, values, tune_new)
