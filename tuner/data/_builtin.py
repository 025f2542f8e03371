"""The built-in datasets: scikit-learn's bundled ones, and mnist1d generated locally and cached.

Nothing here downloads. ``mnist1d`` is made with ``mnist1d.data.make_dataset`` and its default arguments,
then kept in this process's memory and in ``$TUNER_CACHE_DIR`` (else ``~/.cache/tuner``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tuner._store import cache_dir
from tuner.data._dataset import Raw, data_error

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class BuiltinDataset:
    """A built-in dataset: static facts for listing it, and how to load it."""

    name: str
    task: str
    n_rows: int
    n_features: int
    n_classes: int | None
    source: str
    load: Callable[[], Raw] = dataclasses.field(repr=False, compare=False)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "n_rows": self.n_rows,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "source": self.source,
        }


def _sklearn_loader(name: str) -> Callable[[], Raw]:
    def load() -> Raw:
        from sklearn import datasets as sk_datasets

        bunch = getattr(sk_datasets, f"load_{name}")()
        target_names = getattr(bunch, "target_names", None)
        if target_names is not None and [str(t) for t in target_names] == [str(i) for i in range(len(target_names))]:
            target_names = None  # digits' names are its class numbers: labels stay the integers, as from arrays
        return Raw(
            x=bunch.data,
            y=bunch.target,
            feature_names=[str(f) for f in bunch.feature_names],
            target_names=None if target_names is None else [str(t) for t in target_names],
        )

    return load


# --------------------------------------------------------------------------------------------------
# mnist1d, generated locally and cached

MNIST1D_SOURCE = "mnist1d.make_dataset (generated locally)"


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
            # numpy's stub gives savez a keyword `allow_pickle: bool` beside `**kwds: ArrayLike`, and mypy matches
            # a `**dict[str, ndarray]` against it too; the keys here are array names, never allow_pickle
            np.savez(f, **arrays)  # type: ignore[arg-type]
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
        raise data_error(
            "dataset 'mnist1d'", "", "needs the mnist1d package: pip install mnist1d", has_value=False
        ) from None
    return cache_dir() / f"mnist1d-{version}-default-v1.npz"


def _load_mnist1d() -> Raw:
    arrays = _mnist1d_cached(str(_mnist1d_cache_file()))
    return Raw(
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
