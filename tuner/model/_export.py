"""The exported model: a trained Keras model with its preprocessing inside, raw inputs in, labels out.

:class:`ExportedModel` holds the trained ``keras.Model`` and the data stage's
:class:`~tuner.data.Preprocessing` (one-hot encoding of text columns, the scalers fitted on the training
split, the labels of the classes). It takes the features as in the user's file (a DataFrame with the
file's columns, or arrays of the example shape) and returns the file's own labels, class
probabilities, or regression predictions. It saves to a folder (``model.keras`` and
``preprocessing.json``) that loads back in any process; the MLflow pyfunc flavour
(:mod:`tuner.tracking`) wraps that folder. Keras is imported when a model is loaded or run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tuner.data import Preprocessing
from tuner.space import TASKS

__all__ = ["ExportedModel", "MODEL_FILE", "PREPROCESSING_FILE"]

MODEL_FILE = "model.keras"
PREPROCESSING_FILE = "preprocessing.json"


class ExportedModel:
    """A trained model that takes raw inputs: the preprocessing of its study is part of it.

    Args:
        keras_model: the trained ``keras.Model`` (it takes scaled, encoded features).
        preprocessing: how raw inputs become its features (:attr:`tuner.data.Dataset.preprocessing`
            of the data the model trained on, scalers included).
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        info: JSON-able facts kept beside the model (study, trial, metrics). Defaults to `None`.

    Examples:

    >>> model = study.best_model()                     # doctest: +SKIP
    >>> model.predict(pandas.read_csv("new_rows.csv"))  # doctest: +SKIP
    array(['yes', 'no', ...], dtype=object)
    """

    def __init__(
        self, keras_model: Any, preprocessing: Preprocessing, *, task: str, info: dict[str, Any] | None = None
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"`task` must be one of {list(TASKS)}. Received: task={task!r}")
        self.keras_model = keras_model
        self.preprocessing = preprocessing
        self.task = task
        self.info = dict(info or {})

    def __repr__(self) -> str:
        p = self.preprocessing
        inputs = [c.name for c in p.columns] if p.kind == "table" else f"arrays of shape {p.input_shape}"
        return f"ExportedModel(task={self.task!r}, inputs={inputs}, labels={p.labels})"

    # -- predicting --------------------------------------------------------------------------------
    def transform(self, inputs: Any) -> np.ndarray:
        """Raw inputs -> the features the Keras model takes (encoded, scaled, shaped for its input).

        Raises:
            DataError: a missing column, a non-numeric value, an unknown category, a wrong shape.
        """
        x = self.preprocessing.transform(inputs, where="inputs")
        shape = tuple(int(d) for d in self.keras_model.input_shape[1:])
        if x.shape[1:] != shape and None not in shape and math.prod(shape) == math.prod(x.shape[1:]):
            x = x.reshape(len(x), *shape)  # the view the model family saw (a pure reshape)
        return x

    def _outputs(self, inputs: Any) -> np.ndarray:
        x = self.transform(inputs)
        if len(x) == 0:
            return np.zeros((0, self.keras_model.output_shape[-1]), dtype=np.float32)
        return np.asarray(self.keras_model.predict(x, verbose=0), dtype=np.float32)

    def predict_proba(self, inputs: Any) -> np.ndarray:
        """Class probabilities, ``(n, n_classes)``, in the order of ``preprocessing.labels``.

        Raises:
            ValueError: for a regression model.
        """
        if self.task == "regression":
            raise ValueError("predict_proba: a regression model predicts values; use predict()")
        out = self._outputs(inputs)
        if self.task == "binary" and out.shape[-1] == 1:
            p = out.reshape(-1)
            return np.stack([1.0 - p, p], axis=1)
        return out  # multiclass, a two-unit softmax, or one probability per label (multi-label rows)

    def predict(self, inputs: Any) -> np.ndarray:
        """Predicted labels in the file's own values (classification), 0/1 rows (multi-label targets) or
        predicted values (regression: one per row, or a row of them for vector targets)."""
        if self.task == "regression":
            out = self._outputs(inputs)
            return out.reshape(-1) if out.shape[-1] == 1 else out
        proba = self.predict_proba(inputs)
        if self.task == "binary" and self.preprocessing.labels is None:  # multi-label rows: 0/1 per label
            return (proba > 0.5).astype(np.int64)
        return self._labels(proba)

    def _labels(self, proba: np.ndarray) -> np.ndarray:
        # binary: the class threshold the honest metrics use (p > 0.5); multiclass: the most probable class
        index = (proba[:, 1] > 0.5).astype(np.int64) if self.task == "binary" else np.argmax(proba, axis=1)
        return self.preprocessing.labels_of(index)

    def predict_frame(self, inputs: Any) -> Any:
        """A pandas DataFrame: ``label`` and one ``proba_<label>`` column per class, or ``prediction``."""
        import pandas as pd

        if self.task == "regression":
            return pd.DataFrame({"prediction": self.predict(inputs)})
        proba = self.predict_proba(inputs)
        labels = self.preprocessing.labels or ()
        frame = pd.DataFrame({"label": self._labels(proba)})
        for j, label in enumerate(labels):
            frame[f"proba_{label}"] = proba[:, j].astype(np.float64)
        return frame

    def input_example(self, x: np.ndarray, n: int = 5) -> Any:
        """Raw inputs (a DataFrame for tables, else an array) for ``n`` rows of encoded, unscaled features."""
        return self.preprocessing.example(np.asarray(x)[:n])

    # -- saving ------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Save to ``folder`` (``model.keras`` and ``preprocessing.json``); returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.keras_model.save(folder / MODEL_FILE)
        meta = {"task": self.task, "preprocessing": self.preprocessing.to_dict(), "info": self.info}
        (folder / PREPROCESSING_FILE).write_text(json.dumps(meta, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ExportedModel:
        """Load a model saved with :meth:`save`."""
        import keras

        folder = Path(folder)
        meta = json.loads((folder / PREPROCESSING_FILE).read_text())
        model = keras.models.load_model(folder / MODEL_FILE, compile=False)
        return cls(model, Preprocessing.from_dict(meta["preprocessing"]), task=meta["task"], info=meta.get("info"))
