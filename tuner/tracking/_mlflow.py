"""MLflow records of a study: one parent run per invocation, one nested child run per trial.

Written with ``mlflow.MlflowClient`` (not optuna-integration's deprecated callback): per-epoch metrics
with their ``step``, logged in batches; run status FINISHED / KILLED (pruned, interrupted) / FAILED; the
best model logged as a Keras model that loads back with ``mlflow.keras.load_model``. MLflow (and Keras)
are imported inside the methods, so that importing tuner stays light.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import Any

from tuner._logging import get_logger
from tuner._store import default_tracking_uri, local_store_dir

__all__ = ["EXPERIMENT_KIND", "MlflowTracker", "load_logged_model", "register_model"]

_logger = get_logger(__name__)

_MAX_PARAM_LENGTH = 6000
_PROGRESS_BARS = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED", "interrupted": "KILLED"}
# MLflow 3's UI opens an experiment of this kind on its training runs, not on the GenAI overview
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _param_value(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    if len(text) > _MAX_PARAM_LENGTH:
        _logger.warning("parameter value truncated to %d characters for MLflow", _MAX_PARAM_LENGTH)
        text = text[:_MAX_PARAM_LENGTH]
    return text


class MlflowTracker:
    """Records a study in MLflow (a :class:`~tuner.tracking.Tracker`).

    Args:
        tracking_uri: any MLflow tracking URI. Defaults to :func:`default_tracking_uri`.
        experiment: the experiment name (one per study).
        dataset: the study's :class:`~tuner.data.Dataset`, logged as the training data input of the study
            run and of every trial run. Defaults to `None`.
    """

    def __init__(self, experiment: str, *, tracking_uri: str | None = None, dataset: Any = None) -> None:
        import logging

        from mlflow import MlflowClient

        if "MLFLOW_LOGGING_LEVEL" not in os.environ:  # the first use of a store logs its migrations at INFO
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        self.tracking_uri = tracking_uri or default_tracking_uri()
        store = local_store_dir(self.tracking_uri)
        if store is not None:
            store.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            location = None
            if store is not None:
                slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment)
                location = (store.resolve() / "artifacts" / slug).as_uri()
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=location, tags=EXPERIMENT_KIND
            )
        else:
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp.experiment_id)
            self.experiment_id = exp.experiment_id
            if not exp.tags.get("mlflow.experimentKind"):  # made by an earlier version of tuner
                for key, value in EXPERIMENT_KIND.items():
                    self.client.set_experiment_tag(self.experiment_id, key, value)
        self.dataset = dataset
        self._dataset_input: Any = None
        self.parent_run_id: str | None = None
        self._owns_parent = False
        self._epoch_loggers: dict[str, Any] = {}

    # -- batches ---------------------------------------------------------------------------
    def log_metrics(
        self, run_id: str, rows: list[tuple[str, float, int]], tags: Mapping[str, Any] | None = None
    ) -> None:
        """Log ``(key, value, step)`` rows (and ``tags``) with ``log_batch``, which splits them as MLflow's limits
        ask."""
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, int(s)) for k, v, s in rows if v is not None and math.isfinite(float(v))]
        run_tags = [RunTag(str(k), str(v)) for k, v in (tags or {}).items()]
        if metrics or run_tags:
            self.client.log_batch(run_id, metrics=metrics, tags=run_tags, synchronous=True)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(
            run_id, params=[Param(str(k), _param_value(v)) for k, v in params.items()], synchronous=True
        )

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log_metrics(run_id, [], tags=tags)

    # -- study (parent) run -------------------------------------------------------------------
    def start_study(
        self, *, study_name: str, settings: Mapping[str, Any], space_yaml: str, dataset: Mapping[str, Any]
    ) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{study_name} @ {time.strftime('%Y-%m-%d %H:%M:%S')}",
            tags={"tuner.kind": "study", "tuner.study": study_name},
        )
        self.parent_run_id = run.info.run_id
        self._owns_parent = True
        self.log_params(self.parent_run_id, {k: v for k, v in settings.items() if v is not None})
        self.set_tags(self.parent_run_id, {"dataset": dataset.get("name", ""), "task": dataset.get("task", "")})
        self.client.log_text(self.parent_run_id, space_yaml, "space.yaml")
        self.client.log_dict(self.parent_run_id, dict(dataset), "dataset.json")
        self.client.log_dict(self.parent_run_id, dict(settings), "settings.json")
        self.log_dataset(self.parent_run_id)
        return self.parent_run_id

    def join_study(self, parent_run_id: str) -> None:
        """Record trials under the parent run of the process that started this worker (it ends that run)."""
        self.parent_run_id = parent_run_id
        self._owns_parent = False

    def end_study(self, *, status: str, best: Mapping[str, Any] | None = None) -> None:
        if self.parent_run_id is None or not self._owns_parent:
            return
        if best:
            run_id = self.parent_run_id
            metrics = [(f"best_{k}", v, 0) for k, v in best.get("metrics", {}).items()]
            self.log_metrics(run_id, metrics)
            self.log_params(run_id, {f"best.{k}": v for k, v in best.get("params", {}).items()})
            self.set_tags(run_id, {k: v for k, v in best.get("tags", {}).items() if v is not None})
        self.client.set_terminated(self.parent_run_id, status=status)
        self._owns_parent = False  # ended once

    # -- trial (child) runs ------------------------------------------------------------------
    def start_trial(self, number: int, params: Mapping[str, Any], *, study_name: str) -> str:
        tags = {
            "mlflow.parentRunId": self.parent_run_id,
            "optuna_trial_number": str(number),
            "tuner.study": study_name,
            "tuner.kind": "trial",
            "state": "running",
        }
        run = self.client.create_run(
            self.experiment_id, run_name=f"trial-{number}", tags={k: v for k, v in tags.items() if v is not None}
        )
        self.log_params(run.info.run_id, params)
        self.log_dataset(run.info.run_id)
        return run.info.run_id

    def trial_callbacks(self, run_id: str | None) -> list[Any]:
        """An :class:`~tuner.tracking.EpochLogger` for the trial's run; :meth:`end_trial` flushes it."""
        from tuner.tracking._epochs import EpochLogger

        if run_id is None:
            return []
        logger = self._epoch_loggers[run_id] = EpochLogger(self, run_id)
        return [logger]

    def end_trial(
        self,
        run_id: str | None,
        *,
        state: str,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if run_id is None:
            return
        if params:
            self.log_params(run_id, params)
        logger = self._epoch_loggers.pop(run_id, None)
        rows = logger.take_rows() if logger is not None else []  # the epochs not sent yet, in the same batch
        rows += [(k, v, 0) for k, v in (metrics or {}).items()]
        self.log_metrics(
            run_id, rows, tags={"state": state, **{k: v for k, v in (tags or {}).items() if v is not None}}
        )
        self.client.set_terminated(run_id, status=STATUS[state])
        if logger is not None and logger.history:
            self._log_learning_curves(run_id, logger.history)

    def _log_learning_curves(self, run_id: str, history: dict[str, list[float]]) -> None:
        """The trial's honest curves as ``learning_curves.png`` on its run (the per-epoch metrics are its charts)."""
        from tuner.tracking._curves import plot_learning_curves

        if not history.get("train_loss") or not history.get("val_loss"):
            return  # no honest curves to draw
        try:
            fig = plot_learning_curves(history, gaps=True, compact=True)
            self.client.log_figure(run_id, fig, "learning_curves.png")
        except Exception as err:  # a plot must never fail a trial's record
            _logger.warning("could not plot the learning curves of run %s: %s", run_id, err)

    def log_dataset(self, run_id: str) -> None:
        """Log the study's training data as the run's dataset input (name, digest, source, schema)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        if self.dataset is None:
            return
        if self._dataset_input is None:  # the entity from the dataset's public to_dict()
            d = _mlflow_dataset(self.dataset).to_dict()
            self._dataset_input = Dataset(
                name=d["name"],
                digest=d["digest"],
                source_type=d["source_type"],
                source=d["source"],
                schema=d.get("schema"),
                profile=d.get("profile"),
            )
        context = InputTag(key="mlflow.data.context", value="training")
        self.client.log_inputs(run_id, datasets=[DatasetInput(self._dataset_input, tags=[context])])

    def log_model(self, run_id: str, model: Any, *, example: Any = None) -> dict[str, str]:
        """Log an exported model (:class:`tuner.model.ExportedModel`) as the pyfunc ``model`` of a run.

        The bare Keras model is logged beside it as ``keras_model`` (Keras flavor: ``mlflow.keras.load_model``,
        scaled features in), as studies have always logged it.

        It takes raw rows and answers with labels and probabilities; ``example`` (a few raw rows) gives it
        its signature and input example, so ``mlflow models serve`` checks requests against the columns.
        Returns ``{"model": URI, "keras_model": URI}``.
        """
        import warnings

        import keras
        import mlflow
        import numpy as np
        import pandas as pd
        from mlflow.models import infer_signature

        with tempfile.TemporaryDirectory(prefix="tuner-model-") as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow's hints about integer columns and type hints
            from tuner.tracking._pyfunc import ARTIFACT, TunerPyfunc

            signature = None if example is None else infer_signature(example, model.predict_frame(example))
            folder = model.save(os.path.join(tmp, "exported"))
            with (
                fluent_tracking_uri(self.tracking_uri),
                mlflow.start_run(run_id=run_id, nested=True, log_system_metrics=False),
            ):
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=TunerPyfunc(),
                    artifacts={ARTIFACT: str(folder)},
                    signature=signature,
                    input_example=example,
                    pip_requirements=[
                        f"keras=={keras.__version__}",
                        f"numpy=={np.__version__}",
                        f"pandas=={pd.__version__}",
                    ],
                )
                keras_info = mlflow.keras.log_model(
                    model.keras_model, name="keras_model", pip_requirements=[f"keras=={keras.__version__}"]
                )
        return {"model": info.model_uri, "keras_model": keras_info.model_uri}

    def fail_dead_trial(self, run_id: str, reason: str) -> None:
        """Close the run of a trial whose worker died as FAILED, with the reason as a tag."""
        self.client.set_tag(run_id, "state", "failed")
        self.client.set_tag(run_id, "fail_reason", reason)
        self.client.set_terminated(run_id, status="FAILED")


@contextlib.contextmanager
def fluent_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's fluent API (``mlflow.start_run``, ``log_model``, ``register_model``, ``pyfunc.load_model``) on ``uri``
    for a block. ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment, where every
    later study, report and subprocess of this process would read it (a password included): the variable and
    MLflow's own setting are put back afterwards. The block's model uploads and downloads draw no progress bars
    in tuner's output (unless ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` is set)."""
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    bars = os.environ.get(_PROGRESS_BARS)
    if bars is None:
        os.environ[_PROGRESS_BARS] = "false"
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # None unsets both
        if bars is None:
            os.environ.pop(_PROGRESS_BARS, None)


def _mlflow_dataset(dataset: Any) -> Any:
    """An MLflow dataset of a study's training split: the raw table (text columns as text) or the arrays."""
    import warnings

    import mlflow.data
    from mlflow.data.code_dataset_source import CodeDatasetSource

    pre = dataset.preprocessing
    path = dataset.source[len("file ") :] if dataset.source.startswith("file ") else None
    source = path or CodeDatasetSource({"tuner.dataset": dataset.name, "tuner.source": dataset.source})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hints about integer columns and ambiguous sources
        if pre is not None and pre.kind == "table":
            frame = pre.example(dataset.x_train)
            if pre.target:
                frame[pre.target] = pre.labels_of(dataset.y_train) if pre.labels is not None else dataset.y_train
            return mlflow.data.from_pandas(frame, source=source, name=dataset.name, targets=pre.target)
        return mlflow.data.from_numpy(dataset.x_train, targets=dataset.y_train, source=source, name=dataset.name)


def load_logged_model(model_uri: str, *, tracking_uri: str | None = None) -> Any:
    """The :class:`tuner.model.ExportedModel` logged at ``model_uri`` (``models:/...`` or ``runs:/...``).

    Raises:
        ConfigError: when the URI holds a model that tuner did not export (e.g. one logged by an earlier version).
    """
    import mlflow

    from tuner.errors import ConfigError, Problem
    from tuner.tracking._pyfunc import TunerPyfunc

    with fluent_tracking_uri(tracking_uri or default_tracking_uri()):
        python_model = mlflow.pyfunc.load_model(model_uri)
    try:
        inner = python_model.unwrap_python_model()
    except Exception:
        inner = None
    if not isinstance(inner, TunerPyfunc):
        raise ConfigError(
            [
                Problem(
                    model_uri,
                    "model",
                    "is not a model exported by tuner (raw inputs in, labels "
                    "out); run the study again to export its best model",
                    has_value=False,
                )
            ]
        )
    return inner.exported


def register_model(
    model_uri: str,
    name: str,
    *,
    alias: str = "champion",
    tracking_uri: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> str:
    """Register a logged model in the Model Registry under ``name`` and point ``alias`` at the new version.

    Returns:
        The new version's number, as a string.
    """
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri or default_tracking_uri()
    with fluent_tracking_uri(uri):
        version = mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in (tags or {}).items()})
    MlflowClient(tracking_uri=uri).set_registered_model_alias(name, alias, version.version)
    return str(version.version)
