"""The exported model as an MLflow pyfunc model: what ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` run.

The model's folder (``model.keras`` and ``preprocessing.json``, see :class:`tuner.model.ExportedModel`)
is the pyfunc's one artifact; :class:`TunerPyfunc` loads it and answers with the file's own labels and
the class probabilities (``label``, ``proba_<label>`` columns), or ``prediction`` for regression. This
module imports MLflow at import time; it is imported only when a model is logged or loaded.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

__all__ = ["ARTIFACT", "TunerPyfunc"]

ARTIFACT = "exported"  # the name of the model folder among the pyfunc's artifacts


class TunerPyfunc(mlflow.pyfunc.PythonModel):
    """Raw rows in (the features as in the user's file), labels and probabilities out."""

    def load_context(self, context: Any) -> None:
        from tuner.model import ExportedModel

        self.exported = ExportedModel.load(context.artifacts[ARTIFACT])

    # The logged signature is the input schema. A DataFrame hint is one MLflow infers no schema from and
    # validates nothing against (an image model gets arrays through it); with no hint MLflow warns.
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.exported.predict_frame(model_input)
