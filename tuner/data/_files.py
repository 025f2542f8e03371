"""The user's own files: ``.csv`` and ``.parquet`` tables with a named target column, and ``.npz`` arrays.

Each reader checks everything it can about the file (missing columns or arrays, NaN and inf values,
non-numeric features, mismatched shapes) and reports every problem at once, naming the file and field.
"""

from __future__ import annotations

import difflib
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tuner.data._builtin import BUILTIN
from tuner.data._dataset import Raw, data_error
from tuner.data._targets import missing_target
from tuner.errors import DataError, Problem

FILE_SUFFIXES = (".csv", ".parquet", ".npz")


def resolve_path(spec: str, caller: str) -> Path:
    """The path of a user file; errors for unknown built-in names, missing files and unknown formats."""
    path = Path(spec).expanduser()
    looks_like_path = bool(path.suffix) or os.sep in spec or (os.altsep is not None and os.altsep in spec)
    if not path.exists():
        if not looks_like_path:
            close = difflib.get_close_matches(spec, list(BUILTIN), n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            raise data_error(caller, "name_or_path",
                             f"must be a built-in dataset ({', '.join(BUILTIN)}) or an existing file{hint}", value=spec)
        raise data_error(spec, "", f"file not found (looked for {path.resolve()})", has_value=False)
    if path.is_dir():
        raise data_error(spec, "", "is a folder; expected a .csv, .parquet or .npz file", has_value=False)
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise data_error(spec, "file extension", f"must be one of {list(FILE_SUFFIXES)}", value=path.suffix or "(none)")
    return path


# --------------------------------------------------------------------------------------------------
# .npz: arrays x and y, optionally x_test and y_test


def read_npz(path: Path, where: str) -> Raw:
    """Arrays ``x`` and ``y`` (and ``x_test``, ``y_test`` when given) of an ``.npz`` file, checked."""
    arrays = _load_npz(path, where)
    _check_npz_names(arrays, where)
    x, y = arrays["x"], arrays["y"]
    x_test, y_test = arrays.get("x_test"), arrays.get("y_test")
    problems = _npz_pair_problems(x, y, "x", "y", where)
    if x_test is not None and y_test is not None:
        problems += _npz_pair_problems(x_test, y_test, "x_test", "y_test", where)
    if problems:
        raise DataError(problems)
    x = _as_rows(x)
    if x_test is not None:
        x_test = _as_rows(x_test)
        if x_test.shape[1:] != x.shape[1:]:
            raise data_error(where, "x_test", f"rows must have the shape of the rows of x, {x.shape[1:]}",
                             value=x_test.shape[1:])
    for name_x, xs in (("x", x), ("x_test", x_test)):
        if xs is not None:
            _check_finite_array(xs, where, name_x)
    if len(x) == 0:
        raise data_error(where, "x", "must have at least one row", value=0)
    return Raw(
        x=x,
        y=np.asarray(y).reshape(-1),
        x_test=x_test,
        y_test=None if y_test is None else np.asarray(y_test).reshape(-1),
        feature_names=[f"x{i}" for i in range(int(math.prod(x.shape[1:])))],
        target_field="y",
    )


def _load_npz(path: Path, where: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except ValueError as exc:
        raise data_error(where, "", f"cannot read the .npz file: arrays of Python objects are not supported ({exc})",
                         has_value=False) from None
    except Exception as exc:
        raise data_error(where, "", f"cannot read the .npz file ({type(exc).__name__}: {exc})",
                         has_value=False) from None


def _check_npz_names(arrays: dict[str, np.ndarray], where: str) -> None:
    held = sorted(arrays)
    problems = [
        Problem(where, key, f"required array is missing; the file holds arrays {held}", has_value=False)
        for key in ("x", "y")
        if key not in arrays
    ]
    if ("x_test" in arrays) != ("y_test" in arrays):
        missing = "y_test" if "x_test" in arrays else "x_test"
        other = "x_test" if missing == "y_test" else "y_test"
        problems.append(
            Problem(where, missing, f"is required when {other} is given; the file holds arrays {held}", has_value=False)
        )
    if problems:
        raise DataError(problems)


def _npz_pair_problems(xs: np.ndarray, ys: np.ndarray, name_x: str, name_y: str, where: str) -> list[Problem]:
    """What is wrong with features ``xs`` and targets ``ys``: shapes, row counts, missing targets, dtypes."""
    problems = []
    if ys.dtype.kind == "f" and np.isnan(ys).any():
        problems.append(missing_target(where, name_y, np.isnan(ys.reshape(-1))))
    if xs.ndim == 0:
        problems.append(Problem(where, name_x, "must have one row per example: shape (n, ...)", value=xs.shape))
    if ys.ndim == 2 and ys.shape[1] == 1:
        ys = ys.reshape(-1)
    if ys.ndim != 1:
        problems.append(Problem(where, name_y, "must be 1-D, one target per row: shape (n,)", value=ys.shape))
    elif xs.ndim > 0 and len(ys) != len(xs):
        problems.append(Problem(where, name_y, f"must have as many rows as {name_x} ({len(xs)})", value=len(ys)))
    if not (np.issubdtype(xs.dtype, np.number) or xs.dtype == np.bool_):
        problems.append(Problem(
            where, name_x,
            "features must be numeric; one-hot encode them before saving the .npz "
            "(categorical='onehot' applies to CSV and Parquet columns only)",
            value=xs.dtype,
        ))
    return problems


def _as_rows(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 1) if a.ndim == 1 else a


def _check_finite_array(x: np.ndarray, where: str, field: str) -> None:
    if not np.issubdtype(x.dtype, np.floating):
        return
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
        n_nan, n_inf = int(np.isnan(x).sum()), int(np.isinf(x).sum())
        first = x.reshape(len(x), -1)[rows[0]]
        raise data_error(
            where, field,
            f"features must be finite: {n_nan} NaN and {n_inf} inf values in {len(rows)} rows (first in row {rows[0]})",
            value=first[~np.isfinite(first)][0].item(),
        )


# --------------------------------------------------------------------------------------------------
# .csv and .parquet: a table with a named target column


def read_table(path: Path, where: str, *, target: str | None, categorical: str) -> Raw:
    """The feature columns and the target column of a CSV or Parquet file, checked."""
    frame = _read_frame(path, where)
    frame.columns = [str(c) for c in frame.columns]
    features, y_col = _split_off_target(frame, target, where)
    _check_missing(features, y_col, where)
    features = _numeric_features(features, categorical, where)
    x = features.to_numpy(dtype=np.float64)
    _check_finite_columns(x, list(features.columns), where)
    return Raw(x=x, y=_target_values(y_col), feature_names=[str(c) for c in features.columns],
               target_field=f"column {target!r}")


def _read_frame(path: Path, where: str) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except ImportError as exc:
        raise data_error(where, "", f"reading Parquet needs pyarrow or fastparquet: pip install pyarrow ({exc})",
                         has_value=False) from None
    except Exception as exc:
        raise data_error(where, "", f"cannot read the file ({type(exc).__name__}: {exc})", has_value=False) from None


def _split_off_target(frame: Any, target: str | None, where: str) -> tuple[Any, Any]:
    """The feature columns and the target column, which must be there and leave some features."""
    columns = list(frame.columns)
    if target is None:
        raise data_error(where, "target",
                         f"a target column is required for CSV and Parquet files; available columns: {columns}",
                         value=None)
    if target not in frame.columns:
        close = difflib.get_close_matches(target, columns, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise data_error(where, "target", f"no such column; available columns: {columns}{hint}", value=target)
    if len(frame) == 0:
        raise data_error(where, "", "the file has no data rows", has_value=False)
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise data_error(where, "target",
                         "leaves no feature columns: the file must have at least one column besides the target",
                         value=target)
    return features, frame[target]


def _check_missing(features: Any, y_col: Any, where: str) -> None:
    """No missing target values; then no missing feature values (every column reported)."""
    missing = y_col.isna()
    if missing.any():
        raise data_error(
            where, f"column {y_col.name!r}",
            f"target values must not be missing: {int(missing.sum())} NaN/empty values "
            f"(first in row {int(np.flatnonzero(missing.to_numpy())[0])})",
            value=float("nan"),
        )
    problems = []
    for col in features.columns:
        n_missing = int(features[col].isna().sum())
        if n_missing:
            first = int(np.flatnonzero(features[col].isna().to_numpy())[0])
            problems.append(Problem(
                where, f"column {col!r}",
                f"features must not be missing: {n_missing} NaN/empty values (first in row {first})",
                value=float("nan"),
            ))
    if problems:
        raise DataError(problems)


def _numeric_features(features: Any, categorical: str, where: str) -> Any:
    """The features with non-numeric columns refused (``categorical="error"``) or one-hot encoded."""
    import pandas as pd

    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if not non_numeric:
        return features
    if categorical != "error":
        return pd.get_dummies(features, columns=non_numeric, dtype=np.float32)
    problems = []
    for c in non_numeric:
        row = _first_non_numeric(features[c])
        problems.append(Problem(
            where, f"column {c!r}",
            f"features must be numeric, but the column holds {features[c].dtype} values "
            f"(first non-numeric in row {row}); pass categorical='onehot' to one-hot encode non-numeric columns",
            value=features[c].iloc[row],
        ))
    raise DataError(problems)


def _first_non_numeric(column: Any) -> int:
    """The row of the first value of a column that does not read as a number (0 if all do)."""
    import pandas as pd

    try:
        bad = (pd.to_numeric(column, errors="coerce").isna() & column.notna()).to_numpy()
    except (TypeError, ValueError):
        return 0
    return int(np.flatnonzero(bad)[0]) if bad.any() else 0


def _check_finite_columns(x: np.ndarray, columns: list[str], where: str) -> None:
    bad = ~np.isfinite(x)
    if not bad.any():
        return
    problems = []
    for j in np.flatnonzero(bad.any(axis=0)):
        rows = np.flatnonzero(bad[:, j])
        problems.append(Problem(
            where, f"column {columns[j]!r}",
            f"features must be finite: {len(rows)} inf values (first in row {rows[0]})",
            value=float(x[rows[0], j]),
        ))
    raise DataError(problems)


def _target_values(y_col: Any) -> np.ndarray:
    """The target column as booleans, integers, floats or strings."""
    import pandas as pd

    y = y_col.to_numpy()
    if pd.api.types.is_bool_dtype(y_col):
        return y.astype(bool)
    if pd.api.types.is_numeric_dtype(y_col):
        return y.astype(np.int64 if pd.api.types.is_integer_dtype(y_col) else np.float64)
    return np.asarray([str(v) for v in y], dtype=object)
