"""Data already in memory: ``(x, y)`` arrays, with an optional validation and test split, or a pandas DataFrame.

The arrays get the checks a file gets (rows that differ in number, NaN or inf values, non-numeric
features, a single class, too few rows of a class to split), each as one line naming the argument, the
rule and the value; the task is inferred as for files, and what is not given is split off as for files.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from tuner.data._dataset import Dataset, data_error, split
from tuner.data._load import _check_options
from tuner.data._preprocessing import Preprocessing, encoded_names, table_columns
from tuner.data._targets import check_test_classes, encode_rows, encode_target, label_str
from tuner.errors import DataError, Problem, did_you_mean
from tuner.space import CATEGORICAL

__all__ = ["from_arrays", "from_frame", "in_memory_dataset"]

_WHERE = "arrays"


def _array(value: Any, field: str) -> np.ndarray:
    try:
        a = np.asarray(value)
    except Exception as err:  # ragged nested lists and the like
        raise data_error(
            _WHERE, field, f"must be an array ({type(err).__name__}: {err})", value=type(value).__name__
        ) from None
    if a.dtype == object:
        raise data_error(
            _WHERE,
            field,
            "must be a rectangular array of numbers (got Python objects: ragged rows or mixed types)",
            value=a.shape,
        )
    return a


def _pair(x: Any, y: Any, name_x: str, name_y: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets checked: one row per example, as many targets as rows, numeric and finite."""
    xs, ys = _array(x, name_x), _array(y, name_y)
    if ys.ndim == 2 and ys.shape[1] == 1:
        ys = ys.reshape(-1)
    problems = []
    if xs.ndim == 0 or len(xs) == 0:
        problems.append(
            Problem(
                _WHERE, name_x, "must have one row per example and at least one row: shape (n, ...)", value=xs.shape
            )
        )
    if ys.ndim not in (1, 2) or (ys.ndim == 2 and ys.shape[1] == 0):
        problems.append(
            Problem(
                _WHERE,
                name_y,
                "must be one target per row, shape (n,), or one row of targets per "
                "row (one-hot, multi-label 0/1 or a vector), shape (n, K)",
                value=ys.shape,
            )
        )
    elif xs.ndim > 0 and len(ys) != len(xs):
        problems.append(Problem(_WHERE, name_y, f"must have as many rows as {name_x} ({len(xs)})", value=len(ys)))
    elif ys.dtype.kind == "f" and np.isnan(ys).any():
        rows = np.isnan(ys.reshape(len(ys), -1)).any(axis=1)
        problems.append(
            Problem(
                _WHERE,
                name_y,
                f"has {int(np.isnan(ys).sum())} missing (NaN) targets, first in row {int(np.flatnonzero(rows)[0])}",
                value=float("nan"),
            )
        )
    if not (np.issubdtype(xs.dtype, np.number) or xs.dtype == np.bool_):
        problems.append(Problem(_WHERE, name_x, "features must be numeric; encode them first", value=str(xs.dtype)))
    elif xs.ndim > 0 and len(xs) and np.issubdtype(xs.dtype, np.floating) and not np.isfinite(xs).all():
        rows = np.flatnonzero(~np.isfinite(xs.reshape(len(xs), -1)).all(axis=1))
        problems.append(
            Problem(
                _WHERE,
                name_x,
                f"features must be finite: {int(np.isnan(xs).sum())} NaN and "
                f"{int(np.isinf(xs).sum())} inf values in {len(rows)} rows (first in row {rows[0]})",
                has_value=False,
            )
        )
    if problems:
        raise DataError(problems)
    return (xs.reshape(-1, 1) if xs.ndim == 1 else xs).astype(np.float32), ys


def _given(pair: Any, field: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if pair is None:
        return None
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise data_error(_WHERE, field, "must be a pair (x, y)", value=type(pair).__name__)
    xs, ys = _pair(pair[0], pair[1], f"{field}[0]", f"{field}[1]")
    if xs.shape[1:] != x.shape[1:]:
        raise data_error(
            _WHERE, f"{field}[0]", f"rows must have the shape of the rows of x, {x.shape[1:]}", value=xs.shape[1:]
        )
    return xs, ys


def from_arrays(
    x: Any,
    y: Any,
    *,
    validation_data: Any = None,
    test_data: Any = None,
    task: str = "auto",
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    name: str = "arrays",
    feature_names: list[str] | None = None,
) -> Dataset:
    """A :class:`Dataset` from arrays in memory.

    Args:
        x: features, ``(n, F)`` rows, ``(n, T, F)`` sequences or ``(n, H, W, C)`` images.
        y: targets, ``(n,)``: class labels (any values) or numbers; or ``(n, K)``: one-hot rows (as
            ``keras.utils.to_categorical`` makes them), multi-label 0/1 rows or regression vectors.
        validation_data: ``(x_val, y_val)``; otherwise ``val_fraction`` of the rows are split off.
            Defaults to `None`.
        test_data: ``(x_test, y_test)``; otherwise ``test_fraction`` of the rows are split off.
            Defaults to `None`.
        task: ``"binary"``, ``"multiclass"``, ``"regression"`` or ``"auto"`` (inferred as for files).
            Defaults to `"auto"`.
        val_fraction: see :func:`~tuner.data.load_dataset`. Defaults to `0.2`.
        test_fraction: see :func:`~tuner.data.load_dataset`. Defaults to `0.2`.
        seed: seed of the splits. Defaults to `0`.
        name: the dataset's name in records. Defaults to `"arrays"`.
        feature_names: one name per feature. Defaults to ``x0, x1, ...``.

    Raises:
        DataError: one line per problem, naming the argument, the rule and the value.
    """
    _check_options(task=task, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, categorical="error")
    xs, ys = _pair(x, y, "x", "y")
    val, test = _given(validation_data, "validation_data", xs), _given(test_data, "test_data", xs)
    parts = [ys] + [p[1] for p in (val, test) if p is not None]
    if any(p.shape[1:] != ys.shape[1:] for p in parts):
        raise data_error(
            _WHERE, "y", "targets of all splits must have one shape per row", value=[p.shape[1:] for p in parts]
        )
    fmt = "index"
    try:
        if ys.ndim == 2:
            task_, enc, classes, fmt = encode_rows(np.concatenate(parts), task=task, where=_WHERE, field="y")
        else:
            task_, enc, classes = encode_target(np.concatenate(parts), task=task, where=_WHERE, field="y")
    except DataError:
        raise
    except ValueError as err:  # labels of kinds numpy cannot put together
        raise data_error(_WHERE, "y", f"targets of all splits must be of one kind ({err})", has_value=False) from None
    cuts = np.cumsum([len(p) for p in parts])[:-1]
    enc_parts = dict(
        zip(
            ["y"] + [f for f, p in (("validation_data", val), ("test_data", test)) if p is not None],
            np.split(enc, cuts),
            strict=True,
        )
    )
    names = None if classes is None else [label_str(c) for c in classes]
    for field in ("validation_data", "test_data"):
        if names is not None and field in enc_parts:
            try:
                check_test_classes(enc_parts["y"], enc_parts[field], names, _WHERE)
            except DataError as err:
                raise data_error(_WHERE, f"{field}[1]", err.problems[0].rule, value=err.problems[0].value) from None
    stratify = task_ != "regression" and classes is not None
    if val is not None:
        splits = _split_with_validation(xs, enc_parts, val, test, stratify, test_fraction, seed, names)
    else:
        splits = split(
            xs,
            enc_parts["y"],
            x_test=None if test is None else test[0],
            y_test=enc_parts.get("test_data"),
            stratify=stratify,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
            where=_WHERE,
            class_names=names,
        )
    dataset = Dataset(
        name=name,
        task=task_,
        x_train=splits["x_train"],
        y_train=splits["y_train"],
        x_val=splits["x_val"],
        y_val=splits["y_val"],
        x_test=splits["x_test"],
        y_test=splits["y_test"],
        n_classes=None if names is None else len(names),
        feature_names=feature_names or [f"x{i}" for i in range(int(math.prod(xs.shape[1:])))],
        class_names=names,
        source="arrays in memory",
        target_format=fmt,
    )
    if classes is None:
        return dataset
    # the exported model answers with the labels as given (0, 1, True...), not their text
    labels = tuple(c.item() if isinstance(c, np.generic) else c for c in classes)
    return dataclasses.replace(dataset, preprocessing=dataclasses.replace(_preprocessing(dataset), labels=labels))


def _preprocessing(dataset: Dataset) -> Preprocessing:
    """``dataset.preprocessing``, which ``Dataset.__post_init__`` always fills in."""
    if dataset.preprocessing is None:
        raise ValueError(f"dataset {dataset.name!r} has no preprocessing record")
    return dataset.preprocessing


def _split_with_validation(
    xs: np.ndarray,
    enc: dict[str, np.ndarray],
    val: Any,
    test: Any,
    stratify: bool,
    test_fraction: float,
    seed: int,
    names: list[str] | None,
) -> dict[str, np.ndarray]:
    """The splits when the validation rows are given: the test rows given too, or split off the rest."""
    out = {"x_val": val[0], "y_val": enc["validation_data"]}
    if test is not None:
        return {"x_train": xs, "y_train": enc["y"], **out, "x_test": test[0], "y_test": enc["test_data"]}
    # split() takes validation off the rows and keeps a given test split: ask it the other way round
    parts = split(
        xs,
        enc["y"],
        x_test=val[0],
        y_test=enc["validation_data"],
        stratify=stratify,
        val_fraction=test_fraction,
        test_fraction=test_fraction,
        seed=seed,
        where=_WHERE,
        class_names=names,
    )
    return {
        "x_train": parts["x_train"],
        "y_train": parts["y_train"],
        **out,
        "x_test": parts["x_val"],
        "y_test": parts["y_val"],
    }


def from_frame(frame: Any, *, target: str | None, categorical: str = "error", **options: Any) -> Dataset:
    """A :class:`Dataset` from a pandas DataFrame: the ``target`` column and the other columns as features.

    Args:
        frame: the DataFrame.
        target: the target column (required).
        categorical: non-numeric feature columns: ``"error"`` or ``"onehot"``. Defaults to `"error"`.
        **options: as :func:`from_arrays` (``validation_data`` and ``test_data`` as DataFrames with the
            same columns, ``task``, ``seed``, ...).

    Raises:
        DataError: for a missing target column, missing values, non-numeric features, and as :func:`from_arrays`.
    """
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    if target is None or target not in columns:
        hint = did_you_mean(target, columns) if target else ""
        raise data_error("DataFrame", "target", f"must name a column{hint}; columns: {columns}", value=target)
    if categorical not in CATEGORICAL:
        raise data_error("DataFrame", "categorical", f"must be one of {list(CATEGORICAL)}", value=categorical)

    train = frame.rename(columns=str)
    features = train.drop(columns=[target])
    text = [
        c
        for c in features.columns
        if not pd.api.types.is_numeric_dtype(features[c]) and not pd.api.types.is_bool_dtype(features[c])
    ]
    if text and categorical == "error":
        raise data_error(
            "DataFrame",
            f"column {text[0]!r}",
            "features must be numeric (or pass categorical='onehot')",
            value=str(features[text[0]].dtype),
        )
    # the frame's columns as given (dtypes, categories of text columns): every split, and later the exported
    # model's raw inputs, are encoded by this one description, so a category missing from a split is harmless
    described = table_columns(features)
    names = encoded_names(described)
    table = Preprocessing(
        kind="table", input_shape=(len(names),), feature_names=names, columns=described, target=target
    )

    def xy(df: Any, field: str) -> tuple[Any, Any]:
        df = df.rename(columns=str)
        if target not in df.columns:
            raise data_error(field, "target", f"must name a column; columns: {list(df.columns)}", value=target)
        labels = df[target]
        if not (pd.api.types.is_numeric_dtype(labels) or pd.api.types.is_bool_dtype(labels)):
            if labels.isna().any():
                first = int(np.flatnonzero(labels.isna().to_numpy())[0])
                raise data_error(
                    field,
                    f"column {target!r}",
                    f"has {int(labels.isna().sum())} missing targets, first in row {first}",
                    value=None,
                )
            return table.transform(df, where=field), labels.to_numpy(dtype=str)  # text labels, kept as text
        return table.transform(df, where=field), labels.to_numpy()

    x, y = xy(frame, "DataFrame")
    for key in ("validation_data", "test_data"):
        if isinstance(options.get(key), pd.DataFrame):
            options[key] = xy(options[key], key)
    dataset = from_arrays(x, y, feature_names=list(table.feature_names), **options)
    return dataclasses.replace(dataset, preprocessing=dataclasses.replace(table, labels=_preprocessing(dataset).labels))


def in_memory_dataset(data: Any, **options: Any) -> Dataset:
    """A :class:`Dataset` as given, from ``(x, y)`` arrays, or from a pandas DataFrame (``target=`` required).

    Raises:
        DataError: for anything else, and as :func:`from_arrays` / :func:`from_frame`.
    """
    if isinstance(data, Dataset):
        return data
    options = {k: v for k, v in options.items() if v is not None}
    if type(data).__name__ == "DataFrame":
        return from_frame(data, target=options.pop("target", None), **options)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        if "target" in options:
            raise data_error(_WHERE, "target", "is only for a DataFrame; arrays give y", value=options["target"])
        options.pop("categorical", None)
        return from_arrays(data[0], data[1], **options)
    raise data_error(
        "dataset",
        "dataset",
        "must be a Dataset, a built-in name or file path, a pair (x, y) of arrays or a pandas DataFrame",
        value=type(data).__name__,
    )
