"""Importing Keras (and its backend) once, quietly.

TensorFlow writes start-up chatter straight to file descriptor 2 from C++ (oneDNN notices, CUDA probes),
before Python logging can filter it, and ``TF_CPP_MIN_LOG_LEVEL`` no longer silences all of it. The CLI
imports Keras through :func:`import_keras_quietly`, which captures that output and shows it only when
the import fails or more verbosity was asked for.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

__all__ = ["import_keras_quietly"]


def import_keras_quietly(*, show: bool = False) -> Any:
    """Import keras and touch its default device with descriptor 2 captured; replay it on failure or ``show``."""
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
