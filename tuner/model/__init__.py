"""The model stage: builders per family, views of the data, augmentation, losses, optimizers and schedules."""

from __future__ import annotations

from tuner.model._adapters import UserModel
from tuner.model._augmentation import IMAGE_AUGMENTATIONS, SEQUENCE_AUGMENTATIONS, RandomShift, augmentation_layers
from tuner.model._builders import build_model, build_state_model, check_model_fit, layer_value, state_values
from tuner.model._export import ExportedModel
from tuner.model._optimizers import (
    LinearWarmup,
    OptimizerSlot,
    ScaledSchedule,
    build_optimizer,
    build_schedule,
    current_learning_rate,
)
from tuner.model._state import (
    STATE_KNOBS,
    cosine_is_state,
    learning_rate_is_state,
    program_signature,
)
from tuner.model._task import ONE_HOT_LOSSES, canonical_loss, check_task_fit, output_activation, resolve_loss
from tuner.model._views import as_view, natural_view, parse_image_shape, resolve_view, with_image_shape

__all__ = [
    "ExportedModel",
    "IMAGE_AUGMENTATIONS",
    "LinearWarmup",
    "OptimizerSlot",
    "ONE_HOT_LOSSES",
    "canonical_loss",
    "RandomShift",
    "SEQUENCE_AUGMENTATIONS",
    "ScaledSchedule",
    "STATE_KNOBS",
    "UserModel",
    "as_view",
    "augmentation_layers",
    "build_model",
    "build_optimizer",
    "build_state_model",
    "build_schedule",
    "check_model_fit",
    "check_task_fit",
    "current_learning_rate",
    "layer_value",
    "cosine_is_state",
    "learning_rate_is_state",
    "natural_view",
    "output_activation",
    "parse_image_shape",
    "program_signature",
    "resolve_loss",
    "resolve_view",
    "state_values",
    "with_image_shape",
]
