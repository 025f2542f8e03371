"""Reading a study's results back from its Optuna storage, without the space or dataset at hand."""

from __future__ import annotations

import dataclasses
from typing import Any

from tuner._store import default_storage, sqlite_path
from tuner.errors import ConfigError, NoCompleteTrial, Problem
from tuner.metrics import ranked
from tuner.study._process import restoring_process_state
from tuner.study._record import DEAD_WORKER, StudyRecord, read_trial

__all__ = ["StudyResults", "TrialReport", "load_study_results"]


@dataclasses.dataclass
class TrialReport:
    """One trial as a person reads it: what was tried and how it generalized."""

    number: int
    state: str
    values: list[float] | None
    params: dict[str, Any]
    metrics: dict[str, float]
    verdict: str | None
    reason: str | None
    suggestion: str | None
    best_epoch: int | None
    n_params: int | None
    wall_time: float | None
    fail_reason: str | None
    mlflow_run_id: str | None
    cv_folds: list[dict[str, Any]] | None = None  # cross-validated: each fold's figures and verdict
    cv_spread: dict[str, float] | None = None  # cross-validated: each metric's standard deviation over folds
    programs_compiled: int | None = None  # programs the backend traced or compiled for it (issue 24)

    @classmethod
    def from_frozen(cls, trial: Any) -> TrialReport:
        record = read_trial(trial)
        fail_reason = record.fail_reason or record.prune_reason
        if fail_reason is None and trial.state.name == "FAIL":
            fail_reason = DEAD_WORKER
        return cls(
            number=trial.number,
            state=trial.state.name.lower(),
            values=trial.values,
            params=dict(trial.params),
            metrics=dict(record.metrics),
            verdict=record.verdict,
            reason=record.reason,
            suggestion=record.suggestion,
            best_epoch=record.best_epoch,
            n_params=record.n_params,
            wall_time=record.wall_time,
            fail_reason=fail_reason,
            mlflow_run_id=record.mlflow_run_id,
            cv_folds=record.cv_folds,
            cv_spread=record.cv_spread,
            programs_compiled=record.programs_compiled,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class StudyResults:
    """Results of an Optuna study written by tuner.

    Args:
        study: the ``optuna.Study``.
        storage: the URL of its storage, where it is known. Defaults to `None`.
    """

    def __init__(self, study: Any, *, storage: str | None = None) -> None:
        self.study = study
        self.storage = storage
        self.record = StudyRecord(study)
        self.objective: list[str] = self.record.objective

    @property
    def multi_objective(self) -> bool:
        return len(self.study.directions) > 1

    def trials(self) -> list[TrialReport]:
        reports = [TrialReport.from_frozen(t) for t in self.study.get_trials(deepcopy=False)]
        dead = self.record.trial_fail_reasons()  # reasons recorded for trials whose worker died (set on the study)
        for r in reports:
            if r.state == "fail" and r.number in dead:
                r.fail_reason = dead[r.number]
        return reports

    def best(self) -> TrialReport:
        """The best trial; for multi-objective studies, the one selected on the Pareto front.

        Raises:
            NoCompleteTrial: when the study has no complete trial (a ``ConfigError``).
        """
        study = self.study
        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        if not complete:
            counts: dict[str, int] = {}
            for t in study.get_trials(deepcopy=False):
                counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
            raise NoCompleteTrial(
                [Problem(f"study {study.study_name!r}", "", "has no complete trial yet", value=counts or "no trials")]
            )
        if self.multi_objective:
            selected = self.record.selected_trial
            if selected is not None:
                return TrialReport.from_frozen(study.trials[selected])
            return TrialReport.from_frozen(ranked(study.best_trials, study.directions[0])[0])
        return TrialReport.from_frozen(study.best_trial)

    def best_test(self) -> dict[str, float] | None:
        """The best trial's test-split scores, when they were measured for that trial."""
        try:
            number = self.best().number
        except ConfigError:
            return None
        if self.record.best_test_trial == number:
            return self.record.best_test
        return None

    def counts(self) -> dict[str, int]:
        out = {"complete": 0, "pruned": 0, "fail": 0, "running": 0, "waiting": 0}
        for t in self.study.get_trials(deepcopy=False):
            out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
        return out

    def trials_dataframe(self) -> Any:
        """A pandas DataFrame: one row per trial with its parameters, objective, honest metrics, gap and verdict."""
        import pandas as pd

        rows = []
        for t in self.trials():
            row: dict[str, Any] = {"number": t.number, "state": t.state}
            if t.values is not None:
                for name, v in zip(self.objective, t.values, strict=False):
                    row[f"objective.{name}"] = v
            row.update({f"params.{k}": v for k, v in t.params.items()})
            row.update(t.metrics)
            row.update(
                verdict=t.verdict,
                best_epoch=t.best_epoch,
                n_params=t.n_params,
                wall_time=t.wall_time,
                programs_compiled=t.programs_compiled,
                fail_reason=t.fail_reason,
                mlflow_run_id=t.mlflow_run_id,
            )
            rows.append(row)
        return pd.DataFrame(rows)


@restoring_process_state()  # Optuna's logger is quiet while the study loads, then as it was
def load_study_results(study_name: str, *, storage: str | None = None) -> StudyResults:
    """Load a study by name from its storage (default ``sqlite:///mlruns/optuna.db``).

    Raises:
        ConfigError: when the store or the study does not exist (the message lists the studies there).
    """
    import optuna

    url = storage or default_storage()
    db = sqlite_path(url)
    if db is not None and not db.exists():
        raise ConfigError(
            [
                Problem(
                    url,
                    "",
                    "no study store here (run `python -m tuner study` first, or pass --storage)",
                    has_value=False,
                )
            ]
        )
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    names = optuna.study.get_all_study_names(storage=url)
    if study_name not in names:
        raise ConfigError(
            [Problem(url, f"study {study_name!r}", f"does not exist; studies here: {names}", value=study_name)]
        )
    return StudyResults(optuna.load_study(study_name=study_name, storage=url), storage=url)
