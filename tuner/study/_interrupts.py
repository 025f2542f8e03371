"""Interrupts: Ctrl-C and stop requests, the SIGINT handler a study swaps in while it runs in a script or
notebook, the blocks that hold a Ctrl-C back, and the Keras callback that stops a trial between batches.

The CLI's SIGINT handler (``tuner/cli/_main.py``) calls :func:`interrupt`; the Python API routes Ctrl-C the
same way while a study's tracking is open (:func:`interrupts_deferrable`, which puts Python's handler back).
Keras is imported inside :func:`stop_callback`, so that importing tuner stays light.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = [
    "check_stop",
    "clear_stop",
    "deferring_interrupts",
    "interrupt",
    "interrupts_deferrable",
    "request_stop",
    "stop_callback",
    "stop_requested",
]

_STOP = threading.Event()
_DEFERRING = [0]  # depth of open deferring_interrupts() blocks (signal handlers run in the main thread)


def request_stop() -> None:
    """Ask running studies to stop: the running trial is failed as ``interrupted`` at its next epoch end.

    The CLI calls this from its SIGINT handler, so an interrupt swallowed somewhere inside a library
    still stops the study.
    """
    _STOP.set()


def clear_stop() -> None:
    """Forget an earlier :func:`request_stop`: a new run starts (:func:`tuner.study._loop.optimize`)."""
    _STOP.clear()


def stop_requested() -> bool:
    """Whether :func:`request_stop` was called in this process."""
    return _STOP.is_set()


def check_stop() -> None:
    """Raise ``KeyboardInterrupt`` once :func:`request_stop` was called."""
    if _STOP.is_set():
        raise KeyboardInterrupt


def interrupt() -> None:
    """What Ctrl-C does (the CLI's SIGINT handler calls it): request a stop and raise ``KeyboardInterrupt`` now,
    or, inside :func:`deferring_interrupts`, once that block has ended."""
    request_stop()
    if not _DEFERRING[0]:
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferring_interrupts(*, raise_after: bool = True) -> Iterator[None]:
    """Hold a Ctrl-C back until the block ends: a tracking run opened or closed halfway would stay RUNNING.

    Args:
        raise_after: raise the held ``KeyboardInterrupt`` when the block ends. `False` in cleanup code,
            where the stop is left to the next :func:`check_stop`. Defaults to `True`.
    """
    _DEFERRING[0] += 1
    try:
        yield
    finally:
        _DEFERRING[0] -= 1
    if raise_after and not _DEFERRING[0]:
        check_stop()


@contextlib.contextmanager
def interrupts_deferrable() -> Iterator[None]:
    """While a study runs in a script or notebook (Python's own SIGINT handler), route Ctrl-C through
    :func:`interrupt`, as the CLI does, so that :func:`deferring_interrupts` holds it back there too."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop_requested():  # a second Ctrl-C is not held back
            raise KeyboardInterrupt
        interrupt()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def stop_callback() -> Any:
    """A Keras callback that raises ``KeyboardInterrupt`` before a batch (or a ``steps_per_execution`` group) and
    after an epoch once a stop was requested. It checks at batch *begin*: a callback with ``on_train_batch_end``
    would make Keras wait for every batch's results, which stops JAX from dispatching the next batch asynchronously."""
    import keras

    return keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: check_stop(), on_epoch_end=lambda epoch, logs: check_stop()
    )
