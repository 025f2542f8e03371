"""Importing Keras (and its backend) once, quietly.

TensorFlow writes start-up chatter straight to file descriptor 2 from C++ (oneDNN notices, CUDA probes),
before Python logging can filter it, and ``TF_CPP_MIN_LOG_LEVEL`` no longer silences all of it. The CLI
imports Keras through :func:`import_keras_quietly`, which captures that output and shows it only when
the import fails or more verbosity was asked for; the Python API through :func:`import_keras_for_api`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

from tuner._store import keras_home

__all__ = [
    "BACKENDS",
    "MEASURED",
    "choose_backend",
    "pick_backend",
    "import_keras_quietly",
    "import_keras_for_api",
    "wants_backend_logs",
]

BACKENDS = ("auto", "tensorflow", "jax", "torch")
"""``--backend`` choices. ``auto`` (:func:`pick_backend`): the backend the user set for Keras (``KERAS_BACKEND``,
else its ``keras.json``), else the one :data:`MEASURED` names for the device, with what was measured."""

MEASURED: dict[str, tuple[str, str]] = {
    "cpu": (
        "tensorflow",
        "the backend tuner is tested under by default; JAX, which shares compiled programs across trials too, ran "
        "the default study's 12 configurations on 2 cores in 0.95-0.97x TensorFlow's time with a fresh compilation "
        "cache, each trial in 0.63-0.69x (--backend jax; benchmarks/RESULTS.md)",
    ),
    "gpu": (
        "tensorflow",
        "the backend tuner is tested under by default; no GPU measurement of JAX since it shares programs "
        "(benchmarks/RESULTS.md)",
    ),
}
"""What ``--backend auto`` runs on each device when the user set no backend, and why (``benchmarks/trial_cost.py``;
issues 17 and 24). Trials share compiled programs on both backends (``tuner.training._reuse``). On CPU a JAX trial of
the default space takes about two thirds of a TensorFlow one, but JAX's first trials compile, so a fresh study of 12
takes 0.95-0.97x as long. Auto runs TensorFlow, the backend the test suite runs every command under (JAX is a test
dependency, so picking it where installed would move the suite to JAX), and the reason says what JAX measured."""


def pick_backend(*, gpu: bool = False) -> tuple[str, str]:
    """The backend ``--backend auto`` runs, and why (the study's first lines show it).

    Keras's own choice when the user made one (``KERAS_BACKEND``, else a ``keras.json`` naming another backend than
    the ``tensorflow`` Keras writes there by default; the one it runs once it is imported), else
    :data:`MEASURED` for the device (``gpu``: a GPU is visible), falling back to a backend that is installed.

    Returns:
        ``(backend, reason)``, e.g. ``("tensorflow", "auto: the backend tuner is tested under by default; ...")``.
    """
    import importlib.util

    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend(), "auto: the backend Keras already runs in this process"
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"], "auto: $KERAS_BACKEND"
    configured = _config_file_backend()
    if configured and configured != "tensorflow":  # Keras writes "tensorflow" there itself on its first import
        return configured, f"auto: {keras_home() / 'keras.json'}"
    chosen, why = MEASURED["gpu" if gpu else "cpu"]
    if importlib.util.find_spec(_PACKAGES[chosen][0]) is None:
        installed = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(_PACKAGES[b][0])]
        if installed:
            return installed[0], f"auto: {_PACKAGES[chosen][1]} is not installed"
    return chosen, f"auto: {why}"


def choose_backend(name: str = "auto") -> str:
    """Set ``KERAS_BACKEND`` for this process and the workers it starts, before Keras is imported.

    Returns:
        The backend that will run.

    Raises:
        ConfigError: once Keras is imported, for another backend than the one it runs (naming both); for a
            backend whose package is not installed (with what to install).
    """
    import importlib.util

    from tuner.errors import ConfigError, Problem

    keras = sys.modules.get("keras")
    if name != "auto":
        chosen = name
    elif keras is not None:
        chosen = keras.backend.backend()
    else:  # the user's choice (KERAS_BACKEND, else Keras's config file), else MEASURED's for the device
        chosen = pick_backend()[0]
    if keras is not None and keras.backend.backend() != chosen:
        raise ConfigError(
            [
                Problem(
                    "--backend",
                    "backend",
                    f"must be chosen before Keras is imported; this process "
                    f"runs {keras.backend.backend()!r}, so it cannot apply",
                    value=name,
                )
            ]
        )
    package = _PACKAGES.get(chosen)
    if keras is None and package is not None and importlib.util.find_spec(package[0]) is None:
        raise ConfigError(
            [
                Problem(
                    "--backend",
                    "backend",
                    f"the {chosen} backend needs {package[1]}, which is not installed: pip install {package[0]}",
                    value=chosen,
                )
            ]
        )
    os.environ["KERAS_BACKEND"] = chosen
    return chosen


_PACKAGES = {"tensorflow": ("tensorflow", "TensorFlow"), "jax": ("jax", "JAX"), "torch": ("torch", "PyTorch")}


def wants_backend_logs() -> bool:
    """Whether the user asked for TensorFlow's start-up logs: ``TF_CPP_MIN_LOG_LEVEL`` set below 3 (3 is
    TensorFlow's quiet, which the CLI sets), or the ``tuner`` logger at DEBUG (``-v``, or
    ``logging.getLogger("tuner").setLevel(logging.DEBUG)``)."""
    import logging

    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    return (level is not None and level.strip() != "3") or logging.getLogger("tuner").isEnabledFor(logging.DEBUG)


def _config_file_backend() -> str | None:
    try:
        with open(keras_home() / "keras.json") as f:
            return json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return None


def import_keras_for_api() -> Any:
    """Import Keras for the Python API (a notebook's ``tuner.run_study``) as quietly as the CLI does,
    unless the user asked for TensorFlow's logs (:func:`wants_backend_logs`); a no-op once Keras is imported."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    if wants_backend_logs():
        import keras

        return keras
    return import_keras_quietly()


def import_keras_quietly(*, show: bool = False) -> Any:
    """Import keras (and TensorFlow, which Keras imports under every backend where it is installed) and touch its
    default device with descriptor 2 captured; replay it on failure or ``show``."""
    import importlib.util

    if "keras" in sys.modules and not show:
        return sys.modules["keras"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        failed = False
        try:
            import keras

            keras.ops.convert_to_numpy(keras.ops.zeros((1,)))
            if keras.backend.backend() != "tensorflow" and importlib.util.find_spec("tensorflow") is not None:
                # Keras imports TensorFlow under any backend where it is installed (keras.utils.set_random_seed
                # seeds it too), and its C++ start-up lines would otherwise reach stderr at the first trial
                import tensorflow  # noqa: F401
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed or show:
                capture.seek(0)
                sys.stderr.write(capture.read().decode(errors="replace"))
    return keras
