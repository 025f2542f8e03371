"""Cross-validation for small data: one configuration scored over K folds, and the refit on all of it.

With a few hundred rows, the best of many trials picked on one small validation split is partly luck.
:func:`cross_validate` trains one model per fold of the *training pool* (the training and validation
splits together; the test split stays apart), folds made with scikit-learn's ``StratifiedKFold``
(classification) or ``KFold`` (regression). Each fold is a whole honest run (:func:`train_model`: its own
scaling fitted on the fold's training rows, its own gap and verdict); the trial's figures are the means over
folds, with their spread. :func:`refit` then trains the chosen configuration on the whole pool for the mean
chosen epoch, before the single test-split evaluation. scikit-learn is imported when folds are made.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tuner.data import Dataset
from tuner.errors import ConfigError, Problem
from tuner.training._diagnosis import Diagnosis
from tuner.training._train import ModelBuilder, TrainResult, train_model

__all__ = ["CV_AUTO_FOLDS", "CV_AUTO_ROWS", "auto_folds", "check_folds", "cross_validate", "cv_folds", "pool", "refit"]

CV_AUTO_ROWS = 1000  # a training pool (train + validation rows) smaller than this is cross-validated by default
CV_AUTO_FOLDS = 5
CV_AUTO_ROWS_ENV = "TUNER_CV_AUTO_ROWS"  # overrides CV_AUTO_ROWS (0: never by default; the test suite sets it)


def _auto_rows() -> int:
    value = os.environ.get(CV_AUTO_ROWS_ENV, "").strip()
    if not value:
        return CV_AUTO_ROWS
    try:
        return max(0, int(value))
    except ValueError:
        raise ConfigError([Problem(CV_AUTO_ROWS_ENV, "cv", "must be a whole number of rows", value=value)]) from None


def pool(dataset: Dataset) -> Dataset:
    """The dataset with its validation rows moved into training (the test split untouched): what the folds
    split and what the chosen configuration is refitted on. Its validation split is a copy of those rows (a
    refit stops on a fixed epoch count, not on it)."""
    cached = dataset.__dict__.get("_pool")
    if cached is None:
        cached = dataclasses.replace(
            dataset,
            x_train=np.concatenate([dataset.x_train, dataset.x_val]),
            y_train=np.concatenate([dataset.y_train, dataset.y_val]),
        )
        dataset.__dict__["_pool"] = cached
    return cached


def _smallest_class(dataset: Dataset) -> tuple[str, int] | None:
    if dataset.task == "regression":
        return None
    counts = np.bincount(
        np.concatenate([dataset.y_train, dataset.y_val]).astype(np.int64), minlength=int(dataset.n_classes or 0)
    )
    index = int(np.argmin(counts))
    names = dataset.class_names or [str(i) for i in range(len(counts))]
    return str(names[index]), int(counts[index])


def check_folds(dataset: Dataset, k: int, *, where: str = "--cv") -> None:
    """Refuse ``k`` folds that the data cannot give.

    Raises:
        ConfigError: ``k`` is 1 or negative, above the pool's rows, or above the rows of its smallest class
            (stratified folds need one of each class in every fold), naming the class and its count.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0 or k == 1:
        raise ConfigError([Problem(where, "cv", "must be 0 (off) or a number of folds >= 2", value=k)])
    if k == 0:
        return
    rows = len(dataset.x_train) + len(dataset.x_val)
    if k > rows:
        raise ConfigError(
            [Problem(where, "cv", f"asks for more folds than the {rows} training and validation rows", value=k)]
        )
    smallest = _smallest_class(dataset)
    if smallest is not None and smallest[1] < k:
        name, count = smallest
        fewer = f"--cv {count} or fewer folds, or " if count >= 2 else ""
        raise ConfigError(
            [
                Problem(
                    where,
                    "cv",
                    f"needs at least {k} rows of every class in the training and "
                    f"validation rows for stratified folds, but class {name!r} has {count}; use "
                    f"{fewer}--cv 0",
                    value=k,
                )
            ]
        )


def auto_folds(dataset: Dataset) -> tuple[int, str]:
    """The folds a study uses when it is not told (``cv=None``), and why, in words: :data:`CV_AUTO_FOLDS` below
    :data:`CV_AUTO_ROWS` rows of training pool (``$TUNER_CV_AUTO_ROWS`` when set) when every class has that many
    rows, else 0 (off)."""
    rows, limit = len(dataset.x_train) + len(dataset.x_val), _auto_rows()
    if rows >= limit:
        return 0, f"off: {rows} training and validation rows (auto below {limit}); --cv K turns it on"
    smallest = _smallest_class(dataset)
    if smallest is not None and smallest[1] < CV_AUTO_FOLDS:
        return 0, (
            f"off: class {smallest[0]!r} has {smallest[1]} rows, fewer than {CV_AUTO_FOLDS} folds; --cv K turns it on"
        )
    return CV_AUTO_FOLDS, (
        f"{CV_AUTO_FOLDS}-fold over the {rows} training and validation rows (auto below {limit}); --cv 0 turns it off"
    )


def cv_folds(dataset: Dataset, k: int, seed: int = 0) -> list[Dataset]:
    """The ``k`` fold datasets of the training pool: fold ``i`` trains on the other folds and validates on
    fold ``i`` (stratified by class for classification, shuffled with ``seed``). The same for every trial."""
    cache = dataset.__dict__.setdefault("_cv_cache", {})
    if (k, seed) in cache:
        return cache[(k, seed)]
    from sklearn.model_selection import KFold, StratifiedKFold

    data = pool(dataset)
    splitter = (
        KFold(n_splits=k, shuffle=True, random_state=seed)
        if dataset.task == "regression"
        else StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    )
    folds = [
        dataclasses.replace(
            dataset, x_train=data.x_train[tr], y_train=data.y_train[tr], x_val=data.x_train[va], y_val=data.y_train[va]
        )
        for tr, va in splitter.split(data.x_train, data.y_train)
    ]
    cache[(k, seed)] = folds
    return folds


def _fold_summary(result: TrainResult) -> dict[str, Any]:
    return {
        **{k: float(v) for k, v in result.metrics.items()},
        "verdict": result.diagnosis.verdict,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "wall_time": round(result.wall_time, 3),
    }


def _mean(results: Sequence[TrainResult], attr: str) -> dict[str, float]:
    keys = [k for k in getattr(results[0], attr) if all(k in getattr(r, attr) for r in results)]
    return {k: float(np.mean([getattr(r, attr)[k] for r in results])) for k in keys}


def cross_validate(
    params: Mapping[str, Any],
    dataset: Dataset,
    k: int,
    *,
    seed: int = 0,
    fold_seed: int = 0,
    builder: ModelBuilder | None = None,
    gap_subset: int | None = 10_000,
    callbacks: Callable[[int], Sequence[Any]] = lambda fold: (),
    after_fold: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``params`` once per fold (:func:`cv_folds`) and sum the folds up in one :class:`TrainResult`.

    The result's ``metrics`` and ``final_metrics`` are the means over folds, ``spread`` their standard
    deviations, ``folds`` each fold's honest figures, verdict and chosen epoch; its verdict is the folds'
    most common one (the reason counts them); ``best_epoch`` is the mean chosen epoch (rounded), the epochs a
    :func:`refit` trains for; ``model`` is None.

    Args:
        params, builder, gap_subset: as :func:`train_model`.
        dataset: the study's dataset; its validation rows join the folds.
        k: the number of folds (>= 2).
        seed: fold ``i`` trains with ``seed + i``. Defaults to `0`.
        fold_seed: the folds' shuffle (the same for every trial of a study). Defaults to `0`.
        callbacks: the extra Keras callbacks of fold ``i`` (0-based). Defaults to none.
        after_fold: called with the fold number (1-based) and the running means after each fold; it may
            raise to stop (a pruned trial).

    Raises:
        As :func:`train_model`.
    """
    results: list[TrainResult] = []
    for i, fold in enumerate(cv_folds(dataset, k, fold_seed)):
        result = train_model(
            params, fold, seed=seed + i, callbacks=list(callbacks(i)), builder=builder, gap_subset=gap_subset
        )
        result.model = None
        results.append(result)
        if after_fold is not None:
            after_fold(i + 1, _mean(results, "metrics"))
    metrics = _mean(results, "metrics")
    spread = {k_: float(np.std([r.metrics[k_] for r in results])) for k_ in metrics}
    verdicts = collections.Counter(r.diagnosis.verdict for r in results)
    verdict = max(verdicts, key=lambda v: (verdicts[v], -[r.diagnosis.verdict for r in results].index(v)))
    first = next(r for r in results if r.diagnosis.verdict == verdict)
    counts = ", ".join(f"{n} {v}" for v, n in verdicts.most_common())
    diagnosis = Diagnosis(
        verdict=verdict,
        reason=f"{k} folds: {counts}. Fold {results.index(first) + 1}: {first.diagnosis.reason}",
        suggestion=first.diagnosis.suggestion,
        train_skill=float(np.mean([r.diagnosis.train_skill for r in results])),
    )
    return TrainResult(
        history=results[0].history,
        best_epoch=max(1, round(np.mean([r.best_epoch for r in results]))),
        epochs_run=max(r.epochs_run for r in results),
        metrics=metrics,
        final_metrics=_mean(results, "final_metrics"),
        diagnosis=diagnosis,
        wall_time=sum(r.wall_time for r in results),
        n_params=results[0].n_params,
        metric=results[0].metric,
        stopped_early=all(r.stopped_early for r in results),
        folds=[_fold_summary(r) for r in results],
        spread=spread,
    )


def refit(
    params: Mapping[str, Any], dataset: Dataset, epochs: int, *, seed: int = 0, builder: ModelBuilder | None = None
) -> tuple[Any, Dataset]:
    """Train ``params`` on the whole training pool for ``epochs`` epochs (no early stopping: there is no
    held-out split left), as the model the study exports.

    Returns:
        The trained ``keras.Model`` and the pool dataset (whose scaling it was trained with).
    """
    data = pool(dataset)
    fixed = {**params, "epochs": int(epochs), "patience": 0}
    result = train_model(fixed, data, seed=seed, gap_subset=2_000, builder=builder)
    return result.model, data
