"""Loading: a built-in name or a user file, read, its target encoded, split into train/val/test."""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np

from tuner.data._builtin import BUILTIN
from tuner.data._dataset import Dataset, Raw, data_error, split
from tuner.data._files import read_npz, read_table, resolve_path
from tuner.data._keras_cache import KERAS_DATASETS, keras_cache_dir, keras_cached
from tuner.data._preprocessing import describe_raw
from tuner.data._targets import check_test_classes, encode_target, label_str
from tuner.errors import DataError, Problem
from tuner.space import CATEGORICAL, TASKS

_CALLER = "load_dataset"


def list_datasets(*, keras_datasets: bool = False) -> list[dict[str, Any]]:
    """The built-in datasets: one dict each with name, task, n_rows, n_features, n_classes and source.

    The numbers are static: nothing is loaded or generated. With ``keras_datasets`` the ``keras.datasets``
    names follow, their source saying whether their files are in the Keras cache here (they are never
    downloaded).
    """
    rows = [d.info() for d in BUILTIN.values()]
    if keras_datasets:
        for name, d in KERAS_DATASETS.items():
            state = "cached" if keras_cached(name) else f"not cached: put the files in {keras_cache_dir()}"
            rows.append({**d.info(), "source": f"{d.source}, {state}"})
    return rows


def load_dataset(
    name_or_path: str | os.PathLike[str] = "digits",
    *,
    target: str | None = None,
    task: str = "auto",
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    categorical: str = "error",
) -> Dataset:
    """Load a built-in dataset or a user file and split it into train, validation and test parts.

    Splits are made with scikit-learn's ``train_test_split``, stratified by class for classification
    and seeded with ``seed``: first ``test_fraction`` of the rows go to test, then ``val_fraction`` of
    all rows (relative to the whole) to validation. Sources that bring their own test split (``mnist1d``,
    an ``.npz`` with ``x_test``/``y_test``) keep it, and ``val_fraction`` of their training rows go to
    validation.

    Args:
        name_or_path: A built-in name (see :func:`list_datasets`), a ``keras.datasets`` name found in
            the Keras cache (``mnist``, ``fashion_mnist``, ``cifar10``) or the path of a ``.csv``,
            ``.parquet`` or ``.npz`` file. Defaults to ``"digits"``.
        target: The target column of a CSV or Parquet file; required for them, not allowed otherwise.
            Defaults to `None`.
        task: ``"binary"``, ``"multiclass"``, ``"regression"`` or ``"auto"``. With ``"auto"``, string
            or boolean targets are classification; numeric targets with non-integer values or more than
            20 distinct values are regression; 2 distinct values are binary, otherwise multiclass.
            Defaults to ``"auto"``.
        val_fraction: Fraction of the rows for validation, in (0, 1). Defaults to `0.2`.
        test_fraction: Fraction of the rows for test, in (0, 1); the two must sum to less than 1.
            Ignored where the source brings its own test split. Defaults to `0.2`.
        seed: Seed of the splits. Defaults to `0`.
        categorical: What to do with non-numeric feature columns of a CSV or Parquet file: ``"error"``
            or ``"onehot"`` (one-hot encode them). Defaults to ``"error"``.

    Returns:
        A :class:`Dataset` with ``scaling="none"``; see :func:`scale`.

    Raises:
        DataError: If an option is invalid, the file is missing or unreadable, or the data is unusable
            (missing target, NaN or inf values, a single class, a task the target contradicts, a class
            too small to stratify, ...). The message names the file, the field, the rule and the value.
    """
    _check_options(
        task=task, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, categorical=categorical
    )
    raw, name, source, where = _read_source(os.fspath(name_or_path), target=target, categorical=categorical)
    task_, y_enc, y_test_enc, class_names = _encode_targets(raw, task, where)
    splits = split(
        np.asarray(raw.x, dtype=np.float32),
        y_enc,
        x_test=None if raw.x_test is None else np.asarray(raw.x_test, dtype=np.float32),
        y_test=y_test_enc,
        stratify=task_ != "regression",
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        where=where,
        class_names=class_names,
    )
    return Dataset(
        name=name,
        task=task_,
        x_train=splits["x_train"],
        y_train=splits["y_train"],
        x_val=splits["x_val"],
        y_val=splits["y_val"],
        x_test=splits["x_test"],
        y_test=splits["y_test"],
        n_classes=None if class_names is None else len(class_names),
        feature_names=list(raw.feature_names),
        class_names=class_names,
        source=source,
        preprocessing=describe_raw(raw, class_names=class_names, target=target),
    )


def check_source(spec: str, *, target: str | None = None) -> Path | None:
    """Check a dataset reference without reading it: a built-in name (None), or an existing ``.csv``, ``.parquet``
    or ``.npz`` file (its path), ``target`` given for a table only. The command line calls it before Keras starts.

    Raises:
        DataError: an unknown name (with the nearest built-in), a missing file, an unknown format, a misplaced
            ``target``.
    """
    if spec in BUILTIN or spec in KERAS_DATASETS:
        if target is not None:
            raise data_error(
                f"dataset {spec!r}",
                "target",
                "is only for CSV and Parquet files; built-in datasets have their own target",
                value=target,
            )
        return None
    path = resolve_path(spec, _CALLER)
    if path.suffix.lower() == ".npz" and target is not None:
        raise data_error(
            spec,
            "target",
            "is only for CSV and Parquet files; .npz files take the target from array 'y'",
            value=target,
        )
    return path


def _read_source(spec: str, *, target: str | None, categorical: str) -> tuple[Raw, str, str, str]:
    """The raw data of a built-in name or a file, with its name, source and how messages name it."""
    path = check_source(spec, target=target)
    if path is None:
        builtin = BUILTIN.get(spec) or KERAS_DATASETS[spec]
        return builtin.load(), spec, builtin.source, f"dataset {spec!r}"
    if path.suffix.lower() == ".npz":
        raw = read_npz(path, spec)
    else:
        raw = read_table(path, spec, target=target, categorical=categorical)
    return raw, path.name, f"file {path.resolve()}", spec


def _encode_targets(raw: Raw, task: str, where: str) -> tuple[str, np.ndarray, np.ndarray | None, list[str] | None]:
    """The task, the encoded targets of the rows and of the given test split, and the class names."""
    y_all = raw.y if raw.y_test is None else np.concatenate([np.asarray(raw.y), np.asarray(raw.y_test)])
    task_, y_enc_all, classes = encode_target(y_all, task=task, where=where, field=raw.target_field)
    n = len(raw.y)
    y_enc, y_test_enc = y_enc_all[:n], (None if raw.y_test is None else y_enc_all[n:])
    if task_ == "regression":
        return task_, y_enc, y_test_enc, None
    if classes is None:  # encode_target gives the class labels of every classification task
        raise ValueError(f"{where}: no class labels for a {task_} target")
    class_names = [label_str(c) for c in classes]
    if raw.target_names is not None and np.array_equal(classes, np.arange(len(raw.target_names))):
        class_names = list(raw.target_names)
    if y_test_enc is not None:
        check_test_classes(y_enc, y_test_enc, class_names, where)
    return task_, y_enc, y_test_enc, class_names


def _check_options(*, task: str, val_fraction: float, test_fraction: float, seed: object, categorical: str) -> None:
    problems: list[Problem] = []
    if task not in (*TASKS, "auto"):
        problems.append(Problem(_CALLER, "task", f"must be one of {[*TASKS, 'auto']}", value=task))
    if categorical not in CATEGORICAL:
        problems.append(Problem(_CALLER, "categorical", f"must be one of {list(CATEGORICAL)}", value=categorical))
    fractions_ok = True
    for field, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not _is_real(value) or not 0 < value < 1:
            problems.append(Problem(_CALLER, field, "must be a number > 0 and < 1", value=value))
            fractions_ok = False
    if fractions_ok and val_fraction + test_fraction >= 1:
        problems.append(
            Problem(
                _CALLER,
                "val_fraction + test_fraction",
                "must be < 1 so that rows remain for training",
                value=val_fraction + test_fraction,
            )
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2**32:
        problems.append(Problem(_CALLER, "seed", "must be an integer in [0, 2**32)", value=seed))
    if problems:
        raise DataError(problems)


def _is_real(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
