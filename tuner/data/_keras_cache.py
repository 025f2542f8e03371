"""``keras.datasets`` names (mnist, fashion_mnist, cifar10), read from the Keras cache only.

The files are looked for where ``keras.datasets`` keeps them (``$KERAS_HOME/datasets``, else
``~/.keras/datasets``, and Keras's fallback ``/tmp/.keras/datasets``) and read with numpy; Keras is not
imported and nothing is ever downloaded: a name whose files are missing is refused with the command that
would put them there.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tuner._store import keras_home
from tuner.data._builtin import BUILTIN, BuiltinDataset
from tuner.data._dataset import Raw, data_error
from tuner.errors import DataError, did_you_mean

_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)
_CIFAR_ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# Where Keras 3 extracts cifar-10-python.tar.gz (older Keras: datasets/cifar-10-batches-py).
_CIFAR_DIRS = ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py")


def keras_cache_dir() -> Path:
    """The folder ``keras.datasets`` keeps its files in: ``$KERAS_HOME/datasets``, else ``~/.keras/datasets``."""
    return keras_home() / "datasets"


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
    hint = did_you_mean(name, BUILTIN, cutoff=0.8, note="It is built in and generated locally")
    return data_error(
        f"dataset {name!r}",
        "",
        f"is not in the Keras cache, and tuner never downloads: place {what} at {where} ({source}; for example: "
        f"{example}), or set KERAS_HOME to the folder above the datasets/ folder that holds it{hint}",
        has_value=False,
    )


def _unreadable(where: Path, what: str, exc: Exception, expected: str = "") -> DataError:
    return data_error(
        str(where), "", f"cannot read the {what} ({type(exc).__name__}: {exc}){expected}", has_value=False
    )


def _keras_arrays(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> Raw:
    x, x_test = np.asarray(x), np.asarray(x_test)
    if x.ndim == 3:  # grayscale: add the channel axis, so that the examples are images (H, W, 1)
        x, x_test = x[..., None], x_test[..., None]
    return Raw(
        x=x,
        y=np.asarray(y).reshape(-1),
        x_test=x_test,
        y_test=np.asarray(y_test).reshape(-1),
        feature_names=[f"px{i}" for i in range(int(math.prod(x.shape[1:])))],
    )


def _load_keras_mnist() -> Raw:
    path = _find_cached("mnist.npz")
    if path is None:
        target, url = keras_cache_dir() / "mnist.npz", f"{_KERAS_ORIGIN}mnist.npz"
        raise _not_cached(
            "mnist",
            "mnist.npz",
            target,
            f"the file keras.datasets.mnist downloads, from {url}",
            f"mkdir -p {target.parent} && curl -L -o {target} {url}",
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    except Exception as exc:
        raise _unreadable(
            path, "Keras MNIST file", exc, "; it must hold arrays x_train, y_train, x_test, y_test"
        ) from None
    return _keras_arrays(arrays[0], arrays[1], arrays[2], arrays[3])


def _read_idx_gz(path: Path, offset: int) -> np.ndarray:
    import gzip

    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def _load_keras_fashion_mnist() -> Raw:
    found = {file: _find_cached(f"fashion-mnist/{file}") for file in _FASHION_FILES}
    missing = [file for file, path in found.items() if path is None]
    if missing:
        folder = keras_cache_dir() / "fashion-mnist"
        raise _not_cached(
            "fashion_mnist",
            ", ".join(missing),
            folder,
            f"files keras.datasets.fashion_mnist downloads, from {_KERAS_ORIGIN}<file>",
            f"mkdir -p {folder} && for f in {' '.join(missing)}; do curl -L -o {folder}/$f {_KERAS_ORIGIN}$f; done",
        )
    paths = [path for path in (found[file] for file in _FASHION_FILES) if path is not None]  # none missing
    try:
        y, y_test = _read_idx_gz(paths[0], 8), _read_idx_gz(paths[2], 8)
        x = _read_idx_gz(paths[1], 16).reshape(len(y), 28, 28)
        x_test = _read_idx_gz(paths[3], 16).reshape(len(y_test), 28, 28)
    except Exception as exc:
        raise _unreadable(paths[0].parent, "Keras Fashion-MNIST files", exc) from None
    return _keras_arrays(x, y, x_test, y_test)


class _ArraysOnlyUnpickler:
    """Unpickles CIFAR batches, refusing every global but the few numpy needs to rebuild arrays."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

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


def _load_keras_cifar10() -> Raw:
    folder = next((p for p in (_find_cached(d) for d in _CIFAR_DIRS) if p is not None), None)
    if folder is None:
        target = keras_cache_dir() / _CIFAR_DIRS[0]
        raise _not_cached(
            "cifar10",
            "the folder cifar-10-batches-py (data_batch_1 .. data_batch_5, test_batch)",
            target,
            f"what keras.datasets.cifar10 extracts from {_CIFAR_ORIGIN}",
            f"mkdir -p {target.parent} && curl -L {_CIFAR_ORIGIN} | tar -xz -C {target.parent}",
        )
    try:
        parts = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
        x_test, y_test = _cifar_batch(folder / "test_batch")
    except Exception as exc:
        raise _unreadable(
            folder, "CIFAR-10 batches", exc, "; the folder must hold data_batch_1 .. data_batch_5 and test_batch"
        ) from None
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return _keras_arrays(x, y, x_test, y_test)


KERAS_DATASETS: dict[str, BuiltinDataset] = {
    d.name: d
    for d in (
        BuiltinDataset("mnist", "multiclass", 70000, 784, 10, "Keras cache (datasets/mnist.npz)", _load_keras_mnist),
        BuiltinDataset(
            "fashion_mnist",
            "multiclass",
            70000,
            784,
            10,
            "Keras cache (datasets/fashion-mnist/)",
            _load_keras_fashion_mnist,
        ),
        BuiltinDataset(
            "cifar10",
            "multiclass",
            60000,
            3072,
            10,
            "Keras cache (datasets/cifar-10-batches-py-target/)",
            _load_keras_cifar10,
        ),
    )
}
"""``keras.datasets`` names, loaded from the Keras cache only; their examples are images (H, W, C)."""


def keras_cached(name: str) -> bool:
    """Whether the files of a ``keras.datasets`` name are in the Keras cache (nothing is read)."""
    if name == "mnist":
        return _find_cached("mnist.npz") is not None
    if name == "fashion_mnist":
        return all(_find_cached(f"fashion-mnist/{f}") is not None for f in _FASHION_FILES)
    return any(_find_cached(d) is not None for d in _CIFAR_DIRS)
