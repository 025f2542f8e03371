"""The best model of a study: kept while trials run, scored once on the test split and logged at the end.

Keras, Optuna and the training stage are imported inside the methods, so that importing tuner stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuner._logging import get_logger
from tuner.errors import ConfigError
from tuner.study._record import StudyRecord, read_trial

__all__ = ["BestModel"]

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
        return values[0] > max(done) if directions[0] == "maximize" else values[0] < min(done)

    def keep(self, number: int, model: Any) -> None:
        """Keep trial ``number``'s model (replacing the one kept before)."""
        from tuner.tracking import save_model_tmp

        self.discard()
        self.path = save_model_tmp(model)
        self.trial = number

    def discard(self) -> None:
        if self.path:
            Path(self.path).unlink(missing_ok=True)
        self.path = self.trial = None

    def finish(self, study: Any) -> dict[str, Any]:
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
            info = {"metrics": {**best.metrics, **(study.best_test or {})}, "params": best.params,
                    "tags": {"best_trial_number": best.number, "best_run_id": best.mlflow_run_id,
                             "best_verdict": best.verdict,
                             "best_model_uri": StudyRecord(study.optuna_study).best_model_uri}}
        self.discard()
        return info

    def _score_and_log(self, study: Any, best: Any) -> None:
        import keras

        from tuner.training import evaluate_test, prepare_data

        record = StudyRecord(study.optuna_study)
        if self.path is None or self.trial != best.number:
            if record.best_test_trial == best.number and record.best_test:
                study.best_test = record.best_test  # scored by an earlier invocation or another worker
            return
        model = keras.models.load_model(self.path)
        params = read_trial(study.optuna_study.trials[best.number]).resolved_params or best.params
        if best.mlflow_run_id and study.settings.log_best_model:
            try:
                example = prepare_data(study.dataset, params).x_val[:5]
                uri = study.tracker.log_model(best.mlflow_run_id, model, example=example)
                if uri is not None:
                    record.set_best_model(best.number, uri)
            except Exception as err:
                _logger.warning("could not log the best model to MLflow: %s", err)
        study.best_test = evaluate_test(model, study.dataset, params)
        record.set_best_test(best.number, study.best_test)
        keras.backend.clear_session()
