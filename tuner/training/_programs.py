"""Programs compiled, counted from the backend (issue 24): what each trial paid in tracing or compilation.

A trial's fixed cost is its programs: under TensorFlow, Keras traces the train step and the predict step into
graphs (``tf.function``); under JAX, XLA compiles every new program (the train and predict steps, and each
small operation seen with a new shape), unless JAX's persistent cache holds it. The counts come from the
backend, not from tuner's bookkeeping:

- TensorFlow: the tracing count (``experimental_get_tracing_count``) of the ``tf.function`` s behind a trained
  model's ``train_function`` and ``predict_function``, added up as each training run ends;
- JAX: ``jax.monitoring`` events, one per XLA compilation (``/jax/core/compile/backend_compile_duration``)
  and one per program read back from the persistent cache (``/jax/compilation_cache/cache_hits``).

:func:`programs_so_far` is this process's running total; a trial's count is the difference across it. The walk
through Keras's closures relies on its layout, which ``tests/test_programs.py`` holds (an upgrade that moves the
steps fails it).
"""

from __future__ import annotations

import types
import weakref
from typing import Any

__all__ = ["PROGRAM_WORDS", "count_model_programs", "programs_so_far", "watch_backend"]

PROGRAM_WORDS = {
    "tensorflow": "TensorFlow graphs traced",
    "jax": "XLA programs compiled",
}
"""What a program is, per backend, in the words of a study's summary."""

_totals = {"compiled": 0, "cached": 0}
_watching: list[str] = []
_counted: dict[int, tuple[Any, int]] = {}  # id(model): (a weak reference to it, the traces counted so far)
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"


def watch_backend() -> None:
    """Start counting the backend's compilations in this process (JAX: a listener on its events), once."""
    import keras

    backend = keras.backend.backend()
    if backend in _watching:
        return
    _watching.append(backend)
    if backend != "jax":
        return
    import jax

    def on_duration(event: str, duration: float, **kwargs: Any) -> None:
        if event == _COMPILE_EVENT:
            _totals["compiled"] += 1

    def on_event(event: str, **kwargs: Any) -> None:
        if event == _CACHE_HIT_EVENT:
            _totals["cached"] += 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)


def programs_so_far() -> dict[str, int]:
    """This process's running totals: ``compiled`` (traced or compiled afresh) and ``cached`` (JAX programs
    read from the persistent cache instead of being compiled)."""
    return dict(_totals)


def count_model_programs(model: Any) -> int:
    """Add the graphs TensorFlow traced for ``model``'s train and predict steps since its last count to this
    process's total; returns how many (0 under other backends, whose compilations are counted as they happen).

    Keras keeps each step as a ``tf.function`` inside the closure of ``model.train_function`` (and
    ``predict_function``), with the one-batch step nested in the multi-batch one. A step traced inside another's
    trace is part of that graph, so a nested ``tf.function`` counts only when its outer one never traced.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return 0
    traced = 0
    for name in ("train_function", "test_function", "predict_function"):
        function = getattr(model, name, None)
        if function is not None:
            traced += sum(_traces(f) for f in _outermost(function))
    new = traced - _counted.get(id(model), (None, 0))[1]
    _counted[id(model)] = (weakref.ref(model), traced)
    for key in [k for k, (ref, _) in _counted.items() if ref() is None]:
        del _counted[key]
    _totals["compiled"] += new
    return new


def _traces(function: Any) -> int:
    """Traces of a ``tf.function``; when it never traced, those of the ``tf.function`` s it wraps."""
    count = int(function.experimental_get_tracing_count())
    if count:
        return count
    return sum(_traces(f) for f in _outermost(function.python_function))


def _outermost(function: Any) -> list[Any]:
    """The ``tf.function`` s reachable from ``function`` that no other one reachable from it calls."""
    found = _tf_functions(function, set())
    nested: set[int] = set()
    for f in found:
        nested.update(id(g) for g in _tf_functions(f.python_function, set()))
    return [f for f in found if id(f) not in nested]


def _tf_functions(function: Any, seen: set[int]) -> list[Any]:
    """The outermost ``tf.function`` s reachable from a Python function through its closure and wrappers."""
    if id(function) in seen:
        return []
    seen.add(id(function))
    if hasattr(function, "experimental_get_tracing_count"):
        return [function]
    found: list[Any] = []
    inner = getattr(function, "__wrapped__", None)
    if inner is not None:
        found += _tf_functions(inner, seen)
    for cell in getattr(function, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, types.FunctionType) or hasattr(value, "experimental_get_tracing_count"):
            found += _tf_functions(value, seen)
    return found
