"""tuner.data."""

from __future__ import annotations

from tuner.data._datasets import BUILTIN, KERAS_DATASETS, VIEWS, Dataset, as_view, keras_cache_dir, list_datasets, load_dataset, resolve_view, scale

__all__ = ['BUILTIN', 'Dataset', 'KERAS_DATASETS', 'VIEWS', 'as_view', 'keras_cache_dir', 'list_datasets', 'load_dataset', 'resolve_view', 'scale']
