"""Sizes of the examples: as written, or tiny when ``TUNER_EXAMPLE_SMOKE=1`` (the tests run them so)."""

from __future__ import annotations

import os

SMOKE = os.environ.get("TUNER_EXAMPLE_SMOKE") == "1"


def size(real: int, smoke: int) -> int:
    """``real`` normally, ``smoke`` when the examples run as a test."""
    return smoke if SMOKE else real
