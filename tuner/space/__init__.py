"""tuner.space."""

from __future__ import annotations

from tuner.space._catalogue import CATEGORICAL, FAMILIES, KNOBS, SCALINGS, TASKS, VIEWS, Knob, check_value, knob_value, reference_markdown
from tuner.space._spaces import SearchSpace, Param, load_space, shipped_spaces, SPACES_DIR, parse_override

__all__ = ['CATEGORICAL', 'FAMILIES', 'KNOBS', 'SCALINGS', 'TASKS', 'VIEWS', 'Knob', 'Param', 'SPACES_DIR', 'SearchSpace', 'check_value', 'knob_value', 'load_space', 'parse_override', 'reference_markdown', 'shipped_spaces']
