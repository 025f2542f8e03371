"""How raw inputs become the features a model trains on, written down so that it can be replayed.

A :class:`Preprocessing` records what the data stage did to the user's data: the file's feature columns
(their order, dtypes and the categories of one-hot encoded text columns), the fitted scalers (their
learned arrays) and the labels the class indices stand for. It is plain data (``to_dict``/``from_dict``
round-trip through JSON), so the exported model (:mod:`tuner.model`) replays the same steps on raw rows
in another process: :meth:`Preprocessing.transform` turns raw rows into the model's inputs, and
:meth:`Preprocessing.labels_of` turns class indices back into the file's own labels.

Only numpy is imported up front; pandas when a table is read.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tuner.errors import DataError, Problem

__all__ = ["Column", "Preprocessing", "describe_raw", "encode_table", "encoded_names", "fitted_step", "table_columns"]


@dataclasses.dataclass(frozen=True)
class Column:
    """One feature column of a table: its name, its pandas dtype, and its categories when one-hot encoded."""

    name: str
    dtype: str
    categories: tuple[Any, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What turns raw inputs into the model's features: encoding, then scaling; and what labels mean.

    Attributes:
        kind: ``"table"`` (named columns, text columns one-hot encoded) or ``"array"`` (examples of
            ``input_shape``).
        input_shape: the shape of one encoded example (before a model's view reshapes it).
        feature_names: the encoded features, in the order the model sees them.
        columns: the table's feature columns, in the file's order (tables only).
        steps: the fitted scalers, in order: ``{"kind": "standard", "mean": [...], "scale": [...]}`` or
            ``{"kind": "minmax", "min": [...], "scale": [...]}`` (one value per flattened feature).
        target: the target column of a table, or None.
        labels: the label of each class index, in the file's own values; None for regression.
    """

    kind: str
    input_shape: tuple[int, ...]
    feature_names: tuple[str, ...]
    columns: tuple[Column, ...] = ()
    steps: tuple[dict[str, Any], ...] = ()
    target: str | None = None
    labels: tuple[Any, ...] | None = None

    # -- JSON -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (floats round-trip exactly through ``json``)."""
        out = dataclasses.asdict(self)
        out["columns"] = [
            {"name": c.name, "dtype": c.dtype, "categories": None if c.categories is None else list(c.categories)}
            for c in self.columns
        ]
        out["input_shape"] = list(self.input_shape)
        out["feature_names"] = list(self.feature_names)
        out["labels"] = None if self.labels is None else list(self.labels)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        columns = tuple(
            Column(c["name"], c["dtype"], None if c.get("categories") is None else tuple(c["categories"]))
            for c in data.get("columns", ())
        )
        labels = data.get("labels")
        return cls(
            kind=data["kind"],
            input_shape=tuple(int(d) for d in data["input_shape"]),
            feature_names=tuple(data["feature_names"]),
            columns=columns,
            steps=tuple(dict(s) for s in data.get("steps", ())),
            target=data.get("target"),
            labels=None if labels is None else tuple(labels),
        )

    # -- replaying --------------------------------------------------------------------------------
    def with_step(self, step: Mapping[str, Any]) -> Preprocessing:
        """This description with one more fitted scaler (see :func:`fitted_step`)."""
        return dataclasses.replace(self, steps=(*self.steps, dict(step)))

    def transform(self, inputs: Any, *, where: str = "inputs") -> np.ndarray:
        """Raw inputs -> the scaled ``float32`` features the model was trained on, ``(n, *input_shape)``.

        Tables take a pandas DataFrame (or a mapping of columns) holding the feature columns by name
        (other columns, such as the target, are ignored); arrays take ``(n, *input_shape)`` or flat
        ``(n, prod(input_shape))`` rows.

        Raises:
            DataError: with one problem, naming the column or shape, the rule and the value: a missing
                column, a non-numeric value in a numeric column, an unknown category, a missing value,
                a wrong shape.
        """
        x = self._encode_table(inputs, where) if self.kind == "table" else self._encode_array(inputs, where)
        return self.scale(x)

    def scale(self, x: np.ndarray) -> np.ndarray:
        """Apply the fitted scalers to encoded features, as scikit-learn's ``transform`` does (float64, then
        float32)."""
        x = np.asarray(x, dtype=np.float32)  # the data stage holds features as float32 before scaling
        if not self.steps or len(x) == 0:
            return x
        flat = x.reshape(len(x), -1).astype(np.float64)
        for step in self.steps:
            if step["kind"] == "standard":
                flat = (flat - np.asarray(step["mean"])) / np.asarray(step["scale"])
            else:
                flat = flat * np.asarray(step["scale"]) + np.asarray(step["min"])
            flat = flat.astype(np.float32).astype(np.float64)  # each step hands on float32, as scale() does
        return flat.astype(np.float32).reshape(x.shape)

    def labels_of(self, indices: np.ndarray) -> np.ndarray:
        """Class indices -> the file's own labels (an array of their type)."""
        if self.labels is None:
            raise ValueError("labels_of: a regression target has no labels")
        labels = np.asarray(self.labels, dtype=object if any(isinstance(v, str) for v in self.labels) else None)
        return labels[np.asarray(indices, dtype=np.int64)]

    def example(self, x: np.ndarray) -> Any:
        """Encoded (unscaled) features -> raw inputs as a user gives them: a DataFrame for tables, else arrays."""
        if self.kind != "table":
            return np.asarray(x, dtype=np.float32).reshape(len(x), *self.input_shape)
        import pandas as pd

        frame = pd.DataFrame(np.asarray(x).reshape(len(x), -1), columns=list(self.feature_names))
        out = {}
        for col in self.columns:
            if col.categories is None:
                out[col.name] = frame[col.name].to_numpy().astype(col.dtype)
            else:
                dummies = frame[[_dummy(col.name, c) for c in col.categories]].to_numpy()
                out[col.name] = np.asarray(list(col.categories), dtype=object)[dummies.argmax(axis=1)]
        return pd.DataFrame(out)

    # -- encoding ---------------------------------------------------------------------------------
    def _encode_array(self, inputs: Any, where: str) -> np.ndarray:
        if hasattr(inputs, "to_numpy"):  # a DataFrame of flat rows
            inputs = inputs.to_numpy()
        try:
            x = np.asarray(inputs, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise _error(where, "inputs", f"must be numbers ({exc})", value=type(inputs).__name__) from None
        size = math.prod(self.input_shape)
        if x.ndim >= 1 and tuple(x.shape[1:]) == self.input_shape:
            pass
        elif x.ndim == 2 and x.shape[1] == size:
            x = x.reshape(len(x), *self.input_shape)
        else:
            shapes = dict.fromkeys([f"(n, {', '.join(map(str, self.input_shape))})", f"(n, {size})"])  # one when flat
            raise _error(where, "shape", f"inputs must have shape {' or '.join(shapes)}", value=x.shape)
        _check_finite(x.reshape(len(x), -1), [f"x[{i}]" for i in range(size)], where)
        return x

    def _encode_table(self, inputs: Any, where: str) -> np.ndarray:
        import pandas as pd

        frame = pd.DataFrame(inputs).rename(columns=str)  # a copy: the caller's frame keeps its column labels
        names = [c.name for c in self.columns]
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise _error(
                where,
                f"column {missing[0]!r}",
                f"required feature column is missing ({len(missing)} missing: {missing}); expected columns {names}",
                has_value=False,
            )
        numeric, dummies = {}, {}
        for col in self.columns:
            values = frame[col.name]
            if values.isna().any():
                first = int(np.flatnonzero(values.isna().to_numpy())[0])
                raise _error(
                    where,
                    f"column {col.name!r}",
                    f"must not have missing values (first in row {first})",
                    value=float("nan"),
                )
            if col.categories is None:
                numeric[col.name] = _numeric(values, col, where)
            else:
                dummies.update(_one_hot(values, col, where))
        # pandas.get_dummies (the data stage's encoding) puts the numeric columns first, then the dummies
        encoded = pd.DataFrame({**numeric, **dummies}, index=frame.index)
        if tuple(encoded.columns) != self.feature_names:
            encoded = encoded[list(self.feature_names)]
        x = encoded.to_numpy(dtype=np.float64)
        _check_finite(x, list(self.feature_names), where)
        return x


def _dummy(column: str, category: Any) -> str:
    return f"{column}_{category}"  # how pandas.get_dummies names a dummy column


def encoded_names(columns: Sequence[Column]) -> tuple[str, ...]:
    """The one encoding of a table's features, by name and order: the numeric columns as they are, then one
    0/1 column per category of each text column (``color_red``), as ``pandas.get_dummies`` orders and names
    them. Training data (files, DataFrames) and the exported model's raw rows are encoded by it alike."""
    numeric = [c.name for c in columns if c.categories is None]
    dummies = [_dummy(c.name, k) for c in columns if c.categories is not None for k in c.categories]
    return (*numeric, *dummies)


def encode_table(features: Any, columns: Sequence[Column]) -> Any:
    """Training data's features (a DataFrame as read, checked by the data stage) encoded by
    :func:`encoded_names`: a DataFrame of floats, a missing value kept as NaN (numeric) or no category (text)."""
    import pandas as pd

    out: dict[str, np.ndarray] = {}
    for col in columns:
        values = features[col.name]
        if col.categories is None:
            out[col.name] = values.to_numpy(dtype=np.float64)
    for col in columns:
        if col.categories is not None:
            values = features[col.name]
            for k in col.categories:
                out[_dummy(col.name, k)] = (values == k).to_numpy(dtype=np.float64)
    return pd.DataFrame(out, index=features.index, columns=list(encoded_names(columns)))


def _numeric(values: Any, col: Column, where: str) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64)
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise _error(
            where,
            f"column {col.name!r}",
            f"must hold numbers ({col.dtype} in the training data), "
            f"found {values.dtype} values (first non-numeric in row {row})",
            value=values.iloc[row],
        )
    return converted.to_numpy(dtype=np.float64)


def _one_hot(values: Any, col: Column, where: str) -> dict[str, np.ndarray]:
    assert col.categories is not None
    text = values.astype(str).to_numpy() if not isinstance(col.categories[0], str) else values.to_numpy()
    known = [str(c) for c in col.categories] if not isinstance(col.categories[0], str) else list(col.categories)
    text = np.asarray([str(v) for v in text], dtype=object)
    unknown = ~np.isin(text, np.asarray(known, dtype=object))
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise _error(
            where,
            f"column {col.name!r}",
            f"must be one of the categories seen in training {known} (first unknown in row {row})",
            value=values.iloc[row],
        )
    return {_dummy(col.name, c): (text == k).astype(np.float64) for c, k in zip(col.categories, known, strict=True)}


def _check_finite(x: np.ndarray, names: Sequence[str], where: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        row, j = (int(i) for i in np.argwhere(bad)[0])
        raise _error(where, names[j], f"must be a finite number (first in row {row})", value=float(x[row, j]))


def _error(where: str, field: str, rule: str, **value: Any) -> DataError:
    return DataError([Problem(where, field, rule, **value)])


# --------------------------------------------------------------------------------------------------
# Written by the data stage


def describe_raw(raw: Any, *, class_names: Sequence[str] | None, target: str | None = None) -> Preprocessing:
    """The encoding a source applied (its :class:`~tuner.data._dataset.Raw`), and what its class indices mean."""
    columns = tuple(getattr(raw, "columns", None) or ())
    return Preprocessing(
        kind="table" if columns else "array",
        input_shape=tuple(int(d) for d in np.shape(raw.x)[1:]),
        feature_names=tuple(str(n) for n in raw.feature_names),
        columns=columns,
        target=target,
        labels=_labels(raw, class_names),
    )


def _labels(raw: Any, class_names: Sequence[str] | None) -> tuple[Any, ...] | None:
    """The class labels in the file's own values: numbers stay numbers, booleans booleans."""
    if class_names is None:
        return None
    if raw.target_names is not None and list(class_names) == list(raw.target_names):
        return tuple(class_names)
    kind = np.asarray(raw.y).dtype.kind
    if kind == "b":
        return tuple(name == "True" for name in class_names)
    if kind in "iuf":
        return tuple(int(name) for name in class_names)
    return tuple(class_names)


def fitted_step(kind: str, scaler: Any) -> dict[str, Any]:
    """The learned arrays of a fitted scikit-learn ``StandardScaler`` or ``MinMaxScaler``, as JSON-able lists."""
    if kind == "standard":
        return {"kind": kind, "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}
    return {"kind": kind, "min": scaler.min_.tolist(), "scale": scaler.scale_.tolist()}


def table_columns(features: Any) -> tuple[Column, ...]:
    """The feature columns of a table as read (before encoding): names, dtypes, categories of text columns.

    The categories are those ``pandas.get_dummies`` makes dummy columns of, in its order.
    """
    import pandas as pd

    out = []
    for j, name in enumerate(features.columns):
        values = features.iloc[:, j]
        if pd.api.types.is_numeric_dtype(values):
            out.append(Column(str(name), str(values.dtype)))
        else:
            out.append(Column(str(name), str(values.dtype), tuple(pd.Categorical(values).categories.tolist())))
    return tuple(out)
