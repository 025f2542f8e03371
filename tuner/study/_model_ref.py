"""The user's model in a study: loading a ``file.py:name`` / ``module:name`` reference, and the study's space
with the hyperparameters that model declares.

A study stores the reference in its recipe (``StudySettings.model``), so that worker processes, on this
machine or another, import the same model. A model object passed to :class:`~tuner.study.Study` gets the
reference of the module-level function or class it is, when it has one.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from tuner.errors import ConfigError, Problem

__all__ = [
    "DEFAULT_SPACES",
    "IN_MEMORY",
    "default_space",
    "load_model_ref",
    "model_name",
    "model_ref_of",
    "study_space",
    "user_model",
]

IN_MEMORY = "<in-memory object>"  # a model with no importable reference: workers cannot rebuild it

# the shipped space a study without --space tunes, by the view the data suggests (tuner.model.natural_view)
DEFAULT_SPACES = {"image": "image_default", "sequence": "sequence_default", "flat": "default"}
_WHAT = {
    "image": "a CNN (Conv2D blocks) on the images",
    "sequence": "a CNN (Conv1D blocks) along the sequences",
    "flat": "an MLP on the features",
}
_OTHERS = {
    "image": "--space default for an MLP on the flat pixels",
    "sequence": "--space rnn_regularization for LSTM/GRU layers, --space default for an MLP",
    "flat": "--image-shape H,W,C when the rows are images",
}


def _ref_error(ref: str, rule: str) -> ConfigError:
    return ConfigError([Problem(ref, "--model", rule, has_value=False)])


def load_model_ref(ref: str) -> Any:
    """The object a reference names: ``path/to/models.py:build`` or ``package.module:Name``.

    Raises:
        ConfigError: one line naming the reference and why it does not load.
    """
    if ref == IN_MEMORY:
        raise _ref_error(
            ref,
            "the study was created with a model object that has no importable reference, so a "
            "worker cannot rebuild it; define it at module level in a file",
        )
    module_part, sep, name = ref.rpartition(":")
    if not sep or not module_part or not name:
        raise _ref_error(ref, "must be FILE.py:NAME or MODULE:NAME, e.g. models.py:build")
    path = Path(module_part).expanduser()
    try:
        if module_part.endswith(".py") or path.exists():
            if not path.is_file():
                raise _ref_error(ref, f"file not found (looked for {path.resolve()})")
            key = f"_tuner_user_model_{abs(hash(str(path.resolve())))}"
            module = sys.modules.get(key)
            if module is None:
                spec = importlib.util.spec_from_file_location(key, path.resolve())
                module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
                sys.modules[key] = module
                try:
                    spec.loader.exec_module(module)  # type: ignore[union-attr]
                except BaseException:
                    del sys.modules[key]
                    raise
        else:
            module = importlib.import_module(module_part)
    except ConfigError:
        raise
    except Exception as err:
        where = f"line {err.lineno}: " if isinstance(err, SyntaxError) else ""
        raise _ref_error(
            ref, f"cannot import {module_part} ({where}{type(err).__name__}: {err})".replace("\n", " ")
        ) from None
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in vars(module) if not n.startswith("_"))[:12]
            raise _ref_error(ref, f"{module_part} has no attribute {name!r} (it has: {', '.join(public)})")
        obj = getattr(obj, part)
    return obj


def model_ref_of(obj: Any) -> str:
    """The reference of a module-level function or class (or an instance's class), else :data:`IN_MEMORY`."""
    target = obj if inspect.isfunction(obj) or inspect.isclass(obj) else type(obj)
    qualname = getattr(target, "__qualname__", "")
    module = sys.modules.get(getattr(target, "__module__", ""))
    if module is None or "<locals>" in qualname or target.__module__ == "builtins":
        return IN_MEMORY
    file = getattr(module, "__file__", None)
    if file and "site-packages" not in Path(file).parts:  # the user's own file: workers load it by its path
        return f"{Path(file).resolve()}:{qualname}"
    return f"{target.__module__}:{qualname}" if file else IN_MEMORY


def model_name(model: Any) -> str:
    """What a study of the user's ``model`` (a :class:`~tuner.model.UserModel`) is named after by default:
    ``models.MyHyperModel`` for ``models.py:MyHyperModel`` or ``models:MyHyperModel``, the function's or
    class's own name for an object with no importable reference; so that two models on one dataset get
    two studies (``models.build-digits``, ``models.MyHyperModel-digits``)."""
    ref = model.source
    module_part, sep, name = ref.rpartition(":")
    if ref == IN_MEMORY or not sep:
        obj = model.obj
        target = obj if inspect.isfunction(obj) or inspect.isclass(obj) else type(obj)
        return getattr(target, "__qualname__", "model").split(".")[-1]
    stem = Path(module_part).stem if module_part.endswith(".py") else module_part
    return f"{stem}.{name}"


def user_model(hypermodel: Any, builder: Any, settings: Any) -> Any:
    """The :class:`~tuner.model.UserModel` of a study, or None for tuner's own builder; records its reference.

    ``hypermodel`` may be an object or a reference string; without it, ``settings.model`` (the reference a
    worker reads from the recipe) is loaded. A ``builder`` of tuner's shape gets its reference recorded too.
    """
    from tuner.model import UserModel

    if hypermodel is None and builder is None and settings.model:
        hypermodel = settings.model
    if hypermodel is None:
        if builder is not None and settings.model is None:
            settings.model = model_ref_of(builder)
        return None
    if isinstance(hypermodel, UserModel):  # made by a front door (the KerasTuner class), with its options set
        settings.model = model_ref_of(hypermodel.obj)
        return hypermodel
    if isinstance(hypermodel, str):
        settings.model = hypermodel
        return UserModel(load_model_ref(hypermodel), source=hypermodel)
    settings.model = model_ref_of(hypermodel)
    return UserModel(hypermodel, source=settings.model)


def study_space(space: Any, model: Any, fixed: Any) -> Any:
    """The study's space: the given one (with a user model an empty space by default, else the shipped
    ``default``), the hyperparameters the model declares added, then ``fixed`` (``--set``) applied.

    Raises:
        SpaceError: for a declared name that the space sets as a built-in knob, or a bad ``fixed``.
    """
    from tuner.errors import SpaceError
    from tuner.space import SearchSpace, load_space

    if space is None:
        space = SearchSpace({}, name=model_name(model)) if model is not None else "default"
    space = space if isinstance(space, SearchSpace) else load_space(space)
    if model is not None:
        declared = model.declared()
        clash = [n for n in declared if n in space.params and not space.params[n].model]
        if clash:
            raise SpaceError(
                [
                    Problem(
                        space.source,
                        f"parameters.{n}",
                        f"is a hyperparameter that {model.source} asks for; set it under model_parameters instead",
                        value=n,
                    )
                    for n in clash
                ]
            )
        space = space.with_model_parameters(declared)
    return space.with_fixed(fixed) if fixed else space


def default_space(dataset: Any) -> tuple[str, str]:
    """The shipped space that suits the data's view (:data:`DEFAULT_SPACES`), and a line saying which family it
    tunes, why, and how to choose another."""
    from tuner.model import natural_view

    view, why = natural_view(dataset)
    name = DEFAULT_SPACES[view]
    return name, (
        f"space {name!r}: {_WHAT[view]}, since {why}; choose another with --space NAME "
        f"(python -m tuner spaces list), e.g. {_OTHERS[view]}"
    )
