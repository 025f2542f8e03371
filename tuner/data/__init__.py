"""Datasets: the built-in ones, the Keras cache and the user's own files, split into train/val/test and checked.

Everything here is numpy, pandas and scikit-learn, and only numpy is imported up front: importing this
package does not import Keras, TensorFlow or pandas, so the CLI can list and check data quickly.

Built-in datasets come with scikit-learn (``digits``, ``breast_cancer``, ``wine``, ``iris``,
``diabetes``) or are generated locally (``mnist1d``); nothing is ever downloaded. The ``keras.datasets``
names ``mnist``, ``fashion_mnist`` and ``cifar10`` are read from the Keras cache (``~/.keras/datasets``
or ``$KERAS_HOME/datasets``) when their files are there, and refused at once otherwise. User data is a
``.csv`` or ``.parquet`` file with a named target column, or an ``.npz`` file with arrays ``x`` and
``y`` (and optionally ``x_test`` and ``y_test``); ``x`` may hold flat rows ``(N, F)``, sequences
``(N, T, F)`` or images ``(N, H, W, C)``. The shape a model family sees is the model stage's business
(:func:`tuner.model.as_view`).

Examples:

>>> from tuner.data import load_dataset, scale
>>> data = scale(load_dataset("iris", seed=0), "standard")
>>> data.task, data.input_shape, data.n_outputs
('multiclass', (4,), 3)
"""

from __future__ import annotations

from tuner.data._arrays import from_arrays, from_frame, in_memory_dataset
from tuner.data._builtin import BUILTIN
from tuner.data._dataset import Dataset, scale
from tuner.data._keras_cache import KERAS_DATASETS, keras_cache_dir
from tuner.data._load import check_source, list_datasets, load_dataset
from tuner.data._preprocessing import Preprocessing

__all__ = [
    "BUILTIN",
    "KERAS_DATASETS",
    "Dataset",
    "Preprocessing",
    "check_source",
    "from_arrays",
    "from_frame",
    "in_memory_dataset",
    "keras_cache_dir",
    "list_datasets",
    "load_dataset",
    "scale",
]
