"""Models the user brings: a ``build(hp)`` function, a ``keras_tuner.HyperModel`` (instance or class, with or
without its own ``fit()``), or a ``build(params, input_shape, *, task, n_outputs)`` function.

:class:`UserModel` finds which it is, declares the hyperparameters a KerasTuner-style model asks for (with
KerasTuner's own search for every conditional scope, as ``Tuner.search`` does before its first trial), and
gives the training step, per trial, a builder of tuner's shape around it:

- the model is built by the user's ``build(hp)``; a model the build compiled keeps its loss, metrics and
  optimizer (the training step measures the honest gap with that loss and those metrics); an uncompiled
  one gets tuner's task loss and optimizer knobs;
- training goes through the user's ``HyperModel.fit(hp, model, x, y, epochs=..., callbacks=..., ...)``; a
  ``batch_size`` or ``shuffle`` the user's ``fit`` passes wins over tuner's. A ``fit`` must pass the
  callbacks on to ``model.fit`` (KerasTuner's contract), which carry the honest gap and pruning. Options the
  user gave ``search()`` (:attr:`UserModel.fit_options`: their callbacks, a fresh copy per trial, ``class_weight``,
  ``verbose``) reach ``model.fit`` too.

Only KerasTuner's public API is used (``HyperModel``, ``HyperParameters``, ``Oracle.get_space`` and
``update_space``). keras_tuner and Keras are imported inside the functions: importing tuner stays light.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from tuner.errors import ConfigError, Problem
from tuner.space import Param, params_of, trial_hyperparameters

__all__ = ["UserModel"]

HP_STYLE = "hp"  # build(hp) or a HyperModel
PARAMS_STYLE = "params"  # build(params, input_shape, *, task, n_outputs)


def _style(obj: Any) -> str | None:
    """``"hp"`` for a HyperModel or a one-argument function, ``"params"`` for tuner's builder signature."""
    import keras_tuner as kt

    if isinstance(obj, kt.HyperModel) or (isinstance(obj, type) and issubclass(obj, kt.HyperModel)):
        return HP_STYLE
    if not callable(obj):
        return None
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return HP_STYLE
    names = list(sig.parameters)
    positional = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if "input_shape" in names or len(positional) >= 2:
        return PARAMS_STYLE
    return HP_STYLE


class UserModel:
    """A model the user brings, adapted to tuner's training step.

    Args:
        obj: a ``keras_tuner.HyperModel`` instance or subclass (built with no arguments), a ``build(hp)``
            function, or a ``build(params, input_shape, *, task, n_outputs)`` function.
        source: how messages name it (a reference such as ``models.py:build``). Defaults to `"hypermodel"`.

    Raises:
        ConfigError: when ``obj`` is none of these.
    """

    def __init__(self, obj: Any, *, source: str = "hypermodel") -> None:
        self.source = source
        self.style = _style(obj)
        if self.style is None:
            raise ConfigError(
                [
                    Problem(
                        source,
                        "hypermodel",
                        "must be a keras_tuner.HyperModel, a build(hp) function "
                        "or a build(params, input_shape, *, task, n_outputs) function",
                        value=type(obj).__name__,
                    )
                ]
            )
        if isinstance(obj, type):
            try:
                obj = obj()
            except Exception as err:
                raise ConfigError(
                    [
                        Problem(
                            source,
                            "hypermodel",
                            f"the class must build with no arguments ({type(err).__name__}: {err})",
                            value=obj.__name__,
                        )
                    ]
                ) from None
        self.obj = obj
        self.hypermodel = _as_hypermodel(obj) if self.style == HP_STYLE else None
        # KerasTuner's Oracle arguments: a HyperParameters that overrides or fixes what build declares
        self.hyperparameters: Any = None
        self.tune_new_entries = True
        self.allow_new_entries = True
        self.space_hps: Any = None  # the KerasTuner HyperParameters the study tunes, once declared
        self.fit_options: dict[str, Any] = {}  # what the user gave search(): callbacks, class_weight, verbose

    @property
    def params_builder(self) -> Callable[..., Any] | None:
        """The user's ``build(params, input_shape, *, task, n_outputs)``; None for a KerasTuner-style model."""
        return self.obj if self.style == PARAMS_STYLE else None

    def declared(self) -> dict[str, Param]:
        """The hyperparameters a KerasTuner-style model declares, every conditional scope activated.

        As KerasTuner's own ``Tuner`` does before its first trial: build with default values, then with values
        that open each scope not yet seen, until none is left. With :attr:`hyperparameters` set, its entries
        override what build declares; :attr:`tune_new_entries` False keeps the others at their defaults.

        Raises:
            ConfigError: when ``build`` fails (one line with the exception).
        """
        if self.hypermodel is None:
            return {}
        import keras
        import keras_tuner as kt

        oracle = kt.Oracle(
            objective="val_loss",
            max_trials=1,
            hyperparameters=self.hyperparameters,
            tune_new_entries=self.tune_new_entries,
            allow_new_entries=self.allow_new_entries,
        )
        try:
            _declare_all(self.hypermodel, oracle, self.source)
        except ConfigError:
            raise
        except Exception as err:
            raise ConfigError(
                [
                    Problem(
                        self.source,
                        "build(hp)",
                        f"failed while declaring its hyperparameters ({type(err).__name__}: {err})".replace("\n", " "),
                        has_value=False,
                    )
                ]
            ) from None
        finally:
            keras.backend.clear_session()
        self.space_hps = oracle.get_space()
        return params_of(self.space_hps)

    def for_trial(
        self, trial: Any, space: Mapping[str, Param], values: Mapping[str, Any]
    ) -> tuple[Any, Callable[..., Any], dict[str, Any]]:
        """``(hp, builder, fitted)`` for one trial: the trial's ``keras_tuner.HyperParameters``, a builder of
        tuner's shape (``builder(params, input_shape, *, task, n_outputs)``) that builds, compiles and fits
        through the user's code with it, and the ``batch_size`` and ``epochs`` that ``model.fit`` got once the
        user's ``fit()`` has run (its own values, or tuner's)."""
        hp = trial_hyperparameters(trial, space, values, tune_new=self.tune_new_entries)
        fitted: dict[str, Any] = {}
        hypermodel, source, options = self.hypermodel, self.source, self.fit_options

        def build(params: Mapping[str, Any], input_shape: Any, *, task: str, n_outputs: int) -> Any:
            if hypermodel is None:  # only a KerasTuner-style model (build(hp)) has a hypermodel
                raise ValueError(f"{source}: for_trial is for build(hp) hypermodels")
            model = hypermodel.build(hp)
            _check_model(model, source)
            _route_through_user(model, hypermodel, hp, fitted, options)
            return model

        return hp, build, fitted


def _as_hypermodel(obj: Any) -> Any:
    """A ``keras_tuner.HyperModel`` as it is; a ``build(hp)`` function wrapped in one."""
    import keras_tuner as kt

    if isinstance(obj, kt.HyperModel):
        return obj

    class FunctionHyperModel(kt.HyperModel):
        def build(self, hp: Any) -> Any:
            return obj(hp)

    return FunctionHyperModel()


def _check_model(model: Any, source: str) -> None:
    import keras

    if not isinstance(model, keras.Model):
        returned = "nothing (None)" if model is None else f"a {type(model).__name__}"
        raise ConfigError(
            [Problem(source, "build(hp)", f"must return a keras.Model, but it returned {returned}", has_value=False)]
        )


def _declare_all(hypermodel: Any, oracle: Any, source: str) -> None:
    """Build with the oracle's space until every conditional scope has been active once (KerasTuner's own
    search before its first trial, through its public ``HyperParameters`` and ``Oracle`` methods)."""
    never_active: list[Any] = []
    once_active: list[Any] = []
    hp = oracle.get_space()
    declare = getattr(hypermodel, "declare_hyperparameters", None)  # KerasTuner 1.4.x; a no-op unless overridden
    if declare is not None:
        declare(hp)
        oracle.update_space(hp)
        hp = oracle.get_space()
    while True:
        _check_model(hypermodel.build(hp), source)
        oracle.update_space(hp)
        for conditions in hp.active_scopes:
            if conditions not in once_active:
                once_active.append(copy.deepcopy(conditions))
            if conditions in never_active:
                never_active.remove(conditions)
        for conditions in hp.inactive_scopes:
            if conditions not in once_active and conditions not in never_active:
                never_active.append(copy.deepcopy(conditions))
        if not never_active:
            return
        hp = oracle.get_space()
        for condition in never_active[0]:
            hp.values[condition.name] = condition.values[0]
        hp.ensure_active_values()


def _route_through_user(
    model: Any, hypermodel: Any, hp: Any, fitted: dict[str, Any], options: Mapping[str, Any]
) -> None:
    """Make tuner's ``fit`` go through ``hypermodel.fit``, with the options the user gave ``search()``."""
    keras_fit = model.fit

    def fit(x: Any = None, y: Any = None, **kwargs: Any) -> Any:
        defaults: dict[str, Any] = {k: kwargs.pop(k) for k in ("batch_size", "shuffle", "verbose") if k in kwargs}
        extra = {k: v for k, v in options.items() if k != "callbacks"}
        searched = copy.deepcopy(list(options.get("callbacks") or []))  # KerasTuner copies them per trial too

        def model_fit(*args: Any, **user_kwargs: Any) -> Any:
            merged: dict[str, Any] = {**defaults, **extra, **user_kwargs}
            merged["callbacks"] = [*(merged.get("callbacks") or []), *searched]
            fitted.update({k: int(merged[k]) for k in ("batch_size", "epochs") if merged.get(k) is not None})
            return keras_fit(*args, **merged)

        object.__setattr__(model, "fit", model_fit)
        try:
            if y is not None:
                return hypermodel.fit(hp, model, x, y, **kwargs)
            return hypermodel.fit(hp, model, x, **kwargs)
        finally:
            object.__setattr__(model, "fit", fit)

    object.__setattr__(model, "fit", fit)
