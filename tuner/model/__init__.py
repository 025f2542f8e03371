"""tuner.model."""

from __future__ import annotations

from tuner.model._builders import build_model, layer_value, output_activation, resolve_loss, check_task_fit
from tuner.model._augmentation import RandomShift, augmentation_layers, IMAGE_AUGMENTATIONS, SEQUENCE_AUGMENTATIONS
from tuner.model._optimizers import build_optimizer, build_schedule, LinearWarmup

__all__ = ['IMAGE_AUGMENTATIONS', 'LinearWarmup', 'RandomShift', 'SEQUENCE_AUGMENTATIONS', 'augmentation_layers', 'build_model', 'build_optimizer', 'build_schedule', 'check_task_fit', 'layer_value', 'output_activation', 'resolve_loss']
