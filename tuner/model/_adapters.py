"""Models the user brings: a ``build(hp)`` function, a ``keras_tuner.HyperModel`` (instance or class, with or
without its own ``fit()``), or a ``build(params, input_shape, *, task, n_outputs)`` function.

:class:`UserModel` finds which it is, declares the hyperparameters a KerasTuner-style model asks for (with
KerasTuner's own search for every conditional scope, as ``Tuner.search`` does before its first trial), and
gives the training step, per trial, a builder of tuner's shape around it:

- the model is built by the user's ``build(hp)``; a model the build compiled keeps its optimizer (and the
  hyperparameters in it), and is compiled with the task's loss and metric so that targets and the honest
  gap agree; an uncompiled one gets tuner's optimizer knobs;
- training goes through the user's ``HyperModel.fit(hp, model, x, y, epochs=..., callbacks=..., ...)``; a
  ``batch_size`` or ``shuffle`` the user's ``fit`` passes wins over tuner's. A ``fit`` must pass the
  callbacks on to ``model.fit`` (KerasTuner's contract), which carry the honest gap and pruning.

keras_tuner and Keras are imported inside the functions: importing tuner stays light.
"""

from __future__ import annotations

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
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
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
        from keras_tuner.src.engine.hypermodel import get_hypermodel  # KerasTuner's own wrapping of build(hp)

        self.source = source
        self.style = _style(obj)
        if self.style is None:
            raise ConfigError([Problem(source, "hypermodel", "must be a keras_tuner.HyperModel, a build(hp) function "
                                       "or a build(params, input_shape, *, task, n_outputs) function",
                                       value=type(obj).__name__)])
        if isinstance(obj, type):
            try:
                obj = obj()
            except Exception as err:
                raise ConfigError([Problem(source, "hypermodel", f"the class must build with no arguments "
                                           f"({type(err).__name__}: {err})", value=obj.__name__)]) from None
        self.obj = obj
        self.hypermodel = get_hypermodel(obj) if self.style == HP_STYLE else None

    @property
    def params_builder(self) -> Callable[..., Any] | None:
        """The user's ``build(params, input_shape, *, task, n_outputs)``; None for a KerasTuner-style model."""
        return self.obj if self.style == PARAMS_STYLE else None

    def declared(self) -> dict[str, Param]:
        """The hyperparameters a KerasTuner-style model declares, every conditional scope activated.

        KerasTuner's own ``Tuner`` does this search before its first trial (``_populate_initial_space``):
        build with default values, then with values that open each scope not yet seen, until none is left.

        Raises:
            ConfigError: when ``build`` fails (one line with the exception).
        """
        if self.hypermodel is None:
            return {}
        import keras
        import keras_tuner as kt
        from keras_tuner.src.engine.base_tuner import BaseTuner

        class _Explorer:  # what KerasTuner's own search needs of a tuner: an oracle and the hypermodel
            _populate_initial_space = BaseTuner._populate_initial_space
            _activate_all_conditions = BaseTuner._activate_all_conditions

        explorer = _Explorer()
        explorer.oracle = kt.Oracle(objective="val_loss", max_trials=1)  # type: ignore[attr-defined]
        explorer.hypermodel = self.hypermodel  # type: ignore[attr-defined]
        try:
            explorer._populate_initial_space()
        except ConfigError:
            raise
        except Exception as err:
            raise ConfigError([Problem(self.source, "build(hp)", "failed while declaring its hyperparameters "
                                       f"({type(err).__name__}: {err})".replace("\n", " "), has_value=False)]) from None
        finally:
            keras.backend.clear_session()
        return params_of(explorer.oracle.get_space())

    def for_trial(self, trial: Any, space: Mapping[str, Param],
                  values: Mapping[str, Any]) -> tuple[Any, Callable[..., Any], dict[str, Any]]:
        """``(hp, builder, fitted)`` for one trial: the trial's ``keras_tuner.HyperParameters``, a builder of
        tuner's shape (``builder(params, input_shape, *, task, n_outputs)``) that builds, compiles and fits
        through the user's code with it, and the ``batch_size`` and ``epochs`` that ``model.fit`` got once the
        user's ``fit()`` has run (its own values, or tuner's)."""
        hp = trial_hyperparameters(trial, space, values)
        fitted: dict[str, Any] = {}
        hypermodel, source = self.hypermodel, self.source

        def build(params: Mapping[str, Any], input_shape: Any, *, task: str, n_outputs: int) -> Any:
            import keras

            model = hypermodel.build(hp)
            if not isinstance(model, keras.Model):
                raise ConfigError([Problem(source, "build(hp)", "must return a keras.Model",
                                           value=type(model).__name__)])
            _route_through_user(model, hypermodel, hp, fitted)
            return model

        return hp, build, fitted


def _route_through_user(model: Any, hypermodel: Any, hp: Any, fitted: dict[str, Any]) -> None:
    """Make tuner's ``compile`` keep the user's optimizer and tuner's ``fit`` go through ``hypermodel.fit``."""
    user_optimizer = getattr(model, "optimizer", None) if getattr(model, "compiled", False) else None
    keras_compile, keras_fit = model.compile, model.fit

    def compile(*, optimizer: Any, **kwargs: Any) -> None:
        keras_compile(optimizer=user_optimizer or optimizer, **kwargs)

    def fit(x: Any = None, y: Any = None, **kwargs: Any) -> Any:
        defaults = {k: kwargs.pop(k) for k in ("batch_size", "shuffle") if k in kwargs}

        def model_fit(*args: Any, **user_kwargs: Any) -> Any:
            merged = {**defaults, **user_kwargs}
            fitted.update({k: int(merged[k]) for k in ("batch_size", "epochs") if merged.get(k) is not None})
            return keras_fit(*args, **merged)

        object.__setattr__(model, "fit", model_fit)
        try:
            return hypermodel.fit(hp, model, x, y, **kwargs) if y is not None else hypermodel.fit(hp, model, x, **kwargs)
        finally:
            object.__setattr__(model, "fit", fit)

    object.__setattr__(model, "compile", compile)
    object.__setattr__(model, "fit", fit)
