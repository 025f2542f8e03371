"""The training step: compile and fit one model from resolved parameters, with the honest gap.

:func:`train_model` returns a :class:`TrainResult` holding the per-epoch history (honest and Keras's
own figures), the chosen epoch, the metrics there, a verdict, wall time and parameter count.
:func:`evaluate_test` scores a trained model once on the held-out test split.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from tuner._logging import get_logger
from tuner.data import Dataset, scale
from tuner.errors import ConfigError, Problem
from tuner.metrics import headline_metric
from tuner.model import (
    ONE_HOT_LOSSES,
    as_view,
    build_model,
    build_optimizer,
    canonical_loss,
    check_task_fit,
    resolve_loss,
    resolve_view,
)
from tuner.space import knob_value
from tuner.training._diagnosis import Diagnosis, DiagnosisRules, diagnose
from tuner.training._gap import HonestGap, evaluate_split
from tuner.training._jax_cache import enable_jax_compile_cache
from tuner.training._programs import count_model_programs, watch_backend
from tuner.training._reuse import (
    SharedModel,
    adopt,
    copy_back,
    copy_optimizer,
    note_trial,
    runtime_caches_kept,
    shared_model,
)

__all__ = [
    "ModelBuilder",
    "TrainResult",
    "average_results",
    "check_user_model",
    "evaluate_test",
    "prepare_data",
    "train_model",
    "user_compiled",
]

_logger = get_logger(__name__)

ModelBuilder = Callable[..., Any]
"""``builder(params, input_shape, *, task, n_outputs) -> keras.Model``: uncompiled (tuner compiles it with the
task's loss and its optimizer knobs), or compiled by the user (its loss, metrics and optimizer are kept)."""


@dataclasses.dataclass
class TrainResult:
    """What one training run produced.

    Attributes:
        history: per-epoch figures by name: ``train_loss``, ``val_loss``, ``train_<metric>``,
            ``val_<metric>``, ``gap_loss``, ``gap_<metric>``, ``lr`` (honest, inference mode, data loss
            only) and ``keras_loss``, ``keras_val_loss``, ``keras_<metric>`` ... (Keras's own, biased).
        best_epoch: the 1-based epoch whose weights the model keeps (early stopping restores it; without
            early stopping it is the last epoch).
        epochs_run: how many epochs ran.
        metrics: the honest figures at ``best_epoch``.
        final_metrics: the honest figures at the last epoch.
        diagnosis: the over/underfitting verdict with its reason and suggestion.
        wall_time: seconds spent in ``fit``.
        n_params: the model's parameter count.
        metric: the task's headline metric (``accuracy`` or ``mae``).
        model: the trained ``keras.Model``.
        folds: cross-validated (:func:`tuner.training.cross_validate`): each fold's honest figures, verdict,
            chosen epoch and wall time; ``metrics`` are then the means over folds. None for one run.
        spread: cross-validated: the standard deviation of each of ``metrics`` over the folds.
    """

    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    metrics: dict[str, float]
    final_metrics: dict[str, float]
    diagnosis: Diagnosis
    wall_time: float
    n_params: int
    metric: str
    stopped_early: bool
    model: Any = dataclasses.field(repr=False, default=None)
    folds: list[dict[str, Any]] | None = None  # cross-validated: each fold's figures, verdict and chosen epoch
    spread: dict[str, float] | None = None  # cross-validated: the standard deviation of each metric over folds

    def summary(self) -> dict[str, Any]:
        """The result as JSON-able data (without the model and history)."""
        return {
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "metrics": self.metrics,
            "final_metrics": self.final_metrics,
            "verdict": self.diagnosis.verdict,
            "reason": self.diagnosis.reason,
            "suggestion": self.diagnosis.suggestion,
            "wall_time": self.wall_time,
            "n_params": self.n_params,
            "stopped_early": self.stopped_early,
            **({"folds": self.folds, "spread": self.spread} if self.folds else {}),
        }


def prepare_data(dataset: Dataset, params: Mapping[str, Any]) -> Dataset:
    """The dataset scaled as ``params['scaling']`` asks and shaped as ``params['view']`` asks.

    Scaling is fitted on the training split; the view (:func:`tuner.model.as_view`, with ``auto``
    resolved for ``params['family']`` by :func:`tuner.model.resolve_view`) only reshapes. Both are
    cached per dataset. With ``family: mlp`` and ``view: auto`` the data keeps its own shape.

    Raises:
        DataError: when the data has no shape for the view or family asked for, naming the parameter.
    """
    view = resolve_view(dataset, knob_value(params, "view"), knob_value(params, "family"))
    kind = knob_value(params, "scaling")
    scaled = dataset
    if dataset.scaling != kind:
        cache = dataset.__dict__.setdefault("_scaled_cache", {})
        if kind not in cache:
            cache[kind] = scale(dataset, kind)
        scaled = cache[kind]
    if view is None:
        return scaled
    views = scaled.__dict__.setdefault("_view_cache", {})
    if view not in views:
        views[view] = as_view(scaled, view)
    return views[view]


def loss_name(loss: Any) -> str:
    """The name of a loss as :func:`tuner.model.canonical_loss` gives it: a string, a Keras loss function or
    ``Loss`` object (its function's name), or ``""`` for the user's own loss."""
    if isinstance(loss, str):
        return canonical_loss(loss)
    return canonical_loss(getattr(getattr(loss, "fn", loss), "__name__", ""))


def _targets(y: np.ndarray, task: str, loss: Any, n_classes: int | None, fmt: str = "index") -> np.ndarray:
    """The targets as ``loss`` takes them: class indices or one-hot rows (a Keras loss says which; the user's
    own loss gets them as they were given), ``(n, K)`` rows as given, else a ``(n, 1)`` column."""
    if fmt in ("multilabel", "vector"):
        return np.asarray(y, dtype="float32")
    if task == "multiclass":
        name = loss_name(loss)
        one_hot = name in ONE_HOT_LOSSES or (fmt == "onehot" and name != "sparse_categorical_crossentropy")
        if one_hot:
            if n_classes is None:
                raise ValueError("one-hot targets of a multiclass task need the number of classes (n_classes is None)")
            return np.eye(int(n_classes), dtype="float32")[np.asarray(y, dtype="int64")]
        return np.asarray(y, dtype="int64")
    return np.asarray(y, dtype="float32").reshape(-1, 1)


def user_compiled(model: Any) -> bool:
    """Whether the user's build compiled ``model`` (then its loss, metrics and optimizer are kept)."""
    return bool(getattr(model, "compiled", False)) and getattr(model, "loss", None) is not None


def _fit_input(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, pipeline: str) -> dict[str, Any]:
    """The data arguments of ``model.fit``, reshuffled every epoch.

    Under TensorFlow (``data_pipeline: auto``) a ``tf.data`` pipeline over the in-memory arrays: Keras's
    own adapter for arrays slices and shuffles them through a slower path (1.5-1.9x longer epochs for
    small models, ``benchmarks/fast_defaults.py``). Other backends, and ``data_pipeline: arrays``, get the
    arrays. TensorFlow is imported only when it is the backend.
    """
    if pipeline != "auto" or keras.backend.backend() != "tensorflow":
        return {"x": x, "y": y, "batch_size": batch_size, "shuffle": True}
    import tensorflow as tf

    pipe = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    return {"x": pipe, "shuffle": False}  # the pipeline shuffles; fit must not be asked to


def train_model(
    params: Mapping[str, Any],
    dataset: Dataset,
    *,
    seed: int = 0,
    callbacks: Sequence[Any] = (),
    builder: ModelBuilder | None = None,
    gap_subset: int | None = 10_000,
    rules: DiagnosisRules | None = None,
    verbose: int = 0,
    varying: Collection[str] = (),
) -> TrainResult:
    """Compile and fit one model, measuring the honest gap every epoch.

    A model the builder compiled keeps its compile: the gap is measured with its loss (data loss only,
    inference mode) and its metrics (``val_auc`` ...), and the targets are given as that loss takes them.

    Args:
        params: resolved parameters (missing knobs take their defaults).
        dataset: the data, unscaled; scaling from ``params`` is fitted on its training split.
        seed: seeds Keras, NumPy and Python's RNGs before the model is built. Defaults to `0`.
        callbacks: extra Keras callbacks, run after the gap callback (so they see honest ``val_loss``).
        builder: ``builder(params, input_shape, *, task, n_outputs) -> keras.Model``. Defaults to the
            built-in MLP, :func:`tuner.build_model`.
        gap_subset: evaluate the training split on at most this many rows (a fixed, seeded subset);
            None for all. Defaults to `10_000`.
        rules: thresholds of the verdict. Defaults to `DiagnosisRules()`.
        verbose: passed to ``fit``. Defaults to `0`.
        varying: the knobs the study samples: under JAX, trials that differ only in them share a compiled program
            in this process (``TUNER_PROGRAM_CACHE``). Defaults to none (the values that are state anyway).

    Returns:
        A :class:`TrainResult`.

    Raises:
        NonFiniteLoss: when the loss diverges (the caller fails the trial).
        ConfigError: when the parameters do not fit the task.
    """
    task = dataset.task
    if keras.backend.backend() == "jax":
        enable_jax_compile_cache()
    watch_backend()
    data = prepare_data(dataset, params)
    # the built-in families: one model per program, shared by the trials of a process (built before the trial's)
    shared = _shared_for(params, data, seed, varying) if builder is None else None
    note_trial(shared is not None and shared.trials > 0)  # a program an earlier trial built and ran
    with runtime_caches_kept(shared is not None):  # the shared model's instantiated steps stay (runtime_caches_kept)
        model = _build(builder or build_model, params, data, seed)
    kept = user_compiled(model)
    if kept:  # the user's loss, metrics and optimizer, as build(hp) compiled them
        loss = model.loss
        _check_user_loss(model, loss, data)
    else:
        check_task_fit(params, task)
        loss = resolve_loss(params, task)
    y_train = _targets(data.y_train, task, loss, data.n_classes, data.target_format)
    y_val = _targets(data.y_val, task, loss, data.n_classes, data.target_format)
    metric = headline_metric(task)
    template = model
    if shared is not None:
        model = adopt(shared, template, params, varying)
    else:
        if not kept:
            _compile(model, params, loss=loss, metric=metric, n_train=len(data.x_train))
        _build_state(model, data.x_train, y_train)

    gap = HonestGap(
        _gap_rows(data.x_train, y_train, gap_subset, seed),
        (data.x_val, y_val),
        loss=loss,
        task=task,
        model_metrics=kept,
    )
    stopper = _early_stopping(params)
    all_callbacks: list[Any] = [gap] if stopper is None else [gap, stopper]
    all_callbacks.extend(callbacks)
    start = time.perf_counter()
    try:
        model.fit(
            **_fit_input(
                data.x_train, y_train, int(knob_value(params, "batch_size")), seed, knob_value(params, "data_pipeline")
            ),
            epochs=int(knob_value(params, "epochs")),
            callbacks=all_callbacks,
            verbose=verbose,
        )
    finally:  # a pruned or failed run traced its steps too
        count_model_programs(model)
    wall = time.perf_counter() - start
    if shared is not None:  # the trial keeps the standard model, its trained weights copied in
        model = copy_back(shared, template)
        _compile(model, params, loss=loss, metric=metric, n_train=len(data.x_train))
        copy_optimizer(shared, model)

    history = gap.history
    epochs_run = len(history.get("val_loss", []))
    best = (stopper.best_epoch + 1) if stopper is not None else epochs_run
    honest = [k for k in history if not k.startswith("keras_") and k != "lr"]
    metrics = {k: history[k][best - 1] for k in honest}
    verdict = diagnose(task=task, chosen=metrics, history=history, chosen_epoch=best, y_train=data.y_train, rules=rules)
    return TrainResult(
        history=history,
        best_epoch=best,
        epochs_run=epochs_run,
        metrics=metrics,
        final_metrics={k: history[k][-1] for k in honest},
        diagnosis=verdict,
        wall_time=wall,
        n_params=int(template.count_params()),
        metric=metric,
        stopped_early=bool(stopper is not None and stopper.stopped_epoch > 0),
        model=model,
    )


def average_results(
    results: Sequence[TrainResult], dataset: Dataset, rules: DiagnosisRules | None = None
) -> TrainResult:
    """One result of several executions of one configuration (KerasTuner's ``executions_per_trial``).

    The figures at each execution's chosen epoch are averaged, and so is each epoch's history over the epochs
    every execution ran; the verdict is given to the averaged figures; wall time is the sum. The model is the
    first execution's.
    """
    first = results[0]
    if len(results) == 1:
        return first
    epochs = min(len(r.history.get("val_loss", [])) for r in results)
    history = {
        k: [float(np.mean([r.history[k][i] for r in results])) for i in range(epochs)]
        for k in first.history
        if all(k in r.history and len(r.history[k]) >= epochs for r in results)
    }
    metrics = {
        k: float(np.mean([r.metrics[k] for r in results]))
        for k in first.metrics
        if all(k in r.metrics for r in results)
    }
    final = {
        k: float(np.mean([r.final_metrics[k] for r in results]))
        for k in first.final_metrics
        if all(k in r.final_metrics for r in results)
    }
    best = max(1, min(round(float(np.mean([r.best_epoch for r in results]))), epochs))
    verdict = diagnose(
        task=dataset.task, chosen=metrics, history=history, chosen_epoch=best, y_train=dataset.y_train, rules=rules
    )
    return dataclasses.replace(
        first,
        history=history,
        best_epoch=best,
        epochs_run=epochs,
        metrics=metrics,
        final_metrics=final,
        diagnosis=verdict,
        wall_time=sum(r.wall_time for r in results),
        stopped_early=any(r.stopped_early for r in results),
    )


def _shared_for(params: Mapping[str, Any], data: Dataset, seed: int, varying: Collection[str]) -> SharedModel | None:
    """The model this trial's program shares with others in this process (:func:`tuner.training._reuse`), or None."""
    check_task_fit(params, data.task)
    loss = resolve_loss(params, data.task)
    metric = headline_metric(data.task)
    y_train = _targets(data.y_train, data.task, loss, data.n_classes, data.target_format)

    def compile_model(model: Any, learning_rate: Any, alpha: Any) -> None:
        n_train = len(data.x_train)
        _compile(model, params, loss=loss, metric=metric, n_train=n_train, learning_rate=learning_rate, alpha=alpha)
        _build_state(model, data.x_train, y_train)

    return shared_model(
        params,
        input_shape=data.input_shape,
        task=data.task,
        n_outputs=data.n_outputs,
        n_train=len(data.x_train),
        build=lambda b: _build(b, params, data, seed),
        compile_model=compile_model,
        varying=varying,
    )


def _build(build: ModelBuilder, params: Mapping[str, Any], data: Dataset, seed: int) -> Any:
    """The model, built after seeding every RNG and under the ``precision`` knob's dtype policy."""
    keras.utils.set_random_seed(seed)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(knob_value(params, "precision"))
    try:
        return build(params, data.input_shape, task=data.task, n_outputs=data.n_outputs)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def check_user_model(
    builder: ModelBuilder, dataset: Dataset, params: Mapping[str, Any] | None = None
) -> tuple[str, ...]:
    """Build the user's model once, before a study exists, and check that a loss it compiled fits the targets.

    Args:
        builder: a builder of tuner's shape around the user's ``build(hp)`` (default values).
        dataset: the study's data.
        params: tuner's knobs for the data's scaling and view. Defaults to none (their defaults).

    Returns:
        The names of the metrics the compiled model logs besides its loss (``accuracy``, ``auc`` ...), which an
        objective may name as ``val_<name>``; empty for a model tuner compiles.

    Raises:
        ConfigError: for a build that returns no model, a loss that does not fit the targets.
    """
    params = dict(params or {})
    data = prepare_data(dataset, params)
    model = _build(builder, params, data, 0)
    try:
        if not user_compiled(model):
            return ()
        _check_user_loss(model, model.loss, data)
        y = _targets(data.y_train[:2], data.task, model.loss, data.n_classes, data.target_format)
        model.reset_metrics()
        names = [k for k in model.compute_metrics(None, y, model(data.x_train[:2], training=False)) if k != "loss"]
        model.reset_metrics()
        return tuple(names)
    finally:
        keras.backend.clear_session()


def _check_user_loss(model: Any, loss: Any, data: Dataset) -> None:
    """The loss a user compiled takes the data's targets and the model's outputs, on two rows.

    Raises:
        ConfigError: for a model compiled with one loss per output, or a loss that does not fit the targets
            (one line with the loss, the targets' shape and Keras's message).
    """
    where = "build(hp)"
    if isinstance(loss, (dict, list, tuple)):
        raise ConfigError(
            [
                Problem(
                    where, "loss", "must be one loss (tuner trains models with one output)", value=type(loss).__name__
                )
            ]
        )
    loss_fn = keras.losses.get(loss) if isinstance(loss, str) else loss
    y = _targets(data.y_train[:2], data.task, loss, data.n_classes, data.target_format)
    pred = None
    try:
        pred = model(data.x_train[:2], training=False)
        value = np.asarray(keras.ops.convert_to_numpy(keras.ops.mean(loss_fn(y, pred))))
        if not np.isfinite(value).all():
            raise ValueError(f"the loss of two rows is {value}")
    except Exception as err:
        name = loss if isinstance(loss, str) else loss_name(loss) or type(loss).__name__
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            [
                Problem(
                    where,
                    "loss",
                    f"does not fit the targets: {data.target_format} targets of shape "
                    f"{tuple(y.shape)} and outputs of shape {'?' if pred is None else tuple(np.shape(pred))}"
                    f" ({type(err).__name__}: {message})",
                    value=name,
                )
            ]
        ) from None


def _compile(
    model: Any,
    params: Mapping[str, Any],
    *,
    loss: str,
    metric: str,
    n_train: int,
    learning_rate: Any = None,
    alpha: Any = None,
) -> None:
    """Compile with the optimizer and schedule the knobs ask for, XLA and steps per execution as the backend allows."""
    batch_size = int(knob_value(params, "batch_size"))
    epochs = int(knob_value(params, "epochs"))
    steps_per_epoch = max(1, int(np.ceil(n_train / batch_size)))
    jit = knob_value(params, "jit_compile")
    if jit is None:
        jit = keras.backend.backend() == "jax"
    spe = int(knob_value(params, "steps_per_execution"))
    if keras.backend.backend() == "torch":  # Keras's torch trainer runs one step per call only
        spe = 1
    model.compile(
        optimizer=build_optimizer(
            params, steps_per_epoch=steps_per_epoch, epochs=epochs, learning_rate=learning_rate, alpha=alpha
        ),
        loss=loss,
        metrics=[metric],
        jit_compile=bool(jit),
        steps_per_execution=spe,
    )


def _build_state(model: Any, x: np.ndarray, y: np.ndarray) -> None:
    """Create the optimizer's and the metrics' variables before ``fit``, as Keras does under a distribution
    strategy. Otherwise Keras creates them inside the first trace of the TensorFlow train step, which
    TensorFlow must then trace a second time: about a third of a small model's trial (issue 17,
    ``benchmarks/trial_cost.py``). The same variables, so the same results. Under JAX, ``fit`` would otherwise
    build them by drawing a first batch, which takes a shuffle from NumPy's global generator: a model reused for
    another trial (``_reuse``) does not draw it, so both build here, from the arrays, and shuffle alike."""
    if keras.backend.backend() not in ("tensorflow", "jax"):
        return
    # Keras has no public call for this: _symbolic_build is borrowed (tests/test_borrowed_names.py fails when it
    # goes), and the ceiling on keras in pyproject.toml keeps an untested major version out
    try:
        model._symbolic_build(data_batch=(x[:1], y[:1]))
    except Exception as err:  # a model Keras cannot build symbolically: it builds in the first trace, as before
        _logger.debug("the optimizer and metrics are built in the first trace (%s: %s)", type(err).__name__, err)


def _gap_rows(x: np.ndarray, y: np.ndarray, gap_subset: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The training rows the gap is measured on: all, or a fixed, seeded subset of ``gap_subset`` rows."""
    if gap_subset is not None and len(x) > gap_subset:
        idx = np.sort(np.random.default_rng(seed).choice(len(x), size=gap_subset, replace=False))
        return x[idx], y[idx]
    return x, y


def _early_stopping(params: Mapping[str, Any]) -> Any:
    """Early stopping on the honest validation loss, restoring the best weights; None when ``patience`` is 0."""
    patience = int(knob_value(params, "patience"))
    if patience <= 0:
        return None
    return keras.callbacks.EarlyStopping(monitor="val_loss", mode="min", patience=patience, restore_best_weights=True)


def evaluate_test(model: Any, dataset: Dataset, params: Mapping[str, Any]) -> dict[str, float]:
    """Score a trained model once on the held-out test split (honest: inference mode, data loss only).

    Returns:
        ``{"test_loss": ..., "test_<metric>": ...}``.
    """
    data = prepare_data(dataset, params)
    loss = model.loss if user_compiled(model) else resolve_loss(params, data.task)
    y_test = _targets(data.y_test, data.task, loss, data.n_classes, data.target_format)
    scores = evaluate_split(
        model, data.x_test, y_test, loss_fn=keras.losses.get(loss) if isinstance(loss, str) else loss, task=data.task
    )
    return {f"test_{k}": v for k, v in scores.items()}
