"""The best model of a study: kept while trials run, scored once on the test split and logged at the end.

Keras, Optuna and the training stage are imported inside the methods, so that importing tuner stays light.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuner._logging import get_logger
from tuner._store import DEFAULT_STORE, journal_path, sqlite_path
from tuner.errors import ConfigError, Problem
from tuner.metrics import maximizes
from tuner.study._interrupts import deferring_interrupts
from tuner.study._record import StudyRecord, read_trial
from tuner.study._settings import completed_name, completed_storage
from tuner.study._types import RunningStudy

__all__ = ["BestModel", "close_tracking", "load_best_model", "model_folder", "register_best_model"]

_logger = get_logger(__name__)


class BestModel:
    """This process's best model so far, in a temporary ``.keras`` file until the study's tracking closes."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.trial: int | None = None

    @staticmethod
    def is_best(optuna_study: Any, directions: Sequence[str], values: Sequence[float]) -> bool:
        """Whether the first objective beats every complete trial so far."""
        import optuna

        complete = optuna_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        done = [t.values[0] for t in complete]
        if not done:
            return True
        return values[0] > max(done) if maximizes(directions[0]) else values[0] < min(done)

    def keep(self, number: int, model: Any) -> None:
        """Keep trial ``number``'s model (replacing the one kept before); None (a cross-validated trial, refitted
        at the end) keeps the number only."""
        self.discard()
        if model is not None:
            fd, self.path = tempfile.mkstemp(suffix=".keras", prefix="tuner-best-")
            os.close(fd)
            model.save(self.path)
        self.trial = number

    def keep_bytes(self, number: int, data: bytes) -> None:
        """Keep trial ``number``'s model from the bytes of its ``.keras`` file (trained on a Ray node)."""
        self.discard()
        fd, self.path = tempfile.mkstemp(suffix=".keras", prefix="tuner-best-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self.trial = number

    def discard(self) -> None:
        if self.path:
            Path(self.path).unlink(missing_ok=True)
        self.path = self.trial = None

    def finish(self, study: RunningStudy) -> dict[str, Any]:
        """Score the study's best trial on the test split once (and log its model when this process trained it).

        Sets ``study.best_test``, discards the kept model, and returns what the study's tracking run
        records about the best trial (empty without a complete trial).
        """
        try:
            best = study.best_trial()
        except ConfigError:
            best = None
        info: dict[str, Any] = {}
        if best is not None:
            try:
                self._score_and_log(study, best)
            except Exception as err:  # e.g. a custom model that does not load back: keep the study's results
                _logger.warning("could not score or log the best model of trial %d: %s", best.number, err)
            record = StudyRecord(study.optuna_study)
            info = {
                "metrics": {**best.metrics, **(study.best_test or {})},
                "params": best.params,
                "tags": {
                    "best_trial_number": best.number,
                    "best_run_id": best.mlflow_run_id,
                    "best_verdict": best.verdict,
                    "best_model_uri": record.best_exported_model_uri,
                    "best_keras_model_uri": record.best_model_uri,
                },
            }
        self.discard()
        return info

    def _score_and_log(self, study: RunningStudy, best: Any) -> None:
        import keras

        from tuner.training import evaluate_test

        record = StudyRecord(study.optuna_study)
        trial = read_trial(study.optuna_study.trials[best.number])
        refitted = bool(trial.cv_folds)  # cross-validated: refit on the training and validation rows, then test
        if self.trial != best.number or (self.path is None and not refitted):
            if record.best_test_trial == best.number and record.best_test:
                study.best_test = record.best_test  # scored by an earlier invocation or another worker
            return
        params = trial.resolved_params or best.params
        data = study.dataset
        if refitted:
            from tuner.training import refit

            model, data = refit(
                params,
                study.dataset,
                int(trial.best_epoch or 1),
                seed=study.settings.seed + best.number,
                builder=study.builder,
            )
        else:
            model = keras.models.load_model(self.path)
        study.best_test = evaluate_test(model, data, params)
        record.set_best_test(best.number, study.best_test)
        if study.settings.log_best_model:
            _export(study, best, model, params, record, data)
        keras.backend.clear_session()


def close_tracking(study: RunningStudy, status: str) -> None:
    """Close a study's tracking: score (and export) its best model, end its study run with ``status``."""
    from tuner.tracking import NullTracker

    best: dict[str, Any] = {}
    try:
        best = study.best_kept.finish(study)
    finally:
        try:
            with deferring_interrupts(raise_after=False):  # a study run is never left RUNNING halfway
                run_id = None if study.settings.parent_run_id else study.tracker.parent_run_id  # this process's own
                study.tracker.end_study(status=status, best=best)
                if run_id is not None and getattr(study.tracker, "down", None):  # tracking went away: sync closes it
                    StudyRecord(study.optuna_study).add_unclosed_study_run(run_id, status)
        except Exception as err:
            _logger.warning("could not close the study's tracking run: %s", err)
        study.tracker = NullTracker()


def _export(study: RunningStudy, best: Any, model: Any, params: Any, record: StudyRecord, dataset: Any) -> None:
    """Save the best model with its preprocessing (fitted on ``dataset``'s training rows) in the local store, and
    log it on its trial's MLflow run."""
    from tuner.model import ExportedModel
    from tuner.training import prepare_data

    data = prepare_data(dataset, params)
    info = {
        "study": study.settings.study_name,
        "trial": best.number,
        "metrics": best.metrics,
        "test": study.best_test,
        "dataset": study.dataset.name,
    }
    if data.preprocessing is None:  # Dataset.__post_init__ always fills it in
        raise ValueError(f"dataset {data.name!r} has no preprocessing record")
    exported = ExportedModel(model, data.preprocessing, task=data.task, info=info)
    folder = model_folder(completed_storage(study.settings), completed_name(study.settings))
    staging = folder.with_name(f".{folder.name}.{os.getpid()}")  # saved whole, then moved in place
    shutil.rmtree(staging, ignore_errors=True)
    exported.save(staging)
    shutil.rmtree(folder, ignore_errors=True)
    staging.replace(folder)
    record.set_best_model_dir(best.number, str(folder.resolve()))
    if best.mlflow_run_id:
        try:
            example = exported.input_example(study.dataset.x_val)
            uris = study.tracker.log_model(best.mlflow_run_id, exported, example=example)
            if uris:
                record.set_best_model(best.number, uris["keras_model"], exported_uri=uris["model"])
        except Exception as err:
            _logger.warning("could not log the best model to MLflow: %s", err)


def model_folder(storage: str, study_name: str) -> Path:
    """Where a study's exported best model is kept: ``models/<study>/`` beside its SQLite or journal storage,
    else under ``mlruns/``."""
    path = sqlite_path(storage) or journal_path(storage)
    store = path.parent if path is not None else DEFAULT_STORE
    return store / "models" / re.sub(r"[^A-Za-z0-9_.-]+", "_", study_name)


def load_best_model(study: Any, *, storage: str | None = None) -> Any:
    """The best model of a study, ready to use: raw inputs in, labels (or values) out.

    Args:
        study: a :class:`~tuner.study.Study` or the name of a study in ``storage``.
        storage: the Optuna storage URL of a study given by name. Defaults to the default storage.

    Returns:
        A :class:`tuner.model.ExportedModel`: ``predict(frame)`` gives the file's own labels,
        ``predict_proba`` class probabilities, ``keras_model`` the trained Keras model.

    Raises:
        ConfigError: when the study does not exist or has no saved best model.
    """
    from tuner.model import ExportedModel
    from tuner.study._results import load_study_results

    tracking_uri = None  # a study name: $MLFLOW_TRACKING_URI, else mlruns/mlflow.db
    if isinstance(study, str):
        name, optuna_study = study, load_study_results(study, storage=storage).study
    else:
        name, optuna_study = study.settings.study_name, study.optuna_study
        tracking_uri = study.settings.tracking_uri
    record = StudyRecord(optuna_study)
    folder = record.best_model_dir
    if folder and Path(folder).is_dir():
        return ExportedModel.load(folder)
    uri = record.best_exported_model_uri
    if uri and folder:  # saved on another machine: the copy logged to MLflow
        from tuner.tracking import load_logged_model

        return load_logged_model(uri, tracking_uri=tracking_uri)
    where = f"study {name!r}"
    rule = (
        f"its best model folder is gone ({folder})"
        if folder
        else "has no saved best model: it was saved by an earlier version of tuner, with log_best_model off, or "
        "before any trial completed; run `python -m tuner study` again to save it"
    )
    raise ConfigError([Problem(where, "best model", rule, has_value=False)])


def register_best_model(study: Any, name: str, *, alias: str = "champion") -> str:
    """Register the study's best model in the MLflow Model Registry as ``name`` and point ``alias`` at it.

    Args:
        study: a :class:`~tuner.study.Study` whose tracking is on and whose best model has been logged.
        name: the registered model's name.
        alias: the alias set on the new version. Defaults to ``"champion"``.

    Returns:
        The new version, as a string. ``models:/NAME@ALIAS`` then loads (and ``mlflow models serve`` serves) it.

    Raises:
        ConfigError: when the study's best model was not logged to MLflow (tracking off, or no complete trial).
    """
    from tuner.tracking import register_model

    record = StudyRecord(study.optuna_study)
    uri = record.best_exported_model_uri
    if not uri:
        raise ConfigError(
            [
                Problem(
                    f"study {study.settings.study_name!r}",
                    "--register",
                    "needs the best model logged to MLflow (tracking on and a complete trial)",
                    value=name,
                )
            ]
        )
    tags = {"tuner.study": study.settings.study_name, "tuner.trial": record.best_model_trial}
    return register_model(uri, name, alias=alias, tracking_uri=study.settings.tracking_uri, tags=tags)
