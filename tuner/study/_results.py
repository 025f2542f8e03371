"""Reading a study's results back from its Optuna storage, without the space or dataset at hand."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tuner._store import default_storage, sqlite_path
from tuner.errors import ConfigError, Problem

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

    @classmethod
    def from_frozen(cls, trial: Any) -> TrialReport:
        attrs = trial.user_attrs
        fail_reason = attrs.get("fail_reason") or attrs.get("prune_reason")
        if fail_reason is None and trial.state.name == "FAIL":
            fail_reason = "worker died (no heartbeat)"
        return cls(number=trial.number, state=trial.state.name.lower(), values=trial.values, params=dict(trial.params),
                   metrics=dict(attrs.get("metrics", {})), verdict=attrs.get("verdict"), reason=attrs.get("reason"),
                   suggestion=attrs.get("suggestion"), best_epoch=attrs.get("best_epoch"),
                   n_params=attrs.get("n_params"), wall_time=attrs.get("wall_time"),
                   fail_reason=fail_reason, mlflow_run_id=attrs.get("mlflow_run_id"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class StudyResults:
    """Results of an Optuna study written by tuner.

    Args:
        study: the ``optuna.Study``.
    """

    def __init__(self, study: Any) -> None:
        self.study = study
        self.objective: list[str] = list((study.user_attrs.get("tuner") or {}).get("objective") or ["objective"])

    @property
    def multi_objective(self) -> bool:
        return len(self.study.directions) > 1

    def trials(self) -> list[TrialReport]:
        reports = [TrialReport.from_frozen(t) for t in self.study.get_trials(deepcopy=False)]
        attrs = self.study.user_attrs
        for r in reports:  # reasons recorded for trials whose worker died (set on the study)
            if r.state == "fail" and f"fail_reason.{r.number}" in attrs:
                r.fail_reason = attrs[f"fail_reason.{r.number}"]
        return reports

    def best(self) -> TrialReport:
        """The best trial; for multi-objective studies, the one selected on the Pareto front.

        Raises:
            ConfigError: when the study has no complete trial.
        """
        study = self.study
        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        if not complete:
            counts = {}
            for t in study.get_trials(deepcopy=False):
                counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
            raise ConfigError([Problem(f"study {study.study_name!r}", "", "has no complete trial yet",
                                       value=counts or "no trials")])
        if self.multi_objective:
            selected = study.user_attrs.get("selected_trial")
            if selected is not None:
                return TrialReport.from_frozen(study.trials[selected])
            maximize = study.directions[0].name == "MAXIMIZE"
            front = sorted(study.best_trials, key=lambda t: -t.values[0] if maximize else t.values[0])
            return TrialReport.from_frozen(front[0])
        return TrialReport.from_frozen(study.best_trial)

    def best_test(self) -> dict[str, float] | None:
        """The best trial's test-split scores, when they were measured for that trial."""
        attrs = self.study.user_attrs
        try:
            number = self.best().number
        except ConfigError:
            return None
        if attrs.get("best_test_trial") == number:
            return attrs.get("best_test")
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
                for name, v in zip(self.objective, t.values):
                    row[f"objective.{name}"] = v
            row.update({f"params.{k}": v for k, v in t.params.items()})
            row.update(t.metrics)
            row.update(verdict=t.verdict, best_epoch=t.best_epoch, n_params=t.n_params, wall_time=t.wall_time,
                       fail_reason=t.fail_reason, mlflow_run_id=t.mlflow_run_id)
            rows.append(row)
        return pd.DataFrame(rows)


def load_study_results(study_name: str, *, storage: str | None = None) -> StudyResults:
    """Load a study by name from its storage (default ``sqlite:///mlruns/optuna.db``).

    Raises:
        ConfigError: when the store or the study does not exist (the message lists the studies there).
    """
    import optuna

    url = storage or default_storage()
    if sqlite_path(url) is not None and not sqlite_path(url).exists():
        raise ConfigError([Problem(url, "", "no study store here (run `python -m tuner study` first, or pass "
                                   "--storage)", has_value=False)])
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    names = optuna.study.get_all_study_names(storage=url)
    if study_name not in names:
        raise ConfigError([Problem(url, f"study {study_name!r}", f"does not exist; studies here: {names}",
                                   value=study_name)])
    return StudyResults(optuna.load_study(study_name=study_name, storage=url))
