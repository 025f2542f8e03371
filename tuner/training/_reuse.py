"""One compiled model per program in a worker process, so that trials of one shape share their traced steps.

Keras traces (TensorFlow) or compiles (JAX) a model's train and predict steps once per model object, and each
trial used to build a new one. Here a trial of the built-in families trains a *state model*
(:func:`tuner.model.build_state_model`: dropout rates, L1/L2 factors and batch-norm momentum and epsilon in
variables), kept per :func:`tuner.model.program_signature` and reset for each trial. Where the study says which
knobs it samples (``varying``), a dropout rate of 0, a penalty or none, and a constant rate or a cosine decay are
state too, and so is batch normalization off or after (one layer, gated), so a study whose architecture is fixed
shares one train step per process on either backend. For each trial:

1. the trial's model is built the standard way, under its seed (:func:`tuner.model.build_model`): its initial
   weights and random-seed states are copied into the shared model, layer by layer;
2. the hyperparameter variables and the optimizer's learning rate take the trial's values, the optimizer's
   state (step count, moments) is put back to how it was built, and the metrics are reset;
3. after training, the trained weights are copied back into the standard model, which is what the trial keeps
   and a study exports: Keras's own layers, every value a plain number.

So results per configuration are those of a model built afresh (same seeds; a rate read from a float32
variable instead of a constant can move a result by a rounding step). ``TUNER_PROGRAM_CACHE`` sets how many
shared models a process keeps (default 4, least recently used dropped first); 0 builds every trial afresh.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

import keras
import numpy as np

from tuner.model import (
    OptimizerSlot,
    build_state_model,
    cosine_is_state,
    learning_rate_is_state,
    program_signature,
    state_values,
)
from tuner.space import knob_value

__all__ = [
    "SharedModel",
    "adopt",
    "clear_after_trial",
    "copy_back",
    "copy_optimizer",
    "runtime_caches_kept",
    "shared_model",
]


@dataclasses.dataclass
class SharedModel:
    """A compiled state model, its hyperparameter variables, its optimizer's variables as built, and those of them
    its schedule reads (by :func:`tuner.model.state_values` name)."""

    model: Any
    state: Any
    optimizer_start: list[np.ndarray]
    schedule: dict[str, Any]
    trials: int = 0  # the trials that adopted it so far


_shared: collections.OrderedDict[Any, SharedModel] = collections.OrderedDict()
_last_trial = {"shared": False}  # whether this process's last trial trained a shared model (clear_after_trial)


@contextlib.contextmanager
def runtime_caches_kept(keep: bool = True) -> Iterator[None]:
    """Under TensorFlow, with ``keep``, the eager runtime's caches survive the block.

    ``keras.utils.set_random_seed`` and ``keras.backend.clear_session`` both clear them (``TFE_ContextClearCaches``;
    seeding does it to restart stateful random kernels, which tuner's models do not use: Keras draws its random
    numbers with stateless operations). A shared model's traced step must then be instantiated again at its next
    call: about 0.2-0.4 s of a trial's first epoch (``benchmarks/first_epoch.py``). The name is borrowed
    (``tests/test_borrowed_names.py``); without it the caches are cleared as before."""
    runtime = _tensorflow_runtime() if keep else None
    if runtime is None:
        yield
        return
    clear = runtime.TFE_ContextClearCaches
    runtime.TFE_ContextClearCaches = lambda handle: None
    try:
        yield
    finally:
        runtime.TFE_ContextClearCaches = clear


def _tensorflow_runtime() -> Any:
    """TensorFlow's eager runtime bindings where the backend is TensorFlow and they still hold the cache clear."""
    if keras.backend.backend() != "tensorflow":
        return None
    try:
        from tensorflow.python import pywrap_tfe
    except ImportError:
        return None
    return pywrap_tfe if hasattr(pywrap_tfe, "TFE_ContextClearCaches") else None


def note_trial(shared: bool) -> None:
    """Record whether the trial now training runs a shared model that an earlier trial built
    (:func:`clear_after_trial` reads it)."""
    _last_trial["shared"] = shared


def clear_after_trial() -> None:
    """``keras.backend.clear_session()`` after a trial (Keras's global state, and a garbage collection). Where the
    trial trained a shared model that an earlier trial built, TensorFlow's runtime caches stay, with the shared
    steps' instantiated functions. After any other trial (the first of a program, whose new shared model may have
    pushed an older one out; a user's model; a model built afresh) they are cleared, so that what a model left
    there goes with it: the caches hold no more than the programs trained since the last new one."""
    with runtime_caches_kept(_last_trial["shared"]):
        keras.backend.clear_session()
    _last_trial["shared"] = False


def cache_size() -> int:
    """How many shared models a process keeps: ``$TUNER_PROGRAM_CACHE``, default 4; 0 turns sharing off."""
    try:
        return max(0, int(os.environ.get("TUNER_PROGRAM_CACHE", "4")))
    except ValueError:
        return 4


def shared_model(
    params: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    task: str,
    n_outputs: int,
    n_train: int,
    build: Callable[[Callable[..., Any]], Any],
    compile_model: Callable[[Any, Any, Any], None],
    varying: Collection[str] = (),
) -> SharedModel | None:
    """The shared model for ``params``'s program, built and compiled the first time (before the trial's own model,
    so that the trial's seeds draw what they would without it); None where the trial cannot share one (its family,
    the backend, sharing turned off). :func:`adopt` then gives it the trial's initial state and hyperparameters.

    Args:
        params: the trial's resolved parameters.
        input_shape, task, n_outputs: what the model is built for.
        n_train: the training rows (a learning-rate schedule counts the steps they make).
        build: builds a model with a builder of :func:`tuner.model.build_model`'s shape, under the trial's seed
            and dtype policy.
        compile_model: compiles a model as the trial's knobs ask (and builds its optimizer and metrics), a schedule's
            learning rate the :class:`tuner.model.OptimizerSlot` it is given (None: the optimizer's own), a cosine
            decay's final fraction the second one (None: the knob's value).
        varying: the knobs the study samples (:func:`tuner.model.program_signature`).
    """
    size = cache_size()
    if size == 0 or keras.backend.backend() not in ("tensorflow", "jax"):
        return None
    signature = program_signature(params, input_shape, task=task, n_outputs=n_outputs, n_train=n_train, varying=varying)
    if signature is None:
        return None
    entry = _shared.get(signature)
    if entry is None:  # the first trial of a program: a shared model, kept for the trials after
        states: list[Any] = []

        def builder(p: Mapping[str, Any], shape: tuple[int, ...], *, task: str, n_outputs: int) -> Any:
            model, state = build_state_model(p, shape, task=task, n_outputs=n_outputs, varying=varying)
            states.append(state)
            return model

        model = build(builder)
        values = state_values(params)
        slots = {}
        if not learning_rate_is_state(params, varying):  # a schedule: its rate (and a cosine's end) are variables
            slots["learning_rate"] = OptimizerSlot("tuner_learning_rate", values["learning_rate"])
            if cosine_is_state(params, varying):
                slots["lr_alpha"] = OptimizerSlot("tuner_lr_alpha", values["lr_alpha"])
        compile_model(model, slots.get("learning_rate"), slots.get("lr_alpha"))
        model.optimizer.build(model.trainable_variables)
        schedule = {name: slot.bind(model.optimizer) for name, slot in slots.items()}
        entry = SharedModel(model, states[0], [np.array(v.numpy()) for v in model.optimizer.variables], schedule)
        _shared[signature] = entry
        while len(_shared) > size:
            _shared.popitem(last=False)
    else:
        _shared.move_to_end(signature)
    return entry


def adopt(entry: SharedModel, template: Any, params: Mapping[str, Any], varying: Collection[str] = ()) -> Any:
    """The shared model, holding ``template``'s initial weights and random-seed states (the trial's model as
    :func:`tuner.model.build_model` built it under the trial's seed) and the trial's hyperparameters, with its
    optimizer and metrics as new."""
    entry.trials += 1
    _copy_layers(template, entry.model)
    entry.state.assign(state_values(params))
    optimizer = entry.model.optimizer
    for variable, start in zip(optimizer.variables, entry.optimizer_start, strict=True):
        variable.assign(start)
    values = state_values(params)
    for name, variable in entry.schedule.items():
        variable.assign(values[name])
    if learning_rate_is_state(params, varying):
        optimizer.learning_rate = float(knob_value(params, "learning_rate"))
    entry.model.reset_metrics()
    return entry.model


def copy_back(entry: SharedModel, template: Any) -> Any:
    """``template`` with the shared model's trained weights (and batch-norm statistics) copied in."""
    _copy_layers(entry.model, template)
    return template


def copy_optimizer(entry: SharedModel, model: Any) -> None:
    """Build ``model``'s optimizer (compiled after :func:`copy_back`) and give it the shared optimizer's state, its
    step count and each weight's moments, matched by name: the kept model saves the optimizer it trained with, and
    loads without Keras's warning about an optimizer of other variables."""
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    source = {variable.name: variable for variable in entry.model.optimizer.variables}
    for variable in optimizer.variables:
        value = source.get(variable.name)
        if value is not None and tuple(value.shape) == tuple(variable.shape):
            variable.assign(value)


def _copy_layers(source: Any, target: Any) -> None:
    """Each variable of ``source``'s layers into the same-named layer of ``target``, where both have it."""
    for layer in source.layers:
        try:
            other = target.get_layer(layer.name)
        except ValueError:  # a layer only the state model has (its hyperparameters)
            continue
        mine, theirs = layer.variables, other.variables
        if len(mine) != len(theirs):
            raise RuntimeError(f"layer {layer.name!r}: {len(mine)} variables here, {len(theirs)} in the shared model")
        for value, variable in zip(mine, theirs, strict=True):
            variable.assign(value)
