"""The honest generalization gap, measured every epoch.

Keras's ``loss`` and ``accuracy`` in ``History`` are not the training error: they include the L1/L2
penalty, are taken with dropout active and batch norm in training mode, and average over a model that
changes during the epoch. Its ``val_loss`` includes the penalty too. :class:`HonestGap` evaluates the
training split (or a fixed, seeded subset of it) and the validation split at the end of each epoch in
inference mode, with the data loss only, so that ``gap_loss = val_loss - train_loss`` and
``gap_<metric>`` compare like with like. Keras's own figures stay available as ``keras_<name>``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from tuner.errors import NonFiniteLoss
from tuner.metrics import headline_metric, maximize
from tuner.model import current_learning_rate

__all__ = ["HonestGap", "evaluate_split", "metric_functions", "numpy_loss"]


def _accuracy(task: str) -> Callable[[np.ndarray, np.ndarray], float]:
    def accuracy(y: np.ndarray, p: np.ndarray) -> float:
        y, p = np.asarray(y), np.asarray(p)
        rows_y, rows_p = y.reshape(len(y), -1), p.reshape(len(p), -1)
        if rows_p.shape[1] > 1 and rows_y.shape[1] == 1:  # class indices against class scores
            return float(np.mean(np.argmax(rows_p, axis=-1) == rows_y[:, 0]))
        if task == "multiclass":  # one-hot rows against class scores
            return float(np.mean(np.argmax(rows_p, axis=-1) == np.argmax(rows_y, axis=-1)))
        return float(np.mean((rows_p > 0.5) == (rows_y > 0.5)))  # binary, one output or one per label

    return accuracy


def metric_functions(task: str) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """Metrics computed on inference-mode predictions, by name."""
    if task == "regression":
        return {
            "mae": lambda y, p: float(np.mean(np.abs(p.reshape(-1) - y.reshape(-1)))),
            "rmse": lambda y, p: float(np.sqrt(np.mean((p.reshape(-1) - y.reshape(-1)) ** 2))),
        }
    return {"accuracy": _accuracy(task)}


def _clipped(p: np.ndarray) -> np.ndarray:
    """``p`` clipped to ``[epsilon, 1 - epsilon]`` in its own dtype (as Keras does), then in float64."""
    eps = keras.config.epsilon()
    p = np.asarray(p)
    return np.clip(p, p.dtype.type(eps), p.dtype.type(1.0 - eps)).astype("float64")


def _probabilities(p: np.ndarray) -> np.ndarray:
    return np.log(_clipped(p / np.sum(p, axis=-1, keepdims=True)))


def _sparse_categorical_crossentropy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    labels = np.asarray(y, dtype="int64").reshape(len(p))
    return -np.take_along_axis(_probabilities(p), labels[:, None], axis=-1)[:, 0]


def _categorical_crossentropy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return -np.sum(y * _probabilities(p), axis=-1)


def _binary_crossentropy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = _clipped(p)
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p), axis=-1)


def numpy_loss(loss_fn: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """The NumPy twin of a built-in Keras loss function (Keras's own formula, as its NumPy backend writes it:
    probabilities renormalized and clipped to ``[epsilon, 1 - epsilon]``), or None for any other loss.

    ``loss(y, p)`` takes float64 targets and the predictions in their dtype, and returns per-example
    losses in float64, without a call into the backend: the gap pass is about 1 ms per epoch
    cheaper than with the eager backend op (benchmarks/RESULTS.md, issue 17).
    """
    twins = {
        keras.losses.sparse_categorical_crossentropy: _sparse_categorical_crossentropy,
        keras.losses.categorical_crossentropy: _categorical_crossentropy,
        keras.losses.binary_crossentropy: _binary_crossentropy,
        keras.losses.mean_squared_error: lambda y, p: np.mean((y - p.astype("float64")) ** 2, axis=-1),
        keras.losses.mean_absolute_error: lambda y, p: np.mean(np.abs(y - p.astype("float64")), axis=-1),
    }
    try:
        return twins.get(loss_fn)
    except TypeError:  # an unhashable loss object
        return None


def predict_fixed_batches(model: Any, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Inference-mode predictions in chunks of one fixed shape (the last one zero-padded), so the
    compiled predict step is traced once per model rather than once per split size."""
    n = len(x)
    size = batch_size
    parts = []
    for i in range(0, n, size):
        chunk = x[i : i + size]
        if len(chunk) < size:
            chunk = np.concatenate([chunk, np.zeros((size - len(chunk), *x.shape[1:]), dtype=x.dtype)])
        parts.append(np.asarray(model.predict_on_batch(chunk)))
    return np.concatenate(parts, axis=0)[:n]


def even_chunk_size(n: int, max_rows: int = 8192) -> int:
    """The chunk size that splits ``n`` rows into the fewest chunks of at most ``max_rows`` with the least
    padding (e.g. 1,437 rows: one chunk of 1,437; 20,000 rows: three of 6,667)."""
    chunks = max(1, -(-n // max_rows))
    return max(1, -(-n // chunks))


def evaluate_split(
    model: Any, x: np.ndarray, y: np.ndarray, *, loss_fn: Any, task: str, batch_size: int = 1024
) -> dict[str, float]:
    """Data loss and metrics of ``model`` on ``(x, y)`` in inference mode (no dropout, BN moving stats).

    The regularization penalty is not included: the loss is ``loss_fn(y, model(x, training=False))``
    averaged over examples, exactly what ``model.evaluate`` reports for an unregularized model.
    """
    pred = predict_fixed_batches(model, x, batch_size)
    per_example = loss_fn(y, pred)
    out = {"loss": float(ops.convert_to_numpy(ops.mean(per_example)))}
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging model is reported, not warned about
        for name, fn in metric_functions(task).items():
            out[name] = fn(y, pred)
    return out


class HonestGap(keras.callbacks.Callback):
    """Adds honest train/validation loss and metrics and their gaps to the logs of every epoch.

    Put it first among the callbacks: it rewrites the epoch's ``logs`` in place, so that early stopping,
    pruning and ``History`` all see the honest figures. Keras's own figures are kept as ``keras_loss``,
    ``keras_accuracy``, ``keras_val_loss``, ... (``keras_`` marks them as biased by the penalty, dropout
    and batch-norm training mode).

    Args:
        train: ``(x, y)`` of the training split, or the subset of it to evaluate.
        val: ``(x, y)`` of the validation split.
        loss: the loss name or function (data loss only).
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        record_lr: also log the learning rate as ``lr``. Defaults to `True`.
        model_metrics: also log the metrics the model was compiled with (the user's ``accuracy``, ``AUC``,
            top-k ...), computed by Keras's ``compute_metrics`` on the same inference-mode predictions; a
            name the model compiled wins over tuner's own. Defaults to `False`.

    Raises:
        NonFiniteLoss: when the training loss of an epoch is NaN or infinite ("non-finite loss at
            epoch N").
    """

    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray],
        *,
        loss: Any,
        task: str,
        record_lr: bool = True,
        model_metrics: bool = False,
    ) -> None:
        super().__init__()
        self.train = train
        self.val = val
        self.loss_fn = keras.losses.get(loss) if isinstance(loss, str) else loss
        self.task = task
        self.record_lr = record_lr
        self.model_metrics = model_metrics
        self.metric = headline_metric(task)
        self.history: dict[str, list[float]] = {}
        # Both splits go through one predict and one loss call per epoch (fewer dispatches than two
        # separate evaluations; benchmarks/gap_overhead.py).
        self._n_train = len(train[0])
        self._x = np.concatenate([train[0], val[0]])
        self._y = np.concatenate([np.asarray(train[1]), np.asarray(val[1])])
        self._metric_fns = metric_functions(task)
        self._numpy_loss = numpy_loss(self.loss_fn)
        self._y64 = self._y.astype("float64")
        # The same rows every epoch: one chunk shape for the whole fit, traced once, padded by < 1 chunk.
        # Flat features: up to 8,192 rows per call; images and sequences (large activations): up to 2^19 input
        # values per call, at least 1,024 rows (digits' 8x8 images: 8,192 rows, so one call per epoch where two
        # of 809 rows cost 2-7 ms more; 28x28 images: 1,024).
        per_row = int(np.prod(self._x.shape[1:]))
        rows = 8192 if self._x.ndim == 2 else max(1024, min(8192, 2**19 // max(1, per_row)))
        self._chunk = even_chunk_size(len(self._x), rows)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.history = {}

    def _evaluate(self) -> tuple[dict[str, float], dict[str, float]]:
        """Honest figures of the training subset and the validation split, in one pass."""
        pred = predict_fixed_batches(self.model, self._x, self._chunk)
        n = self._n_train
        rows_of = (slice(0, n), slice(n, None))
        if self._numpy_loss is not None:
            per_example = self._numpy_loss(self._y64, pred).reshape(-1)
        else:
            per_example = np.asarray(ops.convert_to_numpy(self.loss_fn(self._y, pred)), dtype="float64").reshape(-1)
        if per_example.size == len(self._y):
            losses = [float(np.mean(per_example[rows])) for rows in rows_of]
        else:  # a reducing loss (a keras.losses.Loss object such as Huber()): one call per split
            losses = [
                float(ops.convert_to_numpy(ops.mean(self.loss_fn(self._y[rows], pred[rows])))) for rows in rows_of
            ]
        splits = []
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging model is reported, not warned about
            for rows, loss in zip(rows_of, losses, strict=True):
                out = {"loss": loss}
                for name, fn in self._metric_fns.items():
                    out[name] = fn(self._y[rows], pred[rows])
                if self.model_metrics:
                    out.update(self._compiled_metrics(self._y[rows], pred[rows]))
                splits.append(out)
        return splits[0], splits[1]

    def _compiled_metrics(self, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
        """The model's compiled metrics on these predictions (Keras's ``compute_metrics``), without its loss."""
        self.model.reset_metrics()
        results = self.model.compute_metrics(None, y, pred)
        out = {k: float(ops.convert_to_numpy(v)) for k, v in results.items() if k != "loss" and np.size(v) == 1}
        self.model.reset_metrics()
        return out

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            logs = {}
        keras_loss = logs.get("loss")
        if keras_loss is not None and not math.isfinite(float(keras_loss)):
            self.model.stop_training = True
            raise NonFiniteLoss(f"non-finite loss at epoch {epoch + 1}")
        keras_figures = {f"keras_{k}": float(v) for k, v in logs.items() if not k.startswith(("train_", "gap_"))}
        train, val = self._evaluate()
        if not math.isfinite(train["loss"]):
            self.model.stop_training = True
            raise NonFiniteLoss(f"non-finite loss at epoch {epoch + 1}")
        for key in list(logs):
            if not key.startswith("keras_"):
                del logs[key]
        logs.update(keras_figures)
        for name in train:
            logs[f"train_{name}"] = train[name]
            logs[f"val_{name}"] = val[name]
        logs["gap_loss"] = val["loss"] - train["loss"]
        for name in train:
            if name == "loss":
                continue
            sign = 1.0 if maximize(name) else -1.0
            logs[f"gap_{name}"] = sign * (train[name] - val[name])
        if self.record_lr and getattr(self.model, "optimizer", None) is not None:
            logs["lr"] = current_learning_rate(self.model.optimizer)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
