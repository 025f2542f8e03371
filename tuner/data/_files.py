"""The user's own files: ``.csv`` and ``.parquet`` tables with a named target column, and ``.npz`` arrays.

Each reader checks everything it can about the file (missing columns or arrays, NaN and inf values,
non-numeric features, mismatched shapes) and reports every problem at once, naming the file and field.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tuner.data._builtin import BUILTIN
from tuner.data._dataset import Raw, data_error
from tuner.data._preprocessing import encode_table, table_columns
from tuner.data._targets import missing_target
from tuner.errors import DataError, Problem, did_you_mean

FILE_SUFFIXES = (".csv", ".parquet", ".npz")


def resolve_path(spec: str, caller: str) -> Path:
    """The path of a user file; errors for unknown built-in names, missing files and unknown formats."""
    path = Path(spec).expanduser()
    looks_like_path = bool(path.suffix) or os.sep in spec or (os.altsep is not None and os.altsep in spec)
    if not path.exists():
        if not looks_like_path:
            hint = did_you_mean(spec, BUILTIN, n=3)
            raise data_error(
                caller,
                "name_or_path",
                f"must be a built-in dataset ({', '.join(BUILTIN)}) or an existing file{hint}",
                value=spec,
            )
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
            raise data_error(
                where, "x_test", f"rows must have the shape of the rows of x, {x.shape[1:]}", value=x_test.shape[1:]
            )
    problems = [
        p
        for name_x, xs in (("x", x), ("x_test", x_test))
        if xs is not None
        for p in _finite_array_problems(xs, where, name_x)
    ]
    if problems:
        raise DataError(problems)
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
        raise data_error(
            where, "", f"cannot read the .npz file: arrays of Python objects are not supported ({exc})", has_value=False
        ) from None
    except Exception as exc:
        raise data_error(
            where, "", f"cannot read the .npz file ({type(exc).__name__}: {exc})", has_value=False
        ) from None


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
        problems.append(
            Problem(
                where,
                name_x,
                "features must be numeric; one-hot encode them before saving the .npz "
                "(--categorical onehot applies to CSV and Parquet columns only)",
                value=xs.dtype,
            )
        )
    return problems


def _as_rows(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 1) if a.ndim == 1 else a


def _finite_array_problems(x: np.ndarray, where: str, field: str) -> list[Problem]:
    if not np.issubdtype(x.dtype, np.floating):
        return []
    bad = ~np.isfinite(x)
    if not bad.any():
        return []
    rows = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
    n_nan, n_inf = int(np.isnan(x).sum()), int(np.isinf(x).sum())
    first = x.reshape(len(x), -1)[rows[0]]
    return [
        Problem(
            where,
            field,
            f"features must be finite: {n_nan} NaN and {n_inf} inf values in {len(rows)} rows "
            f"(first in {field}[{rows[0]}])",
            value=first[~np.isfinite(first)][0].item(),
        )
    ]


# --------------------------------------------------------------------------------------------------
# .csv and .parquet: a table with a named target column


def read_table(path: Path, where: str, *, target: str | None, categorical: str) -> Raw:
    """The feature columns and the target column of a CSV or Parquet file, checked.

    Every problem is reported at once (each missing target or feature value's column, each non-numeric or
    non-finite column, duplicate column names), each with the first place it occurs: the file's line
    as an editor shows it for CSV (the header is line 1, the first data row line 2), the row (from 1) for
    Parquet.

    Raises:
        DataError: listing every problem found.
    """
    frame = _read_frame(path, where)
    problems = _duplicate_columns(path, frame, where)
    frame.columns = [str(c) for c in frame.columns]
    features, y_col = _split_off_target(frame, target, where)
    at = _Places(path)
    problems += _missing_problems(features, y_col, where, at)
    columns = table_columns(features)  # as in the file, for the exported model to encode raw rows alike
    features, more = _numeric_features(features, columns, categorical, where, at)
    problems += more + _finite_problems(features, where, at)
    if problems:
        raise DataError(problems)
    x = features.to_numpy(dtype=np.float64)
    return Raw(
        x=x,
        y=_target_values(y_col),
        feature_names=[str(c) for c in features.columns],
        target_field=f"column {target!r}",
        columns=columns,
    )


class _Places:
    """Names a data row of a table the way the user finds it: ``line N`` of a CSV file, ``row N`` of Parquet.

    CSV line numbers count the header and any blank lines or line breaks inside quoted fields (read
    with the ``csv`` module, only when a problem needs them).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.csv = path.suffix.lower() == ".csv"
        self._lines: list[int] | None = None

    def __call__(self, row: int) -> str:
        if not self.csv:
            return f"row {row + 1}"
        if self._lines is None:
            self._lines = self._record_lines()
        lines = self._lines
        return f"line {lines[row + 1] if row + 1 < len(lines) else row + 2}"

    def _record_lines(self) -> list[int]:
        """The line each non-blank record of the CSV file starts on (the header first)."""
        import csv

        starts: list[int] = []
        try:
            with open(self.path, newline="", encoding="utf-8", errors="replace") as f:
                reader = csv.reader(f)
                end = 0
                for record in reader:
                    if record:
                        starts.append(end + 1)
                    end = reader.line_num
        except (OSError, csv.Error):
            return []
        return starts


def _read_frame(path: Path, where: str) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except ImportError as exc:
        raise data_error(
            where, "", f"reading Parquet needs pyarrow or fastparquet: pip install pyarrow ({exc})", has_value=False
        ) from None
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise data_error(
            where,
            "",
            f"cannot read the file ({type(exc).__name__}: {detail})"
            if detail
            else f"cannot read the file ({type(exc).__name__})",
            has_value=False,
        ) from None


def _duplicate_columns(path: Path, frame: Any, where: str) -> list[Problem]:
    """Column names given twice (pandas would rename the second ``a`` to ``a.1`` without a word)."""
    if path.suffix.lower() == ".csv":
        import pandas as pd

        try:
            names = [str(c) for c in pd.read_csv(path, nrows=1, header=None, dtype=str).iloc[0].tolist()]
        except Exception:
            return []
    else:
        names = [str(c) for c in frame.columns]
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    return [
        Problem(
            where, f"column {name!r}", f"column names must be unique, but the header names it {n} times", value=name
        )
        for name, n in seen.items()
        if n > 1
    ]


def _split_off_target(frame: Any, target: str | None, where: str) -> tuple[Any, Any]:
    """The feature columns and the target column, which must be there and leave some features."""
    columns = list(frame.columns)
    if target is None:
        raise data_error(
            where,
            "target",
            f"a target column is required for CSV and Parquet files; available columns: {columns}",
            value=None,
        )
    if target not in frame.columns:
        raise data_error(
            where,
            "target",
            f"no such column{did_you_mean(target, columns, n=3)}; available columns: {columns}",
            value=target,
        )
    if len(frame) == 0:
        raise data_error(where, "", "the file has no data rows", has_value=False)
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise data_error(
            where,
            "target",
            "leaves no feature columns: the file must have at least one column besides the target",
            value=target,
        )
    y_col = frame[target]
    if getattr(y_col, "ndim", 1) != 1:  # a target named twice in the header: the duplicate-name problem says so
        y_col = y_col.iloc[:, 0]
    return features, y_col


def _missing_problems(features: Any, y_col: Any, where: str, at: _Places) -> list[Problem]:
    """Missing target values, then missing feature values: one problem per column, with its first place."""
    problems = []
    for col, values, what in [(y_col.name, y_col, "target values")] + [
        (c, features.iloc[:, j], "features") for j, c in enumerate(features.columns)
    ]:
        missing = values.isna().to_numpy()
        if missing.any():
            problems.append(
                Problem(
                    where,
                    f"column {col!r}",
                    f"{what} must not be missing: {int(missing.sum())} NaN/empty values "
                    f"(first on {at(int(np.flatnonzero(missing)[0]))})",
                    value=float("nan"),
                )
            )
    return problems


def _numeric_features(
    features: Any, columns: Any, categorical: str, where: str, at: _Places
) -> tuple[Any, list[Problem]]:
    """The features with non-numeric columns one-hot encoded (the exported model's encoding,
    :func:`~tuner.data._preprocessing.encode_table`), or one problem per such column (``"error"``)."""
    import pandas as pd

    non_numeric = [j for j in range(features.shape[1]) if not pd.api.types.is_numeric_dtype(features.iloc[:, j])]
    if not non_numeric:
        return features, []
    if categorical != "error":
        return encode_table(features, columns), []
    problems = []
    for j in non_numeric:
        column = features.iloc[:, j]
        row = _first_non_numeric(column)
        problems.append(
            Problem(
                where,
                f"column {features.columns[j]!r}",
                f"features must be numeric, but the column holds {column.dtype} values "
                f"(first non-numeric on {at(row)}); pass --categorical onehot (categorical='onehot' in Python) to "
                "one-hot encode non-numeric columns",
                value=column.iloc[row],
            )
        )
    return features, problems


def _first_non_numeric(column: Any) -> int:
    """The row of the first value of a column that does not read as a number (0 if all do)."""
    import pandas as pd

    try:
        bad = (pd.to_numeric(column, errors="coerce").isna() & column.notna()).to_numpy()
    except (TypeError, ValueError):
        return 0
    return int(np.flatnonzero(bad)[0]) if bad.any() else 0


def _finite_problems(features: Any, where: str, at: _Places) -> list[Problem]:
    """One problem per numeric column holding an infinite value (missing values are reported before)."""
    import pandas as pd

    problems = []
    for j in range(features.shape[1]):
        column = features.iloc[:, j]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        values = column.to_numpy(dtype=np.float64, na_value=0.0)
        rows = np.flatnonzero(np.isinf(values))
        if len(rows):
            problems.append(
                Problem(
                    where,
                    f"column {features.columns[j]!r}",
                    f"features must be finite: {len(rows)} inf values (first on {at(int(rows[0]))})",
                    value=float(values[rows[0]]),
                )
            )
    return problems


def _target_values(y_col: Any) -> np.ndarray:
    """The target column as booleans, integers, floats or strings."""
    import pandas as pd

    y = y_col.to_numpy()
    if pd.api.types.is_bool_dtype(y_col):
        return y.astype(bool)
    if pd.api.types.is_numeric_dtype(y_col):
        return y.astype(np.int64 if pd.api.types.is_integer_dtype(y_col) else np.float64)
    return np.asarray([str(v) for v in y], dtype=object)
