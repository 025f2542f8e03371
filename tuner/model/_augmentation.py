"""Data augmentation as a regularizer: Keras layers that are random in training and the identity otherwise.

:func:`augmentation_layers` turns the ``augment_*`` knobs into layers placed right after the model's
input. Images (an input of shape ``(H, W, C)``) use Keras's own preprocessing layers (``RandomFlip``,
``RandomRotation``, ``RandomZoom``, ``RandomTranslation``, ``RandomContrast``); sequences (``(T, F)``)
use :class:`RandomShift`, written with ``keras.ops`` so that it runs under every backend; Gaussian
noise (any input) is Keras's ``GaussianNoise``. Every one of them returns its input unchanged when
``training`` is not true, so inference, ``model.predict`` and the honest gap
(:class:`tuner.HonestGap`) see the data as it is: augmentation changes what the model is fitted on,
never what it is measured on.

Examples:

>>> import keras
>>> from tuner.model import augmentation_layers
>>> [layer.name for layer in augmentation_layers({"augment_rotation": 0.05, "augment_noise": 0.1}, (8, 8, 1))]
['augment_rotation', 'augment_noise']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import ops

from tuner.errors import ConfigError, Problem
from tuner.space import knob_value

__all__ = [
    "RandomShift",
    "augmentation_layers",
    "check_augmentation_fit",
    "IMAGE_AUGMENTATIONS",
    "SEQUENCE_AUGMENTATIONS",
]

IMAGE_AUGMENTATIONS = ("augment_flip", "augment_rotation", "augment_zoom", "augment_translation", "augment_contrast")
SEQUENCE_AUGMENTATIONS = ("augment_shift",)

# Features are scaled (standardized, min-max, or raw): RandomContrast must not clip them to pixel values.
_NO_CLIP = (-1.0e9, 1.0e9)


@keras.saving.register_keras_serializable(package="tuner")
class RandomShift(keras.layers.Layer):
    """Shift each sequence of a batch along time by a random whole number of steps, in training only.

    Each example gets its own shift, uniform in ``[-m, m]`` steps with ``m = round(factor * T)``; the
    steps shifted in are zeros (the mean of standardized features). Outside training the layer is the
    identity.

    Args:
        factor: the largest shift as a fraction of the sequence length ``T``, in ``[0, 0.5]``.
        seed: seed of the layer's random generator. Defaults to `None`.

    Input shape:
        ``(batch, T, F)``.

    Examples:

    >>> import numpy as np
    >>> layer = RandomShift(0.25, seed=1)
    >>> x = np.arange(8, dtype="float32").reshape(1, 8, 1)
    >>> bool((keras.ops.convert_to_numpy(layer(x)) == x).all())  # not training: unchanged
    True
    """

    def __init__(self, factor: float, *, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or not 0.0 <= factor <= 0.5:
            raise ValueError(
                f"Received an invalid value for `factor`, expected a number in [0, 0.5]. Received: factor={factor!r}"
            )
        self.factor = float(factor)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self._max_shift = 0

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 3 or input_shape[1] is None:
            raise ValueError(
                f"RandomShift expects inputs of shape (batch, T, F) with a known T. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self._max_shift = round(self.factor * int(input_shape[1]))
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or self._max_shift == 0:
            return inputs
        shape = ops.shape(inputs)
        steps = shape[1]
        shifts = keras.random.randint((shape[0],), -self._max_shift, self._max_shift + 1, seed=self.seed_generator)
        source = ops.expand_dims(ops.arange(steps, dtype="int32"), 0) - ops.expand_dims(ops.cast(shifts, "int32"), 1)
        valid = ops.logical_and(source >= 0, source < steps)
        index = ops.broadcast_to(ops.expand_dims(ops.clip(source, 0, steps - 1), -1), shape)
        moved = ops.take_along_axis(inputs, index, axis=1)
        return ops.where(ops.expand_dims(valid, -1), moved, ops.zeros_like(moved))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


def augmentation_layers(
    params: Mapping[str, Any], input_shape: tuple[int, ...], *, source: str = "parameters"
) -> list[Any]:
    """The augmentation layers the ``augment_*`` knobs ask for, in the order they apply.

    Images: flip, rotation, zoom, translation, contrast; sequences: shift; then Gaussian noise (any
    input). Layers are named after their knob (``augment_rotation``, ...); a knob at 0 (``none`` for
    the flip) adds no layer.

    Args:
        params: resolved parameters; missing knobs take their defaults (augmentation off).
        input_shape: the shape of one example: ``(H, W, C)`` is an image, ``(T, F)`` a sequence.
        source: how error messages name the parameters. Defaults to `"parameters"`.

    Returns:
        A list of Keras layers (empty when augmentation is off).

    Raises:
        ConfigError: an image augmentation on an input that is not an image, or a shift on an input
            that is not a sequence, naming the knob, its value and the input shape.
    """
    check_augmentation_fit(params, input_shape, source=source)
    rank = len(input_shape)
    layers: list[Any] = _image_augmentations(params) if rank == 3 else []
    shift = knob_value(params, "augment_shift")
    if rank == 2 and shift > 0:
        layers.append(RandomShift(float(shift), name="augment_shift"))
    noise = float(knob_value(params, "augment_noise"))
    if noise > 0:
        layers.append(keras.layers.GaussianNoise(noise, name="augment_noise"))
    return layers


def check_augmentation_fit(
    params: Mapping[str, Any], input_shape: tuple[int, ...], *, source: str = "parameters"
) -> None:
    """Image augmentations only on images, the shift only on sequences.

    Raises:
        ConfigError: naming each augmentation knob that does not fit, its value and the input shape.
    """
    rank = len(input_shape)
    problems = []
    for name in IMAGE_AUGMENTATIONS:
        value = knob_value(params, name)
        if value not in (0, 0.0, "none") and rank != 3:
            problems.append(
                Problem(
                    source,
                    name,
                    f"needs an image input (H, W, C) but the model's input has shape "
                    f"{tuple(input_shape)}; set view: image (family cnn picks it for image data) or "
                    f"turn it off",
                    value=value,
                )
            )
    shift = knob_value(params, "augment_shift")
    if shift > 0 and rank != 2:
        problems.append(
            Problem(
                source,
                "augment_shift",
                f"needs a sequence input (T, F) but the model's input has "
                f"shape {tuple(input_shape)}; set view: sequence or turn it off",
                value=shift,
            )
        )
    if problems:
        raise ConfigError(problems)


def _image_augmentations(params: Mapping[str, Any]) -> list[Any]:
    """Flip, rotation, zoom, translation and contrast, each where its knob is on."""
    layers: list[Any] = []
    flip = knob_value(params, "augment_flip")
    if flip != "none":
        layers.append(keras.layers.RandomFlip(flip, name="augment_flip"))
    rotation = float(knob_value(params, "augment_rotation"))
    if rotation > 0:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="nearest", name="augment_rotation"))
    zoom = float(knob_value(params, "augment_zoom"))
    if zoom > 0:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="nearest", name="augment_zoom"))
    translation = float(knob_value(params, "augment_translation"))
    if translation > 0:
        layers.append(
            keras.layers.RandomTranslation(translation, translation, fill_mode="nearest", name="augment_translation")
        )
    contrast = float(knob_value(params, "augment_contrast"))
    if contrast > 0:
        layers.append(keras.layers.RandomContrast((contrast, contrast), value_range=_NO_CLIP, name="augment_contrast"))
    return layers
