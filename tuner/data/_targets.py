"""Targets: the task inferred or checked against the target, and the target encoded for it.

Classification targets become class indices ``0..K-1`` of the sorted labels; regression targets
``float32`` values. A target of one row per example (``(n, K)``, as a model compiled by the user takes it)
is one of :data:`TARGET_FORMATS`: one-hot rows (multiclass, kept as the class index of each row),
multi-label 0/1 rows (binary, K outputs) or regression vectors. Every rule the target breaks is a
:class:`DataError` naming the file and field.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tuner.data._dataset import data_error
from tuner.errors import DataError, Problem

TARGET_FORMATS = ("index", "onehot", "multilabel", "vector")
"""How a dataset's targets were given: one value per example (a label or a number), one-hot rows, multi-label
0/1 rows, or a vector of numbers per example."""

# A numeric target with more distinct values than this is taken as a regression target (task="auto").
MAX_AUTO_CLASSES = 20


def label_str(value: Any) -> str:
    """A class label as text: ``3``, not ``np.int64(3)``."""
    return str(value.item() if isinstance(value, np.generic) else value)


def missing_target(where: str, field: str, missing: np.ndarray) -> Problem:
    first = int(np.flatnonzero(missing)[0])
    return Problem(
        where,
        field,
        f"target values must not be missing: {int(missing.sum())} NaN values (first in row {first})",
        value=float("nan"),
    )


def encode_target(y: np.ndarray, *, task: str, where: str, field: str) -> tuple[str, np.ndarray, np.ndarray | None]:
    """Infer or check the task and encode the target: ``(task, encoded y, sorted class labels or None)``."""
    y = np.asarray(y)
    _check_target_values(y, where, field)
    numeric = y  # regression targets are taken from here, before any relabelling
    kind, y = _target_kind(y)
    classes = np.unique(y)
    if task == "auto":
        task = _infer_task(kind, len(classes))
    _check_task_fits_target(task, kind, y, classes, where, field)
    if task == "regression":
        return task, numeric.astype(np.float32), None
    encoded = np.searchsorted(classes, y).astype(np.int64)
    return task, encoded, classes


def row_format(y: np.ndarray) -> str:
    """The format of a 2-D target ``(n, K)``: ``onehot`` (0/1 rows with exactly one 1), ``multilabel`` (other
    0/1 rows) or ``vector`` (numbers)."""
    if y.dtype.kind in "biuf" and np.isin(y, (0, 1)).all():
        return "onehot" if bool((y.sum(axis=1) == 1).all()) else "multilabel"
    return "vector"


def encode_rows(y: np.ndarray, *, task: str, where: str, field: str) -> tuple[str, np.ndarray, np.ndarray | None, str]:
    """Infer or check the task of a 2-D target: ``(task, encoded y, class labels or None, format)``.

    One-hot rows are multiclass and become the class index of each row (labels ``0..K-1``, the columns);
    multi-label 0/1 rows are binary (``K`` outputs, kept as ``float32`` rows); other numbers are regression
    vectors (kept as ``float32`` rows).

    Raises:
        DataError: for non-numeric rows, or a task the rows do not fit.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise data_error(
            where,
            field,
            "a target of one row per example must hold numbers (one-hot rows, "
            "multi-label 0/1 rows or regression vectors)",
            value=str(y.dtype),
        )
    _check_target_values(y, where, field)
    fmt = row_format(y)
    if task == "regression" and fmt != "vector":
        fmt = "vector"
    expected = {"onehot": "multiclass", "multilabel": "binary", "vector": "regression"}[fmt]
    if task not in ("auto", expected):
        raise data_error(
            where,
            field,
            f"task={task!r} does not fit {fmt} target rows of shape {y.shape} (they make a {expected} task)",
            value=task,
        )
    if fmt == "onehot":
        if y.shape[1] < 2:
            raise data_error(where, field, "one-hot rows need at least 2 columns", value=y.shape)
        return expected, np.argmax(y, axis=1).astype(np.int64), np.arange(y.shape[1]), fmt
    return expected, y.astype(np.float32), None, fmt


def _check_target_values(y: np.ndarray, where: str, field: str) -> None:
    """No missing, complex or infinite target values."""
    import pandas as pd

    if y.dtype.kind in "fc" or y.dtype == object:
        missing = pd.isna(y) if y.dtype == object else np.isnan(y)
        if missing.any():
            raise DataError([missing_target(where, field, missing)])
    if y.dtype.kind == "c":
        raise data_error(where, field, "target values must be real numbers or labels", value=y.dtype)
    if y.dtype.kind == "f" and np.isinf(y).any():
        raise data_error(
            where,
            field,
            f"target values must be finite: {int(np.isinf(y).sum())} inf values",
            value=float(y[np.isinf(y)][0]),
        )


def _target_kind(y: np.ndarray) -> tuple[str, np.ndarray]:
    """``float``, ``integer`` or ``label``, and the target as classes would be read from it."""
    if y.dtype.kind in "iuf":
        kind = "float" if y.dtype.kind == "f" and not np.all(np.equal(np.mod(y, 1), 0)) else "integer"
        if kind == "integer" and y.dtype.kind == "f" and np.abs(y).max() < 2**53:
            y = y.astype(np.int64)  # so that class names read "3", not "3.0"
        return kind, y
    if y.dtype.kind == "b":
        return "label", y
    return "label", y.astype(str)  # strings, bytes or objects: labels


def _infer_task(kind: str, n_distinct: int) -> str:
    if kind == "float" or (kind == "integer" and n_distinct > MAX_AUTO_CLASSES):
        return "regression"
    return "binary" if n_distinct == 2 else "multiclass"


def _check_task_fits_target(task: str, kind: str, y: np.ndarray, classes: np.ndarray, where: str, field: str) -> None:
    n_distinct = len(classes)
    if n_distinct < 2:
        what = "one class only" if task != "regression" else "a constant target"
        raise data_error(
            where,
            field,
            f"needs at least 2 distinct target values, found {what}",
            value=label_str(classes[0]) if n_distinct else None,
        )
    if task == "regression":
        if kind == "label":
            held = "booleans" if y.dtype.kind == "b" else "strings"
            raise data_error(
                where,
                field,
                f"task='regression' needs a numeric target, but the target holds {held}",
                value=label_str(classes[0]),
            )
        return
    if kind == "float":
        raise data_error(
            where,
            field,
            f"task={task!r} needs class labels, but the target has non-integer values",
            value=float(y[np.mod(y, 1) != 0][0]),
        )
    if task == "binary" and n_distinct != 2:
        shown = [label_str(c) for c in classes[:10]] + (["..."] if n_distinct > 10 else [])
        raise data_error(
            where,
            field,
            f"task='binary' needs exactly 2 classes, but the target has {n_distinct} distinct values: {shown}",
            value=n_distinct,
        )


def check_test_classes(y: np.ndarray, y_test: np.ndarray, class_names: list[str], where: str) -> None:
    """Every label of a given test split occurs in the training data."""
    unseen = sorted(set(np.unique(y_test).tolist()) - set(np.unique(y).tolist()))
    if unseen:
        raise data_error(
            where,
            "y_test",
            "has labels that never occur in y (the training data)",
            value=[class_names[i] for i in unseen],
        )
