"""Tests for tuner.datasets: built-ins, user files, splits, scaling and every bad-data message."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from tuner.data import _builtin
from tuner.data import BUILTIN, Dataset, list_datasets, load_dataset, scale
from tuner.errors import ConfigError, DataError

HAS_PARQUET = any(importlib.util.find_spec(m) is not None for m in ("pyarrow", "fastparquet"))
SKLEARN_BUILTINS = ["digits", "breast_cancer", "wine", "iris", "diabetes"]
EXPECTED_TASKS = {
    "digits": "multiclass",
    "breast_cancer": "binary",
    "wine": "multiclass",
    "iris": "multiclass",
    "diabetes": "regression",
    "mnist1d": "multiclass",
}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache folder and an empty in-process mnist1d cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("TUNER_CACHE_DIR", str(folder))
    _builtin._mnist1d_cached.cache_clear()
    yield folder
    _builtin._mnist1d_cached.cache_clear()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Make every socket connection fail, and record the attempts."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access attempted during a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def table(n: int = 60, *, seed: int = 0) -> pd.DataFrame:
    """A small table: an id column, two numeric features and a 3-class string label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, size=n),
            "label": np.array(["cat", "dog", "emu"])[np.arange(n) % 3],
        }
    )


def sizes(ds: Dataset) -> tuple[int, int, int]:
    return len(ds.x_train), len(ds.x_val), len(ds.x_test)


def check_consistent(ds: Dataset) -> None:
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32
        assert len(x) == len(y)
        assert x.shape[1:] == ds.input_shape
        if ds.task == "regression":
            assert y.dtype == np.float32 and y.ndim == 1
        else:
            assert y.dtype == np.int64 and y.ndim == 1
            assert y.min() >= 0 and y.max() < ds.n_classes


# --------------------------------------------------------------------------------------------------
# Built-ins


def test_import_is_light_and_listing_is_static() -> None:
    code = (
        "import sys, tuner.data as d\n"
        "names = [x['name'] for x in d.list_datasets()]\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'pandas', 'sklearn', 'mnist1d') if m in sys.modules]\n"
        "print(names, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    assert out.stdout.strip() == f"{list(EXPECTED_TASKS)} []"


def test_list_datasets() -> None:
    listed = list_datasets()
    assert [d["name"] for d in listed] == list(BUILTIN) == list(EXPECTED_TASKS)
    for d in listed:
        assert set(d) == {"name", "task", "n_rows", "n_features", "n_classes", "source"}
        assert d["task"] == EXPECTED_TASKS[d["name"]]
    json.dumps(listed)


@pytest.mark.parametrize("name", SKLEARN_BUILTINS)
def test_builtin_loads(name: str) -> None:
    ds = load_dataset(name)
    info = BUILTIN[name].info()
    assert ds.name == name
    assert ds.task == info["task"]
    assert ds.source == f"scikit-learn bundled (load_{name})"
    assert sum(sizes(ds)) == info["n_rows"]
    assert ds.input_shape == (info["n_features"],)
    assert len(ds.feature_names) == info["n_features"]
    assert ds.n_classes == info["n_classes"]
    assert (ds.class_names is None) == (ds.task == "regression")
    # test gets ceil(0.2 n) rows, validation about 0.2 n of the whole
    assert len(ds.x_test) == int(np.ceil(0.2 * info["n_rows"]))
    assert abs(len(ds.x_val) - 0.2 * info["n_rows"]) <= 1.5
    check_consistent(ds)
    json.dumps(ds.describe())


def test_default_is_digits() -> None:
    ds = load_dataset()
    assert ds.name == "digits" and ds.n_classes == 10 and ds.class_names == [str(i) for i in range(10)]


def test_outputs_and_class_names() -> None:
    assert load_dataset("digits").n_outputs == 10
    cancer = load_dataset("breast_cancer")
    assert cancer.n_outputs == 1 and cancer.class_names == ["malignant", "benign"]
    assert load_dataset("diabetes").n_outputs == 1
    assert load_dataset("iris").class_names == ["setosa", "versicolor", "virginica"]


def test_stratified_splits_keep_class_proportions() -> None:
    ds = load_dataset("digits", seed=3)
    y_all = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    overall = np.bincount(y_all, minlength=10) / len(y_all)
    for y in (ds.y_train, ds.y_val, ds.y_test):
        share = np.bincount(y, minlength=10) / len(y)
        assert np.abs(share - overall).max() < 0.01


def test_same_seed_same_split_other_seed_other_split() -> None:
    a, b, c = load_dataset("wine", seed=1), load_dataset("wine", seed=1), load_dataset("wine", seed=2)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train)
    assert sizes(a) == sizes(c)


def test_explicit_task_on_builtin() -> None:
    ds = load_dataset("breast_cancer", task="multiclass")
    assert ds.task == "multiclass" and ds.n_outputs == 2
    ds = load_dataset("iris", task="regression")
    assert ds.task == "regression" and ds.n_classes is None and ds.y_train.dtype == np.float32


@settings(max_examples=25, deadline=None)
@given(val=st.floats(0.05, 0.45), test=st.floats(0.05, 0.45), seed=st.integers(0, 2**32 - 1))
def test_split_sizes_follow_the_fractions(val: float, test: float, seed: int) -> None:
    ds = load_dataset("iris", val_fraction=val, test_fraction=test, seed=seed)
    n_train, n_val, n_test = sizes(ds)
    assert n_train + n_val + n_test == 150
    assert n_test == int(np.ceil(test * 150))
    assert abs(n_val - val * 150) <= 1.5


# --------------------------------------------------------------------------------------------------
# mnist1d


def test_mnist1d_generated_locally_and_cached_without_network(
    no_network: list[object], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()

    ds = load_dataset("mnist1d", seed=0)

    assert no_network == []
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # make_dataset's reseeding is undone
    assert ds.source == _builtin.MNIST1D_SOURCE
    assert len(ds.x_train) + len(ds.x_val) == 4000 and len(ds.x_val) == 800
    assert ds.x_test.shape == (1000, 40) and ds.input_shape == (40,)
    assert ds.n_classes == 10 and ds.n_outputs == 10
    check_consistent(ds)

    files = list(cache_dir.glob("mnist1d-*.npz"))
    assert len(files) == 1 and not list(cache_dir.glob("*.tmp"))
    with np.load(files[0]) as cached:
        np.testing.assert_array_equal(cached["x_test"], ds.x_test)  # mnist1d's own test split, untouched
        np.testing.assert_array_equal(cached["y_test"], ds.y_test)

    # A later process reads the disk cache instead of generating.
    import mnist1d.data

    def must_not_generate(*args: object, **kwargs: object) -> None:
        raise AssertionError("mnist1d was generated although the disk cache exists")

    monkeypatch.setattr(mnist1d.data, "make_dataset", must_not_generate)
    _builtin._mnist1d_cached.cache_clear()
    again = load_dataset("mnist1d", seed=0)
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    np.testing.assert_array_equal(again.y_val, ds.y_val)
    # The arrays handed out are copies: changing them does not change the cache.
    again.x_test[0, 0] = 99.0
    assert load_dataset("mnist1d").x_test[0, 0] != 99.0


def test_mnist1d_corrupt_cache_is_regenerated(no_network: list[object], cache_dir: Path) -> None:
    cache_file = _builtin._mnist1d_cache_file()
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(b"not an npz file")
    ds = load_dataset("mnist1d")
    assert ds.x_test.shape == (1000, 40)
    with np.load(cache_file) as cached:
        assert cached["x"].shape == (4000, 40)


# --------------------------------------------------------------------------------------------------
# Scaling


def test_standard_scaling_is_fitted_on_train_only() -> None:
    ds = load_dataset("wine")
    scaled = scale(ds, "standard")
    assert scaled.scaling == "standard" and ds.scaling == "none"
    np.testing.assert_allclose(scaled.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.x_train.std(axis=0), 1, atol=1e-4)
    assert np.abs(scaled.x_val.mean(axis=0)).max() > 1e-3
    assert np.abs(scaled.x_test.mean(axis=0)).max() > 1e-3
    by_hand = StandardScaler().fit(ds.x_train.astype(np.float64))
    for split in ("x_train", "x_val", "x_test"):
        np.testing.assert_allclose(getattr(scaled, split), by_hand.transform(getattr(ds, split)), rtol=1e-5, atol=1e-5)
        assert getattr(scaled, split).dtype == np.float32
    np.testing.assert_array_equal(scaled.y_train, ds.y_train)
    # the input is not modified
    np.testing.assert_array_equal(ds.x_train, load_dataset("wine").x_train)


def test_minmax_scaling_and_none() -> None:
    ds = load_dataset("iris")
    scaled = scale(ds, "minmax")
    np.testing.assert_allclose(scaled.x_train.min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(scaled.x_train.max(axis=0), 1, atol=1e-6)
    by_hand = MinMaxScaler().fit(ds.x_train)
    np.testing.assert_allclose(scaled.x_test, by_hand.transform(ds.x_test), atol=1e-6)
    same = scale(ds, "none")
    assert same is not ds and same.scaling == "none"
    np.testing.assert_array_equal(same.x_val, ds.x_val)
    assert same.x_val is not ds.x_val


def test_scaling_any_rank(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5, 3, size=(60, 4, 3))
    np.savez(tmp_path / "cube.npz", x=x, y=np.arange(60) % 2)
    ds = load_dataset(tmp_path / "cube.npz")
    scaled = scale(ds, "standard")
    assert scaled.input_shape == (4, 3)
    by_hand = StandardScaler().fit(ds.x_train.reshape(len(ds.x_train), -1))
    np.testing.assert_allclose(
        scaled.x_val, by_hand.transform(ds.x_val.reshape(len(ds.x_val), -1)).reshape(ds.x_val.shape), atol=1e-5
    )


def test_scale_rejects_unknown_kind() -> None:
    with pytest.raises(DataError, match=r"scale: kind: must be one of \['standard', 'minmax', 'none'\]; got 'zscore'"):
        scale(load_dataset("iris"), "zscore")


# --------------------------------------------------------------------------------------------------
# User files


def test_csv_string_labels(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pets.csv", table())
    ds = load_dataset(str(path), target="label")
    assert ds.name == "pets.csv" and ds.source == f"file {path.resolve()}"
    assert ds.task == "multiclass" and ds.class_names == ["cat", "dog", "emu"] and ds.n_classes == 3
    assert ds.feature_names == ["id", "a", "b"]
    assert sizes(ds) == (36, 12, 12)
    check_consistent(ds)
    # every row lands in exactly one split, and each label is mapped to its sorted index
    ids = np.concatenate([ds.x_train[:, 0], ds.x_val[:, 0], ds.x_test[:, 0]]).astype(int)
    assert sorted(ids) == list(range(60))
    np.testing.assert_array_equal(ds.y_train, ds.x_train[:, 0].astype(int) % 3)


def test_csv_task_inference(tmp_path: Path) -> None:
    frame = table(80)
    frame["binary"] = np.arange(80) % 2
    frame["many"] = np.arange(80) % 25  # integers, more than 20 distinct values
    frame["real"] = np.linspace(0, 1, 80)
    frame["few"] = (np.arange(80) % 4).astype(float)  # integer-valued floats, 4 values
    path = write_csv(tmp_path / "t.csv", frame[["a", "b", "binary", "many", "real", "few"]])
    assert load_dataset(path, target="binary").task == "binary"
    many = load_dataset(path, target="many")
    assert many.task == "regression"
    np.testing.assert_array_equal(
        np.sort(np.concatenate([many.y_train, many.y_val, many.y_test])), np.sort(frame["many"])
    )
    real = load_dataset(path, target="real")
    assert real.task == "regression" and real.y_train.dtype == np.float32 and real.n_classes is None
    few = load_dataset(path, target="few")
    assert few.task == "multiclass" and few.class_names == ["0", "1", "2", "3"]
    assert load_dataset(path, target="few", task="regression").task == "regression"


def test_csv_categorical_onehot(tmp_path: Path) -> None:
    frame = table()
    frame["color"] = np.array(["red", "green"])[np.arange(60) % 2]
    path = write_csv(tmp_path / "c.csv", frame)
    ds = load_dataset(path, target="label", categorical="onehot")
    assert ds.feature_names == ["id", "a", "b", "color_green", "color_red"]
    np.testing.assert_array_equal(ds.x_train[:, 3] + ds.x_train[:, 4], 1)


@pytest.mark.skipif(not HAS_PARQUET, reason="neither pyarrow nor fastparquet is installed")
def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "pets.parquet"
    table().to_parquet(path)
    ds = load_dataset(path, target="label")
    assert ds.name == "pets.parquet" and ds.task == "multiclass" and sizes(ds) == (36, 12, 12)
    check_consistent(ds)


def test_npz_without_test_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(50, 3)), y=np.arange(50) % 2)
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.task == "binary" and ds.class_names == ["0", "1"] and ds.feature_names == ["x0", "x1", "x2"]
    assert sizes(ds) == (30, 10, 10)
    check_consistent(ds)


def test_npz_with_test_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x_test = rng.normal(size=(7, 2))
    y_test = rng.normal(size=7)
    np.savez(tmp_path / "r.npz", x=rng.normal(size=(40, 2)), y=rng.normal(size=40), x_test=x_test, y_test=y_test)
    ds = load_dataset(tmp_path / "r.npz", val_fraction=0.25)
    assert ds.task == "regression"
    assert sizes(ds) == (30, 10, 7)
    np.testing.assert_allclose(ds.x_test, x_test.astype(np.float32))
    np.testing.assert_allclose(ds.y_test, y_test.astype(np.float32))
    check_consistent(ds)


def test_errors_are_config_errors() -> None:
    assert issubclass(DataError, ConfigError)


# --------------------------------------------------------------------------------------------------
# Bad data: every message names the file or dataset, the field, the rule and the value


def raises(pattern: str) -> pytest.RaisesExc[DataError]:
    return pytest.raises(DataError, match=pattern)


def test_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    with raises(re.escape(f"{missing}: file not found")):
        load_dataset(missing, target="y")


def test_unknown_builtin_suggests_close_names() -> None:
    with raises(
        r"name_or_path: must be a built-in dataset \(digits, breast_cancer, wine, iris, diabetes, mnist1d\)"
        r" or an existing file \(did you mean 'digits' or 'diabetes'\?\); got 'digts'"
    ):
        load_dataset("digts")
    with raises(r"did you mean 'mnist1d'\?"):
        load_dataset("mnist")


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("a,b\n1,2\n")
    with raises(r"data\.txt: file extension: must be one of \['\.csv', '\.parquet', '\.npz'\]; got '\.txt'"):
        load_dataset(path, target="b")


def test_missing_target_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pets.csv", table())
    with raises(
        r"pets\.csv: target: no such column \(did you mean 'label'\?\); available columns: \['id', 'a', 'b', 'label'\]"
        r"; got 'lable'"
    ):
        load_dataset(path, target="lable")
    with raises(r"pets\.csv: target: a target column is required.*\['id', 'a', 'b', 'label'\]; got None"):
        load_dataset(path)


def test_nan_in_target(tmp_path: Path) -> None:
    frame = table()
    frame.loc[[4, 9], "label"] = None
    path = write_csv(tmp_path / "pets.csv", frame)
    with raises(
        r"pets\.csv: column 'label': target values must not be missing: 2 NaN/empty values \(first on line 6\); got nan"
    ):
        load_dataset(path, target="label")
    y = np.arange(30, dtype=float) % 2
    y[[3, 5, 7]] = np.nan
    np.savez(tmp_path / "n.npz", x=np.ones((30, 2)), y=y)
    with raises(r"n\.npz: y: target values must not be missing: 3 NaN values \(first in row 3\); got nan"):
        load_dataset(tmp_path / "n.npz")


def test_nan_or_inf_in_features(tmp_path: Path) -> None:
    frame = table()
    frame.loc[7, "a"] = np.nan
    path = write_csv(tmp_path / "nan.csv", frame)
    with raises(r"nan\.csv: column 'a': features must not be missing: 1 NaN/empty values \(first on line 9\); got nan"):
        load_dataset(path, target="label")
    frame = table().astype({"b": float})
    frame.loc[[2, 3], "b"] = np.inf
    path = write_csv(tmp_path / "inf.csv", frame)
    with raises(r"inf\.csv: column 'b': features must be finite: 2 inf values \(first on line 4\); got inf"):
        load_dataset(path, target="label")
    x = np.ones((30, 2))
    x[5, 1] = -np.inf
    np.savez(tmp_path / "inf.npz", x=x, y=np.arange(30) % 2)
    with raises(r"inf\.npz: x: features must be finite: 0 NaN and 1 inf values in 1 rows \(first in x\[5\]\); got -inf"):
        load_dataset(tmp_path / "inf.npz")


def test_one_class_only(tmp_path: Path) -> None:
    frame = table()
    frame["label"] = "cat"
    path = write_csv(tmp_path / "cats.csv", frame)
    with raises(r"cats\.csv: column 'label': needs at least 2 distinct target values, found one class only; got 'cat'"):
        load_dataset(path, target="label")


def test_npz_length_mismatch(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", x=np.ones((10, 2)), y=np.arange(9) % 2)
    with raises(r"m\.npz: y: must have as many rows as x \(10\); got 9"):
        load_dataset(tmp_path / "m.npz")


def test_npz_missing_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", features=np.ones((10, 2)), y=np.arange(10) % 2)
    with raises(r"a\.npz: x: required array is missing; the file holds arrays \['features', 'y'\]"):
        load_dataset(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x=np.ones((10, 2)))
    with raises(r"b\.npz: y: required array is missing; the file holds arrays \['x'\]"):
        load_dataset(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", x=np.ones((10, 2)), y=np.arange(10) % 2, x_test=np.ones((3, 2)))
    with raises(r"c\.npz: y_test: is required when x_test is given"):
        load_dataset(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", x=np.ones((10, 2)), y=np.ones((10, 3)))
    with raises(r"d\.npz: y: must be 1-D, one target per row: shape \(n,\); got \(10, 3\)"):
        load_dataset(tmp_path / "d.npz")


def test_non_numeric_features_need_an_encoding(tmp_path: Path) -> None:
    frame = table()
    frame["color"] = np.array(["red", "green"])[np.arange(60) % 2]
    frame["size"] = "big"
    frame["weight"] = (np.arange(60) * 1.5).astype(str)
    frame.loc[5, "weight"] = "heavy"  # one stray string makes the column non-numeric
    path = write_csv(tmp_path / "c.csv", frame)
    with raises(
        r"c\.csv: column 'color': features must be numeric, but the column holds \w+ values \(first non-numeric on "
        r"line 2\); pass --categorical onehot \(categorical='onehot' in Python\) to one-hot encode non-numeric "
        r"columns; got 'red'\n"
        r".*c\.csv: column 'size': .*; got 'big'\n"
        r".*c\.csv: column 'weight': .*\(first non-numeric on line 7\).*; got 'heavy'"
    ):
        load_dataset(path, target="label")
    np.savez(tmp_path / "s.npz", x=np.array([["a"], ["b"]] * 10), y=np.arange(20) % 2)
    with raises(r"s\.npz: x: features must be numeric.*; got dtype\('<U1'\)"):
        load_dataset(tmp_path / "s.npz")


def test_class_too_small_to_stratify(tmp_path: Path) -> None:
    frame = table()
    frame.loc[[0, 1], "label"] = "rare"
    path = write_csv(tmp_path / "rare.csv", frame)
    with raises(
        r"rare\.csv: class 'rare': has too few rows for a stratified train/val/test split, "
        r"which needs at least 3 rows of every class; got 2"
    ):
        load_dataset(path, target="label")
    with raises(r"dataset 'diabetes': target: \d+ more classes have fewer than 3 rows \(\d+ of 214 in all\)$"):
        load_dataset("diabetes", task="multiclass")  # 214 distinct integer targets taken as classes


def test_split_too_small_for_all_classes(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": np.arange(30.0), "y": np.arange(30) % 10})  # 10 classes, 3 rows each
    path = write_csv(tmp_path / "tiny.csv", frame)
    with raises(
        r"tiny\.csv: test_fraction: splits 30 rows into 24 and 6; each part needs at least 10 rows "
        r"\(one per class, 10 classes\); got 0\.2"
    ):
        load_dataset(path, target="y")
    path = write_csv(tmp_path / "two.csv", pd.DataFrame({"a": [1.0, 2.0], "y": [0.5, 1.5]}))
    with raises(r"two\.csv: val_fraction: splits 1 rows into 0 and 1; each part needs at least 1 rows; got 0\.2"):
        load_dataset(path, target="y")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"val_fraction": 0}, r"load_dataset: val_fraction: must be a number > 0 and < 1; got 0$"),
        ({"test_fraction": 1.5}, r"load_dataset: test_fraction: must be a number > 0 and < 1; got 1\.5$"),
        ({"val_fraction": "0.2"}, r"val_fraction: must be a number > 0 and < 1; got '0\.2'"),
        ({"test_fraction": float("nan")}, r"test_fraction: must be a number > 0 and < 1; got nan"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, r"val_fraction \+ test_fraction: must be < 1 .*; got 1\.1"),
        (
            {"task": "classification"},
            r"task: must be one of \['binary', 'multiclass', 'regression', 'auto'\]; got 'classification'",
        ),
        ({"categorical": "ordinal"}, r"categorical: must be one of \['error', 'onehot'\]; got 'ordinal'"),
        ({"seed": -1}, r"seed: must be an integer in \[0, 2\*\*32\); got -1"),
        ({"target": "y"}, r"dataset 'iris': target: is only for CSV and Parquet files.*; got 'y'"),
    ],
)
def test_invalid_options(kwargs: dict[str, object], pattern: str) -> None:
    with raises(pattern):
        load_dataset("iris", **kwargs)


def test_task_contradicting_the_data(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pets.csv", table())
    with raises(
        r"pets\.csv: column 'label': task='binary' needs exactly 2 classes, but the target has 3 distinct "
        r"values: \['cat', 'dog', 'emu'\]; got 3"
    ):
        load_dataset(path, target="label", task="binary")
    with raises(
        r"pets\.csv: column 'label': task='regression' needs a numeric target, but the target holds strings; got 'cat'"
    ):
        load_dataset(path, target="label", task="regression")
    path = write_csv(tmp_path / "real.csv", pd.DataFrame({"a": np.arange(30.0), "y": np.arange(30) / 4}))
    with raises(
        r"real\.csv: column 'y': task='multiclass' needs class labels, but the target has non-integer values; got 0\.25"
    ):
        load_dataset(path, target="y", task="multiclass")
    with raises(r"dataset 'wine': target: task='binary' needs exactly 2 classes.*; got 3"):
        load_dataset("wine", task="binary")


def test_target_not_allowed_for_npz_and_unseen_test_labels(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.ones((30, 2)), y=np.arange(30) % 2, x_test=np.ones((3, 2)), y_test=[0, 1, 2])
    with raises(r"d\.npz: target: is only for CSV and Parquet files.*; got 'y'"):
        load_dataset(tmp_path / "d.npz", target="y")
    with raises(r"d\.npz: y_test: has labels that never occur in y \(the training data\); got \['2'\]"):
        load_dataset(tmp_path / "d.npz")
