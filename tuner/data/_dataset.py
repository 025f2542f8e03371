"""The Dataset: features and targets split into train, validation and test parts, and their scaling.

Also the shape every source reads into before splitting (:class:`Raw`) and the split itself, made with
scikit-learn's ``train_test_split`` (imported when a split is made, so that importing stays light).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from tuner.data._preprocessing import Column, Preprocessing, fitted_step
from tuner.errors import DataError, Problem
from tuner.space import SCALINGS


def data_error(where: str, field: str, rule: str, **value: Any) -> DataError:
    """A :class:`DataError` with one problem: ``where``, ``field``, ``rule`` and ``value=`` or ``has_value=``."""
    return DataError([Problem(where, field, rule, **value)])


@dataclasses.dataclass(eq=False)
class Dataset:
    """Features and targets split into train, validation and test parts.

    Features are ``float32`` arrays of shape ``(n, *input_shape)``. Classification targets are
    ``int64`` class indices ``0..K-1`` (``class_names[i]`` is the original label of index ``i``);
    regression targets are ``float32`` arrays of shape ``(n,)``.
    """

    name: str
    task: str
    x_train: np.ndarray = dataclasses.field(repr=False)
    y_train: np.ndarray = dataclasses.field(repr=False)
    x_val: np.ndarray = dataclasses.field(repr=False)
    y_val: np.ndarray = dataclasses.field(repr=False)
    x_test: np.ndarray = dataclasses.field(repr=False)
    y_test: np.ndarray = dataclasses.field(repr=False)
    n_classes: int | None
    feature_names: list[str] = dataclasses.field(repr=False)
    class_names: list[str] | None
    source: str
    scaling: str = "none"
    # how raw inputs become these features (encoding, fitted scalers, labels): replayed by the exported model
    preprocessing: Preprocessing | None = dataclasses.field(default=None, repr=False)
    # how the targets were given (tuner.data._targets.TARGET_FORMATS): one-hot rows are kept as class indices and
    # handed to a model as one-hot rows again; multi-label and vector rows are kept as (n, K) float32 rows
    target_format: str = "index"
    # flat rows that are really images: the (H, W, C) the image view reshapes them to (None: the data's own shape)
    image_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.preprocessing is None:  # arrays given as they are: no encoding, no scaling yet
            labels = None if self.class_names is None else tuple(self.class_names)
            self.preprocessing = Preprocessing(
                kind="array", input_shape=self.input_shape, feature_names=tuple(self.feature_names), labels=labels
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example: ``x_train.shape[1:]``."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def n_outputs(self) -> int:
        """Units of the output layer: ``n_classes`` for multiclass, ``K`` for rows of ``K`` targets (multi-label,
        vectors), 1 for binary and regression."""
        if self.target_format in ("multilabel", "vector"):
            return int(self.y_train.shape[1])
        if self.task == "multiclass":
            assert self.n_classes is not None
            return self.n_classes
        return 1

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary: name, task, split sizes, feature shape, classes, source and scaling."""
        return {
            "name": self.name,
            "task": self.task,
            "n_train": len(self.x_train),
            "n_val": len(self.x_val),
            "n_test": len(self.x_test),
            "n_features": int(math.prod(self.input_shape)),
            "input_shape": list(self.input_shape),
            "n_classes": self.n_classes,
            "class_names": None if self.class_names is None else list(self.class_names),
            "source": self.source,
            "scaling": self.scaling,
            **({"image_shape": list(self.image_shape)} if self.image_shape else {}),
        }


@dataclasses.dataclass(frozen=True)
class Raw:
    """A dataset before splitting. ``x_test``/``y_test`` are set when the source brings a test split."""

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    target_names: list[str] | None = None  # names of the labels 0..K-1, when the source has them
    target_field: str = "target"  # how error messages name the target
    columns: tuple[Column, ...] = ()  # a table's feature columns as in the file (dtypes, one-hot categories)


# --------------------------------------------------------------------------------------------------
# Splitting


def split(
    x: np.ndarray,
    y: np.ndarray,
    *,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    stratify: bool,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    where: str,
    class_names: list[str] | None,
) -> dict[str, np.ndarray]:
    """The six arrays of a :class:`Dataset`: test split off first (unless given), then validation."""
    if x_test is None:
        needed = 3 if stratify else 1
        _check_class_sizes(y, stratify, needed, where, class_names, "train/val/test")
        x_rest, x_test, y_rest, y_test = _split_once(
            x, y, test_fraction, stratify, seed, where, class_names, field="test_fraction", value=test_fraction
        )
        val_relative = val_fraction / (1 - test_fraction)
    else:
        assert y_test is not None
        x_rest, y_rest = x, y
        x_test, y_test = np.array(x_test), np.array(y_test)  # copies: never hand out cached arrays
        val_relative = val_fraction
    _check_class_sizes(y_rest, stratify, 2 if stratify else 1, where, class_names, "train/val")
    x_train, x_val, y_train, y_val = _split_once(
        x_rest, y_rest, val_relative, stratify, seed, where, class_names, field="val_fraction", value=val_fraction
    )
    return {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val, "x_test": x_test, "y_test": y_test}


def _check_class_sizes(
    y: np.ndarray, stratify: bool, needed: int, where: str, class_names: list[str] | None, kind: str
) -> None:
    if not stratify:
        return  # _split_once checks that every part gets rows
    assert class_names is not None
    counts = np.bincount(y, minlength=len(class_names))
    small = [(class_names[i], int(c)) for i, c in enumerate(counts) if c < needed]
    if small:
        shown = 5
        problems = [
            Problem(
                where,
                f"class {label!r}",
                f"has too few rows for a stratified {kind} split, which needs at least {needed} rows of every class",
                value=count,
            )
            for label, count in small[:shown]
        ]
        if len(small) > shown:
            problems.append(
                Problem(
                    where,
                    "target",
                    f"{len(small) - shown} more classes have fewer than {needed} rows "
                    f"({len(small)} of {len(class_names)} in all)",
                    has_value=False,
                )
            )
        raise DataError(problems)


def _split_once(
    x: np.ndarray,
    y: np.ndarray,
    size: float,
    stratify: bool,
    seed: int,
    where: str,
    class_names: list[str] | None,
    *,
    field: str,
    value: float,
) -> list[np.ndarray]:
    from sklearn.model_selection import train_test_split

    n = len(y)
    n_out = math.ceil(size * n)
    n_in = n - n_out
    min_rows = len(class_names) if stratify and class_names is not None else 1
    if n_out < min_rows or n_in < min_rows:
        per = f" (one per class, {min_rows} classes)" if stratify else ""
        raise data_error(
            where,
            field,
            f"splits {n} rows into {n_in} and {n_out}; each part needs at least {min_rows} rows{per}",
            value=value,
        )
    try:
        return train_test_split(x, y, test_size=size, random_state=seed, stratify=y if stratify else None)
    except ValueError as exc:  # anything the checks above did not foresee: still a message, not a traceback
        raise data_error(where, field, f"cannot split the data ({exc})", value=value) from None


# --------------------------------------------------------------------------------------------------
# Scaling


def scale(dataset: Dataset, kind: str) -> Dataset:
    """Scale the features, fitting the scaler on the training split only.

    Args:
        dataset: The dataset; it is not modified.
        kind: ``"standard"`` (scikit-learn's ``StandardScaler``), ``"minmax"`` (``MinMaxScaler``) or
            ``"none"``. Features of any rank are flattened to 2-D for the scaler and reshaped back.

    Returns:
        A new :class:`Dataset` whose ``scaling`` names what has been applied.

    Raises:
        DataError: If ``kind`` is not one of the above.
    """
    if kind not in SCALINGS:
        raise data_error("scale", "kind", f"must be one of {list(SCALINGS)}", value=kind)
    copies: dict[str, Any] = {f: np.array(getattr(dataset, f)) for f in ("y_train", "y_val", "y_test")}
    copies["feature_names"] = list(dataset.feature_names)
    copies["class_names"] = None if dataset.class_names is None else list(dataset.class_names)
    if kind == "none":
        return dataclasses.replace(
            dataset,
            x_train=np.array(dataset.x_train),
            x_val=np.array(dataset.x_val),
            x_test=np.array(dataset.x_test),
            **copies,
        )
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    scaler = StandardScaler() if kind == "standard" else MinMaxScaler()

    def flat(a: np.ndarray) -> np.ndarray:
        return a.reshape(len(a), -1).astype(np.float64)

    scaler.fit(flat(dataset.x_train))

    def apply(a: np.ndarray) -> np.ndarray:
        if len(a) == 0:
            return np.array(a, dtype=np.float32)
        return scaler.transform(flat(a)).astype(np.float32).reshape(a.shape)

    scaling = kind if dataset.scaling == "none" else f"{dataset.scaling}+{kind}"
    assert dataset.preprocessing is not None
    return dataclasses.replace(
        dataset,
        x_train=apply(dataset.x_train),
        x_val=apply(dataset.x_val),
        x_test=apply(dataset.x_test),
        scaling=scaling,
        preprocessing=dataset.preprocessing.with_step(fitted_step(kind, scaler)),
        **copies,
    )
