"""Retraining a stored configuration over seeds: the ablation variants of a winner, and the top trials again.

A study trains each configuration once, with one seed. What a regularizer bought, or whether the winner
beats the runner-up by more than seed noise, needs the same configuration trained again over a few seeds,
with one regularizer switched off (:func:`ablation_variants`) or unchanged (:func:`retrain`). The study is
rebuilt from its recipe (:meth:`tuner.study.Study.from_storage`), so retraining sees the same dataset,
splits, space defaults, builder and ``gap_subset`` as the trials did.

Which value switches a regularizer off is known for tuner's own knobs (:data:`BUILTIN_OFF`). A user's
model says it for its own parameters with a plain mapping ``{parameter: value that switches it off}``,
given to :func:`ablation_variants` as ``off=`` or declared in the space as ``regularizer_off: <value>`` on
the parameter's entry (read by :func:`declared_off`).

Keras and the training stage are imported inside the functions, so that importing tuner stays light.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tuner.errors import ConfigError, Problem, TrialFailed
from tuner.metrics import ranked
from tuner.space import KNOBS, layer_keys
from tuner.study._record import read_trial

__all__ = [
    "BUILTIN_OFF",
    "Variant",
    "ablation_variants",
    "declared_off",
    "open_for_retraining",
    "regularization_knobs",
    "resolved_params",
    "retrain",
    "retrain_seeds",
    "top_trials",
]

_DROPOUTS = ("dropout", "input_dropout", "spatial_dropout", "recurrent_dropout", "head_dropout")
_PENALTIES = ("kernel", "bias", "activity")
_AUGMENT_OFF = {name: knob.default for name, knob in KNOBS.items() if name.startswith("augment_")}  # off by default

BUILTIN_OFF: dict[str, dict[str, Any]] = {
    **{name: {name: 0.0} for name in _DROPOUTS},
    **{f"{p}_regularizer": {f"{p}_regularizer": "none"} for p in _PENALTIES},
    "batch_norm": {"batch_norm": "off"},
    "weight_decay": {"weight_decay": 0.0},
    "augmentation": _AUGMENT_OFF,
    "early_stopping": {"patience": 0},
}
"""Each built-in regularizer, with the knob values that switch it off (per-layer ``dropout_<i>`` included)."""


def regularization_knobs(names: Sequence[str]) -> list[str]:
    """The parameter names among ``names`` that regularize (``dropout_2`` counts): a knob of the catalogue's
    regularization group, or one that an ablation switches off (:data:`BUILTIN_OFF`: ``weight_decay``,
    ``patience``). The one definition for the ablation, the gap-vs-regularization plot and the gap statistics."""
    from tuner.space import KNOBS, knob_of

    switched = {knob for changes in BUILTIN_OFF.values() for knob in changes}
    out = []
    for name in names:
        base = name if name in KNOBS else knob_of(name)
        knob = KNOBS.get(base) if base is not None else None
        if knob is not None and (knob.group == "regularization" or base in switched):
            out.append(name)
    return out


@dataclasses.dataclass(frozen=True)
class Variant:
    """A configuration with one regularizer switched off.

    Attributes:
        name: the regularizer (``dropout``, ``kernel_regularizer``, ``augmentation``, ``early_stopping``,
            or a user parameter's name).
        label: what the winner had, for a person: ``dropout 0.28``, ``kernel_regularizer l2 (l2=0.0001)``.
        changes: the parameter values that switch it off.
    """

    name: str
    label: str
    changes: dict[str, Any]

    def apply(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, **self.changes}


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _layer_keys(params: Mapping[str, Any], name: str) -> list[str]:
    """``name`` and its per-layer forms ``name_1 .. name_n`` present in ``params``."""
    per_layer = set(layer_keys(params, name))
    return [k for k in params if k == name or k in per_layer]


def _is_on(value: Any, off: Any) -> bool:
    if value is None:
        return False
    if isinstance(off, (int, float)) and not isinstance(off, bool) and isinstance(value, (int, float)):
        return not math.isclose(float(value), float(off))
    return value != off


def _builtin_variant(name: str, params: Mapping[str, Any]) -> Variant | None:
    if name in _DROPOUTS:
        keys = [k for k in _layer_keys(params, name) if _is_on(params[k], 0.0)]
        if not keys:
            return None
        values = "/".join(_short(params[k]) for k in _layer_keys(params, name))
        return Variant(name, f"{name} {values}", dict.fromkeys(_layer_keys(params, name), 0.0))
    if name == "augmentation":
        on = {k: v for k, v in _AUGMENT_OFF.items() if _is_on(params.get(k), v)}
        if not on:
            return None
        return Variant(name, "augmentation " + ", ".join(f"{k[8:]}={_short(params[k])}" for k in on), dict(on))
    if name == "early_stopping":
        patience = params.get("patience")
        if not _is_on(patience, 0):
            return None
        return Variant(name, f"early stopping (patience {patience})", {"patience": 0})
    ((knob, off),) = BUILTIN_OFF[name].items()
    value = params.get(knob)
    if not _is_on(value, off):
        return None
    label = f"{knob} {_short(value)}"
    if knob.endswith("_regularizer"):
        prefix = knob[: -len("_regularizer")]
        factors = [f"{f}={_short(params.get(f'{prefix}_{f}'))}" for f in ("l1", "l2") if f in str(value)]
        label += f" ({', '.join(factors)})"
    return Variant(name, label, {knob: off})


def declared_off(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``regularizer_off`` declarations of a space's parameters: ``{parameter: value that switches it off}``.

    Args:
        parameters: a space's ``parameters`` mapping as plain data (a space file's, or a study recipe's),
            or the whole space with a ``parameters`` key.
    """
    if not parameters:
        return {}
    if isinstance(parameters.get("parameters"), Mapping) or isinstance(parameters.get("model_parameters"), Mapping):
        parameters = {**(parameters.get("parameters") or {}), **(parameters.get("model_parameters") or {})}
    return {
        name: entry["regularizer_off"]
        for name, entry in parameters.items()
        if isinstance(entry, Mapping) and "regularizer_off" in entry
    }


def ablation_variants(params: Mapping[str, Any], *, off: Mapping[str, Any] | None = None) -> list[Variant]:
    """One :class:`Variant` per regularizer that is active in ``params``, each switching only that one off.

    Built-in regularizers (:data:`BUILTIN_OFF`): every dropout-like knob (per-layer forms together),
    the kernel, bias and activity penalties, batch normalization, weight decay, augmentation (all its
    knobs together) and early stopping. ``off`` adds a user's own parameters, and wins for a built-in
    knob it names.

    Args:
        params: resolved parameters of a configuration.
        off: ``{parameter: value that switches it off}``. Defaults to `None`.

    Raises:
        ConfigError: when ``off`` names a parameter the configuration does not have.
    """
    off = dict(off or {})
    missing = [name for name in off if name not in params]
    if missing:
        raise ConfigError(
            [
                Problem(
                    "regularizer_off",
                    name,
                    f"must name a parameter of the configuration (it has {sorted(params)})",
                    value=name,
                )
                for name in missing
            ]
        )
    variants = [
        Variant(name, f"{name} {_short(params[name])}", {name: value})
        for name, value in off.items()
        if _is_on(params[name], value)
    ]
    taken = set(off)
    for name in BUILTIN_OFF:
        variant = _builtin_variant(name, params)
        if variant is not None and not taken.intersection(variant.changes):
            variants.append(variant)
    return variants


# -- the study, its trials, and retraining ---------------------------------------------------------


def open_for_retraining(study: Any, storage: str | None = None, *, builder: Callable[..., Any] | None = None) -> Any:
    """A :class:`~tuner.study.Study` to retrain from: ``study`` itself, or the named study rebuilt from its recipe.

    Raises:
        ConfigError: when the study does not exist, or was made from data in memory (pass the Study then).
    """
    if not isinstance(study, str):
        return study
    from tuner.study._study import Study

    return Study.from_storage(study, storage, builder=builder)


def resolved_params(optuna_study: Any, number: int) -> dict[str, Any]:
    """The parameters trial ``number`` was trained with (every knob, as the builder saw them).

    Raises:
        ConfigError: when the study has no complete trial ``number`` (``--trial``).
    """
    complete = {t.number: t for t in optuna_study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"}
    if number not in complete:
        raise ConfigError(
            [
                Problem(
                    "--trial",
                    "trial",
                    f"must be the number of a complete trial of study "
                    f"{optuna_study.study_name!r} (complete: {sorted(complete)})",
                    value=number,
                )
            ]
        )
    trial = complete[number]
    stored = read_trial(trial).resolved_params
    return dict(stored) if stored else dict(trial.params)


def top_trials(optuna_study: Any, k: int) -> list[int]:
    """The numbers of the ``k`` best complete trials by the first objective, best first."""
    complete = [t for t in optuna_study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    return [t.number for t in ranked(complete, optuna_study.directions[0])[:k]]


def retrain_seeds(study: Any, n: int) -> list[int]:
    """``n`` seeds shared by every retrained configuration (paired comparisons), from the study's seed."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError([Problem("--seeds", "seeds", "must be a positive integer", value=n)])
    return [study.settings.seed + 10_000 + i for i in range(n)]


def retrain(study: Any, params: Mapping[str, Any], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Train ``params`` once per seed on the study's dataset, as its trials were trained.

    Returns:
        One dict per seed: the honest metrics at the chosen epoch, ``best_epoch``, ``epochs_run``,
        ``wall_time`` and ``seed``; a run that fails (a diverging loss) holds ``failed`` with the reason.
    """
    import keras

    from tuner.training import train_model

    runs: list[dict[str, Any]] = []
    for seed in seeds:
        try:
            result = train_model(
                params, study.dataset, seed=int(seed), builder=study.builder, gap_subset=study.settings.gap_subset
            )
            runs.append(
                {
                    **{k: float(v) for k, v in result.metrics.items()},
                    "best_epoch": result.best_epoch,
                    "epochs_run": result.epochs_run,
                    "wall_time": round(result.wall_time, 3),
                    "seed": int(seed),
                }
            )
            result.model = None
        except TrialFailed as err:
            runs.append({"failed": str(err), "seed": int(seed)})
        finally:
            keras.backend.clear_session()  # which collects garbage too
    return runs
