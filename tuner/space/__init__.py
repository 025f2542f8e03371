"""The search space: the knob catalogue (the one home of TASKS, FAMILIES, VIEWS, SCALINGS…), YAML spaces, the
user's own model parameters and the define-by-run ``hp`` object."""

from __future__ import annotations

from tuner.space._catalogue import (
    CATEGORICAL,
    FAMILIES,
    KNOBS,
    SCALINGS,
    TASKS,
    VIEWS,
    Knob,
    check_value,
    knob_of,
    knob_value,
    layer_key,
    layer_keys,
    reference_markdown,
)
from tuner.space._hp import param_of, params_of, trial_hyperparameters
from tuner.space._param import Param
from tuner.space._spaces import SPACES_DIR, SearchSpace, load_space, shipped_spaces
from tuner.space._yaml import parse_override

__all__ = [
    "CATEGORICAL",
    "FAMILIES",
    "KNOBS",
    "Knob",
    "Param",
    "SCALINGS",
    "SPACES_DIR",
    "SearchSpace",
    "TASKS",
    "VIEWS",
    "check_value",
    "knob_of",
    "knob_value",
    "layer_key",
    "layer_keys",
    "load_space",
    "parse_override",
    "param_of",
    "params_of",
    "reference_markdown",
    "shipped_spaces",
    "trial_hyperparameters",
]
