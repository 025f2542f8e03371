"""Views: the shape a model family sees the data in (flat vectors, images or sequences).

:func:`as_view` reshapes a dataset for a view: ``digits`` as 8x8x1 images, ``mnist1d`` as length-40
sequences, images as sequences of rows, anything as flat vectors. :func:`resolve_view` picks the view a
family gets for ``view: auto``; :func:`natural_view` the view the data itself suggests (which picks the family of
a study without ``--space``); :func:`with_image_shape` says that flat rows are images (``--image-shape``). Only
numpy is used: importing this module imports no Keras.
"""

from __future__ import annotations

import dataclasses
import math

from tuner.data import Dataset
from tuner.errors import DataError, Problem
from tuner.space import FAMILIES, VIEWS

__all__ = ["as_view", "natural_view", "parse_image_shape", "resolve_view", "with_image_shape"]

_SHAPES = tuple(v for v in VIEWS if v != "auto")  # the views a dataset can be reshaped to

# Example shapes of built-in datasets whose rows are flat but are really images or sequences.
KNOWN_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "digits": {"image": (8, 8, 1), "sequence": (8, 8)},  # 8x8 pixels; as a sequence, 8 rows of 8 pixels
    "mnist1d": {"sequence": (40, 1)},  # one channel over 40 steps
}


def _known_shape(dataset: Dataset, view: str) -> tuple[int, ...] | None:
    if dataset.image_shape is not None:  # the user said what the flat rows are (--image-shape)
        h, w, c = dataset.image_shape
        return {"image": (h, w, c), "sequence": (h, w * c)}.get(view)
    shape = KNOWN_SHAPES.get(dataset.name, {}).get(view)
    if shape is not None and math.prod(shape) == math.prod(dataset.input_shape):
        return shape
    return None


def _view_shape(dataset: Dataset, view: str) -> tuple[int, ...] | None:
    """The example shape of ``view`` for this dataset, or None when the data has no such shape."""
    shape = dataset.input_shape
    if view == "flat":
        return (int(math.prod(shape)),)
    if view == "image":
        if len(shape) == 3:
            return shape
        if len(shape) == 2:  # (H, W): one channel
            return (*shape, 1)
        return _known_shape(dataset, "image") if len(shape) == 1 else None
    if view == "sequence":
        if len(shape) == 2:
            return shape
        if len(shape) == 3:  # an image read row by row: H steps of W * C features
            return (shape[0], shape[1] * shape[2])
        if len(shape) == 1:
            return _known_shape(dataset, "sequence")
    return None


def resolve_view(dataset: Dataset, view: str = "auto", family: str = "mlp") -> str | None:
    """The view a model of ``family`` gets for ``view``: ``auto`` resolved, or None for the data as it is.

    ``auto`` keeps the data's own shape for ``mlp`` (None); for ``cnn`` it keeps the data's own shape when
    that is a sequence ``(T, F)`` or an image ``(H, W, C)``, and for flat rows picks a known image shape
    (digits' 8x8x1), else a known sequence shape (mnist1d's 40x1); for ``rnn`` it picks ``sequence``
    (images are read row by row).

    Raises:
        DataError: ``auto`` for cnn or rnn on data with no image or sequence shape (tabular data), naming
            ``family``; an unknown ``view`` or ``family``.
    """
    where = f"dataset {dataset.name!r}"
    if view not in VIEWS:
        raise DataError([Problem(where, "view", f"must be one of {list(VIEWS)}", value=view)])
    if family not in FAMILIES:
        raise DataError([Problem(where, "family", f"must be one of {list(FAMILIES)}", value=family)])
    if view != "auto":
        return view
    if family == "mlp":
        return None
    rank = len(dataset.input_shape)
    if family == "cnn":
        if rank in (2, 3):  # the data's own shape: a sequence (T, F) or an image (H, W, C)
            return "sequence" if rank == 2 else "image"
        wanted: tuple[str, ...] = ("image", "sequence") if rank == 1 else ()
    else:
        wanted = ("sequence",)
    for candidate in wanted:
        if _view_shape(dataset, candidate) is not None:
            return candidate
    kind = "an image or sequence" if family == "cnn" else "a sequence"
    raise DataError(
        [
            Problem(
                where,
                "family",
                f"needs {kind} view, but the examples have shape {dataset.input_shape} and no known image or sequence "
                "shape (tabular data); use family mlp, or save the data as an .npz with x of shape (N, H, W, C) "
                "or (N, T, F)",
                value=family,
            )
        ]
    )


def as_view(dataset: Dataset, view: str) -> Dataset:
    """The dataset with its examples reshaped for ``view`` (the values are not touched).

    - ``flat``: one vector per example, ``(H * W * C,)`` or ``(T * F,)``.
    - ``image``: ``(H, W, C)``; ``(H, W)`` examples get one channel; flat ``digits`` rows become 8x8x1.
    - ``sequence``: ``(T, F)``; images are read row by row, ``(H, W * C)``; flat ``mnist1d`` rows become
      40 steps of 1 feature, flat ``digits`` rows 8 steps of 8 pixels.

    Args:
        dataset: the dataset (scaled or not; scaling is per feature, so the order does not matter).
        view: ``"flat"``, ``"image"`` or ``"sequence"``.

    Returns:
        A new :class:`~tuner.data.Dataset` sharing the arrays' memory (``dataset`` itself when nothing
        changes).

    Raises:
        DataError: when the data has no such shape, naming ``view`` and the examples' shape.

    Examples:

    >>> from tuner.data import load_dataset
    >>> from tuner.model import as_view
    >>> as_view(load_dataset("digits"), "image").input_shape
    (8, 8, 1)
    """
    if view not in _SHAPES:
        raise DataError([Problem(f"dataset {dataset.name!r}", "view", f"must be one of {list(_SHAPES)}", value=view)])
    shape = _view_shape(dataset, view)
    if shape is None:
        what = {"image": "an image (H, W, C)", "sequence": "a sequence (T, F)"}[view]
        known = sorted(name for name, shapes in KNOWN_SHAPES.items() if view in shapes)
        raise DataError(
            [
                Problem(
                    f"dataset {dataset.name!r}",
                    "view",
                    f"cannot show examples of shape {dataset.input_shape} as {what}: flat rows have one only in the "
                    f"built-ins {known} or with an image_shape (--image-shape H,W,C); use view flat or auto, "
                    "or save the data as an .npz with x of shape (N, H, W, C) or (N, T, F)",
                    value=view,
                )
            ]
        )
    if shape == dataset.input_shape:
        return dataset
    return dataclasses.replace(
        dataset,
        x_train=dataset.x_train.reshape(len(dataset.x_train), *shape),
        x_val=dataset.x_val.reshape(len(dataset.x_val), *shape),
        x_test=dataset.x_test.reshape(len(dataset.x_test), *shape),
    )


def parse_image_shape(value: object, *, where: str = "--image-shape") -> tuple[int, int, int]:
    """``"8,8,1"`` (or ``"8x8x1"``, ``(8, 8, 1)``; ``H,W`` means one channel) as ``(H, W, C)``.

    Raises:
        DataError: naming ``where`` and the value, unless it is 2 or 3 positive integers.
    """
    parts: list[object]
    if isinstance(value, str):
        parts = [p.strip() for p in value.lower().replace("x", ",").split(",")]
    elif isinstance(value, (tuple, list)):
        parts = list(value)
    else:
        parts = []
    try:
        dims = tuple(int(str(p)) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) not in (2, 3) or any(d < 1 for d in dims):
        raise DataError(
            [
                Problem(
                    where,
                    "image_shape",
                    "must be H,W,C (or H,W for one channel) in positive integers, e.g. 8,8,1",
                    value=value,
                )
            ]
        )
    return (*dims, 1) if len(dims) == 2 else dims  # type: ignore[return-value]


def with_image_shape(dataset: Dataset, image_shape: object) -> Dataset:
    """The dataset with its flat rows declared images of ``image_shape`` (``H,W,C``): the image view (and so
    ``family: cnn`` and the default space) reshapes them; the values and the flat shape are not touched.

    Raises:
        DataError: a malformed shape, examples that are not flat, or a shape whose size is not the row's length.
    """
    shape = parse_image_shape(image_shape)
    where = f"dataset {dataset.name!r}"
    if len(dataset.input_shape) != 1:
        raise DataError(
            [
                Problem(
                    where,
                    "image_shape",
                    f"is for flat rows; these examples already have shape {dataset.input_shape}",
                    value=",".join(map(str, shape)),
                )
            ]
        )
    if math.prod(shape) != dataset.input_shape[0]:
        raise DataError(
            [
                Problem(
                    where,
                    "image_shape",
                    f"must hold as many values as a row has features "
                    f"({dataset.input_shape[0]}), but H*W*C = {math.prod(shape)}",
                    value=",".join(map(str, shape)),
                )
            ]
        )
    return dataclasses.replace(dataset, image_shape=shape)


def natural_view(dataset: Dataset) -> tuple[str, str]:
    """The view the data suggests, ``"image"``, ``"sequence"`` or ``"flat"``, and why, in words.

    Images ``(H, W, C)`` and flat rows with an image shape (``--image-shape``, or a built-in's own, digits'
    8x8x1) are images; ``(T, F)`` examples and flat rows with a known sequence shape (mnist1d's 40x1) are
    sequences; other flat rows are a table.
    """
    shape = dataset.input_shape
    if len(shape) == 3:
        return "image", f"examples are images of shape {shape}"
    if len(shape) == 2:
        return "sequence", f"examples are sequences of shape {shape} (steps, features)"
    if dataset.image_shape is not None:
        return "image", f"rows are images of shape {dataset.image_shape} (image_shape)"
    for view in ("image", "sequence"):
        known = _known_shape(dataset, view)
        if known is not None:
            what = "images" if view == "image" else "sequences"
            return view, f"{dataset.name} rows are {what} of shape {known}"
    return "flat", f"examples are rows of {shape[0]} features (a table)"
