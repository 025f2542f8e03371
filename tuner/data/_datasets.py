"""Datasets: the built-in ones and the user's own files, split into train/val/test and checked.

Everything here is numpy, pandas and scikit-learn, and only numpy is imported up front: importing this
module does not import Keras, TensorFlow or pandas, so the CLI can list and check data quickly.

Built-in datasets come with scikit-learn (``digits``, ``breast_cancer``, ``wine``, ``iris``,
``diabetes``) or are generated locally (``mnist1d``); nothing is ever downloaded. The ``keras.datasets``
names ``mnist``, ``fashion_mnist`` and ``cifar10`` are read from the Keras cache (``~/.keras/datasets``
or ``$KERAS_HOME/datasets``) when their files are there, and refused at once otherwise. User data is a
``.csv`` or ``.parquet`` file with a named target column, or an ``.npz`` file with arrays ``x`` and
``y`` (and optionally ``x_test`` and ``y_test``); ``x`` may hold flat rows ``(N, F)``, sequences
``(N, T, F)`` or images ``(N, H, W, C)``.

:func:`as_view` reshapes a dataset for a model family: ``digits`` as 8x8x1 images, ``mnist1d`` as
length-40 sequences, images as sequences of rows, anything as flat vectors.

Example:

>>> from tuner.data import load_dataset, scale
>>> data = scale(load_dataset("iris", seed=0), "standard")
>>> data.task, data.input_shape, data.n_outputs
('multiclass', (4,), 3)
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import logging
import math
import numbers
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tuner.errors import DataError, Problem
from tuner.space import CATEGORICAL, FAMILIES, SCALINGS, TASKS
from tuner.space import VIEWS as CATALOGUE_VIEWS

__all__ = ["BUILTIN", "KERAS_DATASETS", "VIEWS", "Dataset", "as_view", "keras_cache_dir", "list_datasets",
           "load_dataset", "resolve_view", "scale"]

_logger = logging.getLogger(__name__)

FILE_SUFFIXES = (".csv", ".parquet", ".npz")

# A numeric target with more distinct values than this is taken as a regression target (task="auto").
MAX_AUTO_CLASSES = 20

_CALLER = "load_dataset"


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

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example: ``x_train.shape[1:]``."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def n_outputs(self) -> int:
        """Units of the output layer: ``n_classes`` for multiclass, 1 for binary and regression."""
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
        }


# --------------------------------------------------------------------------------------------------
# Built-in datasets


@dataclasses.dataclass(frozen=True)
class _Raw:
    """A dataset before splitting. ``x_test``/``y_test`` are set when the source brings a test split."""

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    target_names: list[str] | None = None  # names of the labels 0..K-1, when the source has them
    target_field: str = "target"  # how error messages name the target


@dataclasses.dataclass(frozen=True)
class BuiltinDataset:
    """A built-in dataset: static facts for listing it, and how to load it."""

    name: str
    task: str
    n_rows: int
    n_features: int
    n_classes: int | None
    source: str
    load: Callable[[], _Raw] = dataclasses.field(repr=False, compare=False)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "n_rows": self.n_rows,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "source": self.source,
        }


def _sklearn_loader(name: str) -> Callable[[], _Raw]:
    def load() -> _Raw:
        from sklearn import datasets as sk_datasets

        bunch = getattr(sk_datasets, f"load_{name}")()
        target_names = getattr(bunch, "target_names", None)
        return _Raw(
            x=bunch.data,
            y=bunch.target,
            feature_names=[str(f) for f in bunch.feature_names],
            target_names=None if target_names is None else [str(t) for t in target_names],
        )

    return load


MNIST1D_SOURCE = "mnist1d.make_dataset (generated locally)"


def _cache_dir() -> Path:
    """``$TUNER_CACHE_DIR``, else ``~/.cache/tuner``."""
    env = os.environ.get("TUNER_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tuner"


def _generate_mnist1d() -> dict[str, np.ndarray]:
    """Run ``mnist1d.data.make_dataset`` with its default arguments, restoring the global random state
    (``make_dataset`` reseeds ``numpy.random`` and ``random``)."""
    from mnist1d.data import get_dataset_args, make_dataset  # never get_dataset: that one downloads

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {
        "x": np.asarray(data["x"], dtype=np.float32),
        "y": np.asarray(data["y"], dtype=np.int64),
        "x_test": np.asarray(data["x_test"], dtype=np.float32),
        "y_test": np.asarray(data["y_test"], dtype=np.int64),
    }


def _mnist1d_shapes_ok(arrays: dict[str, np.ndarray]) -> bool:
    return (
        arrays["x"].shape == (4000, 40)
        and arrays["y"].shape == (4000,)
        and arrays["x_test"].shape == (1000, 40)
        and arrays["y_test"].shape == (1000,)
    )


def _read_mnist1d_cache(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    except FileNotFoundError:
        return None
    except Exception as exc:  # a corrupt or foreign file: regenerate and overwrite it
        _logger.warning("Ignoring unreadable mnist1d cache %s (%s); generating the data again.", path, exc)
        return None
    if not _mnist1d_shapes_ok(arrays):
        _logger.warning("Ignoring mnist1d cache %s with unexpected shapes; generating the data again.", path)
        return None
    return arrays


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` through a temporary file in the same folder and ``os.replace`` it into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        _logger.warning("Cannot write the dataset cache %s (%s); going on without it.", path, exc)
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if not isinstance(exc, OSError):
            raise
        _logger.warning("Cannot write the dataset cache %s (%s); going on without it.", path, exc)


@functools.cache
def _mnist1d_cached(cache_file: str) -> dict[str, np.ndarray]:
    """mnist1d's arrays: from this process's memory, else the on-disk cache, else generated and cached."""
    path = Path(cache_file)
    arrays = _read_mnist1d_cache(path)
    if arrays is None:
        arrays = _generate_mnist1d()
        _write_atomically(path, arrays)
    for a in arrays.values():
        a.setflags(write=False)  # shared by every caller in this process
    return arrays


def _mnist1d_cache_file() -> Path:
    """The cache file, named by mnist1d's version (read without importing mnist1d, which is slow).

    The data is always generated with mnist1d's default arguments, so the version names it.
    """
    from importlib import metadata

    try:
        version = metadata.version("mnist1d")
    except metadata.PackageNotFoundError:
        raise DataError(
            [Problem("dataset 'mnist1d'", "", "needs the mnist1d package: pip install mnist1d", has_value=False)]
        ) from None
    return _cache_dir() / f"mnist1d-{version}-default-v1.npz"


def _load_mnist1d() -> _Raw:
    arrays = _mnist1d_cached(str(_mnist1d_cache_file()))
    return _Raw(
        x=arrays["x"],
        y=arrays["y"],
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
        feature_names=[f"t{i}" for i in range(arrays["x"].shape[1])],
    )


def _sk(name: str, task: str, n_rows: int, n_features: int, n_classes: int | None) -> BuiltinDataset:
    return BuiltinDataset(
        name, task, n_rows, n_features, n_classes, f"scikit-learn bundled (load_{name})", _sklearn_loader(name)
    )


BUILTIN: dict[str, BuiltinDataset] = {
    d.name: d
    for d in (
        _sk("digits", "multiclass", 1797, 64, 10),
        _sk("breast_cancer", "binary", 569, 30, 2),
        _sk("wine", "multiclass", 178, 13, 3),
        _sk("iris", "multiclass", 150, 4, 3),
        _sk("diabetes", "regression", 442, 10, None),
        BuiltinDataset("mnist1d", "multiclass", 5000, 40, 10, MNIST1D_SOURCE, _load_mnist1d),
    )
}
"""The built-in datasets by name. ``digits`` is the default."""


# --------------------------------------------------------------------------------------------------
# keras.datasets names, read from the Keras cache only (never downloaded)

_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz")
_CIFAR_ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# Where Keras 3 extracts cifar-10-python.tar.gz (older Keras: datasets/cifar-10-batches-py).
_CIFAR_DIRS = ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py")


def keras_cache_dir() -> Path:
    """The folder ``keras.datasets`` keeps its files in: ``$KERAS_HOME/datasets``, else ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".keras") / "datasets"


def _keras_cache_dirs() -> list[Path]:
    """Folders searched: the cache folder, and ``/tmp/.keras/datasets`` (Keras's fallback for an unwritable home)."""
    dirs = [keras_cache_dir()]
    if not os.environ.get("KERAS_HOME"):
        dirs.append(Path(tempfile.gettempdir()) / ".keras" / "datasets")
    return dirs


def _find_cached(relative: str) -> Path | None:
    for folder in _keras_cache_dirs():
        path = folder / relative
        if path.exists():
            return path
    return None


def _not_cached(name: str, what: str, where: Path, source: str, example: str) -> DataError:
    close = difflib.get_close_matches(name, list(BUILTIN), n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]!r}? It is built in and generated locally)" if close else ""
    return DataError([Problem(
        f"dataset {name!r}", "",
        f"is not in the Keras cache, and tuner never downloads: place {what} at {where} ({source}; for example: "
        f"{example}), or set KERAS_HOME to the folder above the datasets/ folder that holds it{hint}",
        has_value=False)])


def _keras_arrays(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> _Raw:
    x, x_test = np.asarray(x), np.asarray(x_test)
    if x.ndim == 3:  # grayscale: add the channel axis, so that the examples are images (H, W, 1)
        x, x_test = x[..., None], x_test[..., None]
    return _Raw(x=x, y=np.asarray(y).reshape(-1), x_test=x_test, y_test=np.asarray(y_test).reshape(-1),
                feature_names=[f"px{i}" for i in range(int(math.prod(x.shape[1:])))])


def _load_keras_mnist() -> _Raw:
    path = _find_cached("mnist.npz")
    if path is None:
        target, url = keras_cache_dir() / "mnist.npz", f"{_KERAS_ORIGIN}mnist.npz"
        raise _not_cached("mnist", "mnist.npz", target, f"the file keras.datasets.mnist downloads, from {url}",
                          f"mkdir -p {target.parent} && curl -L -o {target} {url}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    except Exception as exc:
        raise DataError([Problem(str(path), "", f"cannot read the Keras MNIST file ({type(exc).__name__}: {exc}); "
                                 "it must hold arrays x_train, y_train, x_test, y_test", has_value=False)]) from None
    return _keras_arrays(arrays[0], arrays[1], arrays[2], arrays[3])


def _read_idx_gz(path: Path, offset: int) -> np.ndarray:
    import gzip

    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def _load_keras_fashion_mnist() -> _Raw:
    found = {file: _find_cached(f"fashion-mnist/{file}") for file in _FASHION_FILES}
    missing = [file for file, path in found.items() if path is None]
    if missing:
        folder = keras_cache_dir() / "fashion-mnist"
        raise _not_cached("fashion_mnist", ", ".join(missing), folder,
                          f"files keras.datasets.fashion_mnist downloads, from {_KERAS_ORIGIN}<file>",
                          f"mkdir -p {folder} && for f in {' '.join(missing)}; do curl -L -o {folder}/$f "
                          f"{_KERAS_ORIGIN}$f; done")
    paths = [found[file] for file in _FASHION_FILES]
    try:
        y, y_test = _read_idx_gz(paths[0], 8), _read_idx_gz(paths[2], 8)
        x = _read_idx_gz(paths[1], 16).reshape(len(y), 28, 28)
        x_test = _read_idx_gz(paths[3], 16).reshape(len(y_test), 28, 28)
    except Exception as exc:
        raise DataError([Problem(str(paths[0].parent), "", f"cannot read the Keras Fashion-MNIST files "
                                 f"({type(exc).__name__}: {exc})", has_value=False)]) from None
    return _keras_arrays(x, y, x_test, y_test)


class _ArraysOnlyUnpickler:
    """Unpickles CIFAR batches, refusing every global but the few numpy needs to rebuild arrays."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar")}

    @classmethod
    def load(cls, file: Any) -> Any:
        import pickle

        allowed = cls._ALLOWED

        class Unpickler(pickle.Unpickler):
            def find_class(self, module: str, name: str) -> Any:
                if (module, name) not in allowed:
                    raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
                return super().find_class(module, name)

        return Unpickler(file, encoding="bytes").load()


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in _ArraysOnlyUnpickler.load(f).items()}
    data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return data, np.asarray(d["labels"], dtype=np.int64)


def _load_keras_cifar10() -> _Raw:
    folder = next((p for p in (_find_cached(d) for d in _CIFAR_DIRS) if p is not None), None)
    if folder is None:
        target = keras_cache_dir() / _CIFAR_DIRS[0]
        raise _not_cached("cifar10", "the folder cifar-10-batches-py (data_batch_1 .. data_batch_5, test_batch)",
                          target, f"what keras.datasets.cifar10 extracts from {_CIFAR_ORIGIN}",
                          f"mkdir -p {target.parent} && curl -L {_CIFAR_ORIGIN} | tar -xz -C {target.parent}")
    try:
        parts = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
        x_test, y_test = _cifar_batch(folder / "test_batch")
    except Exception as exc:
        raise DataError([Problem(str(folder), "", f"cannot read the CIFAR-10 batches ({type(exc).__name__}: {exc}); "
                                 "the folder must hold data_batch_1 .. data_batch_5 and test_batch",
                                 has_value=False)]) from None
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return _keras_arrays(x, y, x_test, y_test)


KERAS_DATASETS: dict[str, BuiltinDataset] = {
    d.name: d
    for d in (
        BuiltinDataset("mnist", "multiclass", 70000, 784, 10, "Keras cache (datasets/mnist.npz)", _load_keras_mnist),
        BuiltinDataset("fashion_mnist", "multiclass", 70000, 784, 10, "Keras cache (datasets/fashion-mnist/)",
                       _load_keras_fashion_mnist),
        BuiltinDataset("cifar10", "multiclass", 60000, 3072, 10, "Keras cache (datasets/cifar-10-batches-py-target/)",
                       _load_keras_cifar10),
    )
}
"""``keras.datasets`` names, loaded from the Keras cache only; their examples are images (H, W, C)."""


def _keras_cached(name: str) -> bool:
    """Whether the files of a ``keras.datasets`` name are in the Keras cache (nothing is read)."""
    if name == "mnist":
        return _find_cached("mnist.npz") is not None
    if name == "fashion_mnist":
        return all(_find_cached(f"fashion-mnist/{f}") is not None for f in _FASHION_FILES)
    return any(_find_cached(d) is not None for d in _CIFAR_DIRS)


def list_datasets(*, keras_datasets: bool = False) -> list[dict[str, Any]]:
    """The built-in datasets: one dict each with name, task, n_rows, n_features, n_classes and source.

    The numbers are static: nothing is loaded or generated. With ``keras_datasets`` the ``keras.datasets``
    names follow, their source saying whether their files are in the Keras cache here (they are never
    downloaded).
    """
    rows = [d.info() for d in BUILTIN.values()]
    if keras_datasets:
        for name, d in KERAS_DATASETS.items():
            state = "cached" if _keras_cached(name) else f"not cached: put the files in {keras_cache_dir()}"
            rows.append({**d.info(), "source": f"{d.source}, {state}"})
    return rows


# --------------------------------------------------------------------------------------------------
# Loading


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
    spec = os.fspath(name_or_path)
    if spec in BUILTIN or spec in KERAS_DATASETS:
        builtin = BUILTIN.get(spec) or KERAS_DATASETS[spec]
        if target is not None:
            raise DataError(
                [
                    Problem(
                        f"dataset {spec!r}",
                        "target",
                        "is only for CSV and Parquet files; built-in datasets have their own target",
                        value=target,
                    )
                ]
            )
        raw = builtin.load()
        name, source, where = spec, builtin.source, f"dataset {spec!r}"
    else:
        path = _resolve_path(spec)
        where = spec
        suffix = path.suffix.lower()
        if suffix == ".npz":
            if target is not None:
                raise DataError(
                    [
                        Problem(
                            where,
                            "target",
                            "is only for CSV and Parquet files; .npz files take the target from array 'y'",
                            value=target,
                        )
                    ]
                )
            raw = _read_npz(path, where)
        else:
            raw = _read_table(path, where, target=target, categorical=categorical)
        name, source = path.name, f"file {path.resolve()}"

    y_all = raw.y if raw.y_test is None else np.concatenate([np.asarray(raw.y), np.asarray(raw.y_test)])
    task_, y_enc_all, classes = _encode_target(y_all, task=task, where=where, field=raw.target_field)
    n = len(raw.y)
    y_enc, y_test_enc = y_enc_all[:n], (None if raw.y_test is None else y_enc_all[n:])

    class_names: list[str] | None = None
    if task_ != "regression":
        class_names = [_label_str(c) for c in classes]
        if raw.target_names is not None and np.array_equal(classes, np.arange(len(raw.target_names))):
            class_names = list(raw.target_names)
        if y_test_enc is not None:
            _check_test_classes(y_enc, y_test_enc, class_names, where)

    x = _as_features(raw.x)
    splits = _split(
        x,
        y_enc,
        x_test=None if raw.x_test is None else _as_features(raw.x_test),
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
        **splits,
        n_classes=None if class_names is None else len(class_names),
        feature_names=list(raw.feature_names),
        class_names=class_names,
        source=source,
    )


def _check_options(*, task: str, val_fraction: float, test_fraction: float, seed: int, categorical: str) -> None:
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
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        problems.append(Problem(_CALLER, "seed", "must be an integer in [0, 2**32)", value=seed))
    if problems:
        raise DataError(problems)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _resolve_path(spec: str) -> Path:
    """The path of a user file; errors for unknown built-in names, missing files and unknown formats."""
    path = Path(spec).expanduser()
    looks_like_path = bool(path.suffix) or os.sep in spec or (os.altsep is not None and os.altsep in spec)
    if not path.exists():
        if not looks_like_path:
            close = difflib.get_close_matches(spec, list(BUILTIN), n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            raise DataError(
                [
                    Problem(
                        _CALLER,
                        "name_or_path",
                        f"must be a built-in dataset ({', '.join(BUILTIN)}) or an existing file{hint}",
                        value=spec,
                    )
                ]
            )
        raise DataError([Problem(spec, "", f"file not found (looked for {path.resolve()})", has_value=False)])
    if path.is_dir():
        raise DataError([Problem(spec, "", "is a folder; expected a .csv, .parquet or .npz file", has_value=False)])
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise DataError(
            [Problem(spec, "file extension", f"must be one of {list(FILE_SUFFIXES)}", value=path.suffix or "(none)")]
        )
    return path


def _read_npz(path: Path, where: str) -> _Raw:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as exc:
        raise DataError(
            [
                Problem(
                    where,
                    "",
                    f"cannot read the .npz file: arrays of Python objects are not supported ({exc})",
                    has_value=False,
                )
            ]
        ) from None
    except Exception as exc:
        raise DataError(
            [Problem(where, "", f"cannot read the .npz file ({type(exc).__name__}: {exc})", has_value=False)]
        ) from None

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

    x, y = arrays["x"], arrays["y"]
    x_test, y_test = arrays.get("x_test"), arrays.get("y_test")
    for name_x, name_y, xs, ys in (("x", "y", x, y), ("x_test", "y_test", x_test, y_test)):
        if xs is None or ys is None:
            continue
        if ys.dtype.kind == "f" and np.isnan(ys).any():
            problems.append(_missing_target(where, name_y, np.isnan(ys.reshape(-1))))
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
                    "(categorical='onehot' applies to CSV and Parquet columns only)",
                    value=xs.dtype,
                )
            )
    if problems:
        raise DataError(problems)

    def rows(a: np.ndarray) -> np.ndarray:
        return a.reshape(-1, 1) if a.ndim == 1 else a

    x = rows(x)
    if x_test is not None:
        x_test = rows(x_test)
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(
                [
                    Problem(
                        where,
                        "x_test",
                        f"rows must have the shape of the rows of x, {x.shape[1:]}",
                        value=x_test.shape[1:],
                    )
                ]
            )
    for name_x, xs in (("x", x), ("x_test", x_test)):
        if xs is not None:
            _check_finite_array(xs, where, name_x)
    if len(x) == 0:
        raise DataError([Problem(where, "x", "must have at least one row", value=0)])
    return _Raw(
        x=x,
        y=np.asarray(y).reshape(-1),
        x_test=x_test,
        y_test=None if y_test is None else np.asarray(y_test).reshape(-1),
        feature_names=[f"x{i}" for i in range(int(math.prod(x.shape[1:])))],
        target_field="y",
    )


def _missing_target(where: str, field: str, missing: np.ndarray) -> Problem:
    first = int(np.flatnonzero(missing)[0])
    return Problem(
        where,
        field,
        f"target values must not be missing: {int(missing.sum())} NaN values (first in row {first})",
        value=float("nan"),
    )


def _check_finite_array(x: np.ndarray, where: str, field: str) -> None:
    if not np.issubdtype(x.dtype, np.floating):
        return
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
        n_nan, n_inf = int(np.isnan(x).sum()), int(np.isinf(x).sum())
        first = x.reshape(len(x), -1)[rows[0]]
        value = first[~np.isfinite(first)][0].item()
        raise DataError(
            [
                Problem(
                    where,
                    field,
                    f"features must be finite: {n_nan} NaN and {n_inf} inf values in {len(rows)} rows "
                    f"(first in row {rows[0]})",
                    value=value,
                )
            ]
        )


def _read_table(path: Path, where: str, *, target: str | None, categorical: str) -> _Raw:
    import pandas as pd

    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except ImportError as exc:
        raise DataError(
            [
                Problem(
                    where,
                    "",
                    f"reading Parquet needs pyarrow or fastparquet: pip install pyarrow ({exc})",
                    has_value=False,
                )
            ]
        ) from None
    except Exception as exc:
        raise DataError(
            [Problem(where, "", f"cannot read the file ({type(exc).__name__}: {exc})", has_value=False)]
        ) from None

    frame.columns = [str(c) for c in frame.columns]
    columns = list(frame.columns)
    if target is None:
        raise DataError(
            [
                Problem(
                    where,
                    "target",
                    f"a target column is required for CSV and Parquet files; available columns: {columns}",
                    value=None,
                )
            ]
        )
    if target not in frame.columns:
        close = difflib.get_close_matches(target, columns, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise DataError([Problem(where, "target", f"no such column; available columns: {columns}{hint}", value=target)])
    if len(frame) == 0:
        raise DataError([Problem(where, "", "the file has no data rows", has_value=False)])
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(
            [
                Problem(
                    where,
                    "target",
                    "leaves no feature columns: the file must have at least one column besides the target",
                    value=target,
                )
            ]
        )

    y_col = frame[target]
    missing = y_col.isna()
    if missing.any():
        raise DataError(
            [
                Problem(
                    where,
                    f"column {target!r}",
                    f"target values must not be missing: {int(missing.sum())} NaN/empty values "
                    f"(first in row {int(np.flatnonzero(missing.to_numpy())[0])})",
                    value=float("nan"),
                )
            ]
        )

    problems: list[Problem] = []
    for col in features.columns:
        n_missing = int(features[col].isna().sum())
        if n_missing:
            first = int(np.flatnonzero(features[col].isna().to_numpy())[0])
            problems.append(
                Problem(
                    where,
                    f"column {col!r}",
                    f"features must not be missing: {n_missing} NaN/empty values (first in row {first})",
                    value=float("nan"),
                )
            )
    if problems:
        raise DataError(problems)

    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        if categorical == "error":
            problems = []
            for c in non_numeric:
                row = _first_non_numeric(features[c])
                problems.append(
                    Problem(
                        where,
                        f"column {c!r}",
                        f"features must be numeric, but the column holds {features[c].dtype} values "
                        f"(first non-numeric in row {row}); "
                        "pass categorical='onehot' to one-hot encode non-numeric columns",
                        value=features[c].iloc[row],
                    )
                )
            raise DataError(problems)
        features = pd.get_dummies(features, columns=non_numeric, dtype=np.float32)

    x = features.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        for j in np.flatnonzero(bad.any(axis=0)):
            rows = np.flatnonzero(bad[:, j])
            problems.append(
                Problem(
                    where,
                    f"column {features.columns[j]!r}",
                    f"features must be finite: {len(rows)} inf values (first in row {rows[0]})",
                    value=float(x[rows[0], j]),
                )
            )
        raise DataError(problems)

    y = y_col.to_numpy()
    if pd.api.types.is_bool_dtype(y_col):
        y = y.astype(bool)
    elif pd.api.types.is_numeric_dtype(y_col):
        y = y.astype(np.int64 if pd.api.types.is_integer_dtype(y_col) else np.float64)
    else:
        y = np.asarray([str(v) for v in y], dtype=object)
    return _Raw(x=x, y=y, feature_names=[str(c) for c in features.columns], target_field=f"column {target!r}")


def _first_non_numeric(column: Any) -> int:
    """The row of the first value of a column that does not read as a number (0 if all do)."""
    import pandas as pd

    try:
        bad = (pd.to_numeric(column, errors="coerce").isna() & column.notna()).to_numpy()
    except (TypeError, ValueError):
        return 0
    return int(np.flatnonzero(bad)[0]) if bad.any() else 0


# --------------------------------------------------------------------------------------------------
# Targets


def _label_str(value: Any) -> str:
    return str(value.item() if isinstance(value, np.generic) else value)


def _encode_target(y: np.ndarray, *, task: str, where: str, field: str) -> tuple[str, np.ndarray, np.ndarray | None]:
    """Infer or check the task and encode the target: ``(task, encoded y, sorted class labels or None)``."""
    import pandas as pd

    y = np.asarray(y)
    if y.dtype.kind in "fc" or y.dtype == object:
        missing = pd.isna(y) if y.dtype == object else np.isnan(y)
        if missing.any():
            raise DataError([_missing_target(where, field, missing)])
    if y.dtype.kind == "c":
        raise DataError([Problem(where, field, "target values must be real numbers or labels", value=y.dtype)])
    if y.dtype.kind == "f" and np.isinf(y).any():
        raise DataError(
            [
                Problem(
                    where,
                    field,
                    f"target values must be finite: {int(np.isinf(y).sum())} inf values",
                    value=float(y[np.isinf(y)][0]),
                )
            ]
        )

    numeric = y  # regression targets are taken from here, before any relabelling
    if y.dtype.kind in "iuf":
        kind = "float" if y.dtype.kind == "f" and not np.all(np.equal(np.mod(y, 1), 0)) else "integer"
        if kind == "integer" and y.dtype.kind == "f" and np.abs(y).max() < 2**53:
            y = y.astype(np.int64)  # so that class names read "3", not "3.0"
    elif y.dtype.kind == "b":
        kind = "label"
    else:  # strings, bytes or objects: labels
        kind = "label"
        y = y.astype(str)
    classes = np.unique(y)
    n_distinct = len(classes)
    shown = [_label_str(c) for c in classes[:10]] + (["..."] if n_distinct > 10 else [])

    if task == "auto":
        if kind == "float" or (kind == "integer" and n_distinct > MAX_AUTO_CLASSES):
            task = "regression"
        elif n_distinct == 2:
            task = "binary"
        else:
            task = "multiclass"

    if n_distinct < 2:
        what = "one class only" if task != "regression" else "a constant target"
        raise DataError(
            [
                Problem(
                    where,
                    field,
                    f"needs at least 2 distinct target values, found {what}",
                    value=_label_str(classes[0]) if n_distinct else None,
                )
            ]
        )
    if task == "regression":
        if kind == "label":
            held = "booleans" if y.dtype.kind == "b" else "strings"
            raise DataError(
                [
                    Problem(
                        where,
                        field,
                        f"task='regression' needs a numeric target, but the target holds {held}",
                        value=_label_str(classes[0]),
                    )
                ]
            )
        return task, numeric.astype(np.float32), None
    if kind == "float":
        example = float(y[np.mod(y, 1) != 0][0])
        raise DataError(
            [
                Problem(
                    where,
                    field,
                    f"task={task!r} needs class labels, but the target has non-integer values",
                    value=example,
                )
            ]
        )
    if task == "binary" and n_distinct != 2:
        raise DataError(
            [
                Problem(
                    where,
                    field,
                    f"task='binary' needs exactly 2 classes, but the target has {n_distinct} distinct values: {shown}",
                    value=n_distinct,
                )
            ]
        )
    encoded = np.searchsorted(classes, y).astype(np.int64)
    return task, encoded, classes


def _check_test_classes(y: np.ndarray, y_test: np.ndarray, class_names: list[str], where: str) -> None:
    unseen = sorted(set(np.unique(y_test).tolist()) - set(np.unique(y).tolist()))
    if unseen:
        raise DataError(
            [
                Problem(
                    where,
                    "y_test",
                    "has labels that never occur in y (the training data)",
                    value=[class_names[i] for i in unseen],
                )
            ]
        )


def _as_features(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# Splitting


def _split(
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
        raise DataError(
            [
                Problem(
                    where,
                    field,
                    f"splits {n} rows into {n_in} and {n_out}; each part needs at least {min_rows} rows{per}",
                    value=value,
                )
            ]
        )
    try:
        return train_test_split(x, y, test_size=size, random_state=seed, stratify=y if stratify else None)
    except ValueError as exc:  # anything the checks above did not foresee: still a message, not a traceback
        raise DataError([Problem(where, field, f"cannot split the data ({exc})", value=value)]) from None


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
        raise DataError([Problem("scale", "kind", f"must be one of {list(SCALINGS)}", value=kind)])
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
    return dataclasses.replace(
        dataset,
        x_train=apply(dataset.x_train),
        x_val=apply(dataset.x_val),
        x_test=apply(dataset.x_test),
        scaling=scaling,
        **copies,
    )


# --------------------------------------------------------------------------------------------------
# Views: the shape a model family sees

VIEWS = CATALOGUE_VIEWS[1:]  # the views a dataset can be shaped to ("auto" is resolved per family)

# Example shapes of built-in datasets whose rows are flat but are really images or sequences.
KNOWN_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "digits": {"image": (8, 8, 1), "sequence": (8, 8)},  # 8x8 pixels; as a sequence, 8 rows of 8 pixels
    "mnist1d": {"sequence": (40, 1)},  # one channel over 40 steps
}


def _known_shape(dataset: Dataset, view: str) -> tuple[int, ...] | None:
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
    if view not in (*VIEWS, "auto"):
        raise DataError([Problem(where, "view", f"must be one of {['auto', *VIEWS]}", value=view)])
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
    raise DataError([Problem(
        where, "family",
        f"needs {kind} view, but the examples have shape {dataset.input_shape} and no known image or sequence "
        "shape (tabular data); use family mlp, or save the data as an .npz with x of shape (N, H, W, C) or (N, T, F)",
        value=family)])


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
        A new :class:`Dataset` sharing the arrays' memory (``dataset`` itself when nothing changes).

    Raises:
        DataError: when the data has no such shape, naming ``view`` and the examples' shape.

    Example:

    >>> from tuner.data import as_view, load_dataset
    >>> as_view(load_dataset("digits"), "image").input_shape
    (8, 8, 1)
    """
    if view not in VIEWS:
        raise DataError([Problem(f"dataset {dataset.name!r}", "view", f"must be one of {list(VIEWS)}", value=view)])
    shape = _view_shape(dataset, view)
    if shape is None:
        what = {"image": "an image (H, W, C)", "sequence": "a sequence (T, F)"}[view]
        known = sorted(name for name, shapes in KNOWN_SHAPES.items() if view in shapes)
        raise DataError([Problem(
            f"dataset {dataset.name!r}", "view",
            f"cannot show examples of shape {dataset.input_shape} as {what}: flat rows have one only in the "
            f"built-ins {known}; use view flat or auto, or save the data as an .npz with x of shape (N, H, W, C) or "
            "(N, T, F)", value=view)])
    if shape == dataset.input_shape:
        return dataset
    return dataclasses.replace(
        dataset,
        x_train=dataset.x_train.reshape(len(dataset.x_train), *shape),
        x_val=dataset.x_val.reshape(len(dataset.x_val), *shape),
        x_test=dataset.x_test.reshape(len(dataset.x_test), *shape),
    )
