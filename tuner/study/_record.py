"""The trial record: the one module that writes and reads what tuner stores on Optuna trials and studies.

Optuna keeps a trial's user attributes as untyped JSON under string keys. Every key tuner uses is named
here once, with its type, so writers (the objective, the stale-trial handler, the selection) and readers
(results, reports, the budget) agree. Studies written by earlier versions of tuner use the same keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["TrialRecord", "StudyRecord", "Recipe", "read_trial", "INTERRUPTED", "DEAD_WORKER", "LESSONS"]

INTERRUPTED = "interrupted"  # the fail reason of a trial stopped by Ctrl-C; it gives its budget place back
DEAD_WORKER = "worker died (no heartbeat)"  # what a failed trial without a stored reason is reported as
LESSONS = ("ablation", "confirmation", "refinement")  # what the study teaches, stored on it as lesson.<kind>


@dataclasses.dataclass
class TrialRecord:
    """What tuner stored on one trial (every field optional: a running or failed trial has only some).

    Attributes:
        resolved_params: every knob's value as the builder saw it (defaults and fixed values included).
        device: the device the trial trained on, e.g. ``cpu:0``.
        worker_pid: the process that ran it.
        mlflow_run_id: its nested MLflow run, when tracking was on.
        metrics: honest metrics at the chosen epoch (``val_accuracy``, ``gap_loss``, ...).
        final_metrics: the same at the last epoch run.
        verdict, reason, suggestion: the diagnosis.
        best_epoch, epochs_run, n_params, wall_time: training facts.
        fail_reason: why a failed trial failed (``interrupted`` for Ctrl-C).
        prune_reason: why a pruned trial was pruned.
        config_error: set when the trial failed on a configuration error (the run stops).
        cv_folds: cross-validated trials (``--cv K``): each fold's honest figures, verdict and chosen epoch;
            ``metrics`` are then the means over folds and ``best_epoch`` the mean chosen epoch.
        cv_spread: cross-validated trials: the standard deviation of each of ``metrics`` over the folds.
        programs_compiled: programs the backend traced or compiled for the trial, every fold and execution
            included (:mod:`tuner.training._programs`); programs_cached: JAX programs read from its persistent
            cache instead.
    """

    resolved_params: dict[str, Any] | None = None
    device: str | None = None
    worker_pid: int | None = None
    mlflow_run_id: str | None = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    final_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    verdict: str | None = None
    reason: str | None = None
    suggestion: str | None = None
    best_epoch: int | None = None
    epochs_run: int | None = None
    n_params: int | None = None
    wall_time: float | None = None
    fail_reason: str | None = None
    prune_reason: str | None = None
    config_error: bool = False
    cv_folds: list[dict[str, Any]] | None = None
    cv_spread: dict[str, float] | None = None
    programs_compiled: int | None = None
    programs_cached: int | None = None

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> TrialRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in attrs.items() if k in names and v is not None}
        return cls(**values)

    # -- writers (each a ``trial.set_user_attr`` per field, as Optuna stores them) -----------------
    @staticmethod
    def write(trial: Any, **fields: Any) -> None:
        """Store the given fields on a running ``optuna.Trial`` (unknown names are refused)."""
        names = {f.name for f in dataclasses.fields(TrialRecord)}
        for key, value in fields.items():
            if key not in names:
                raise KeyError(f"TrialRecord has no field {key!r}")
            trial.set_user_attr(key, value)

    @classmethod
    def from_result(cls, result: Any) -> TrialRecord:
        """The record of a finished training run (a :class:`~tuner.training.TrainResult`)."""
        return cls(
            metrics=dict(result.metrics),
            final_metrics=dict(result.final_metrics),
            verdict=result.diagnosis.verdict,
            reason=result.diagnosis.reason,
            suggestion=result.diagnosis.suggestion,
            best_epoch=result.best_epoch,
            epochs_run=result.epochs_run,
            n_params=result.n_params,
            wall_time=round(result.wall_time, 3),
            cv_folds=getattr(result, "folds", None),
            cv_spread=getattr(result, "spread", None),
        )

    def write_result(self, trial: Any, *, metric: str) -> None:
        """Store this record of a finished training run (:meth:`from_result`) on a running trial; ``metric`` is
        the task's headline metric, whose gap stands at the top level beside ``gap_loss``."""
        TrialRecord.write(
            trial,
            **{k: getattr(self, k) for k in _RESULT_FIELDS if getattr(self, k) is not None or not k.startswith("cv_")},
        )
        # the gaps stand at the top level too: Optuna's dashboard and trials_dataframe show them as columns
        trial.set_user_attr("gap_loss", self.metrics.get("gap_loss"))
        trial.set_user_attr(f"gap_{metric}", self.metrics.get(f"gap_{metric}"))

    # -- what a trial's tracking run ends with (written by the objective, and by ``sync`` from the storage) --
    def tracking_metrics(self) -> dict[str, float]:
        """``best_*`` (the chosen epoch), ``final_*`` (the last epoch run), ``best_epoch``, ``n_params``, ``wall_time``;
        cross-validated, also ``cv_std_*`` (the spread over folds) and ``fold_<i>_*`` (fold ``i``'s figures)."""
        out = {f"best_{k}": v for k, v in self.metrics.items() if isinstance(v, (int, float))}
        out.update({f"cv_std_{k}": v for k, v in (self.cv_spread or {}).items() if isinstance(v, (int, float))})
        for i, fold in enumerate(self.cv_folds or (), start=1):
            out.update(
                {f"fold_{i}_{k}": v for k, v in fold.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            )
        out.update({f"final_{k}": v for k, v in self.final_metrics.items() if isinstance(v, (int, float))})
        out.update(
            {
                k: v
                for k, v in (
                    ("best_epoch", self.best_epoch),
                    ("n_params", self.n_params),
                    ("wall_time", self.wall_time),
                    ("programs_compiled", self.programs_compiled),
                    ("programs_cached", self.programs_cached),
                )
                if v is not None
            }
        )
        return out

    def tracking_tags(self, reason: str | None = None) -> dict[str, str]:
        """The diagnosis (``verdict``, ``verdict_reason``, ``suggestion``) and ``fail_reason`` (``reason``, else
        the stored fail or prune reason)."""
        tags = {
            "verdict": self.verdict,
            "verdict_reason": self.reason,
            "suggestion": self.suggestion,
            "fail_reason": reason or self.fail_reason or self.prune_reason,
            "fold_verdicts": ",".join(str(f.get("verdict")) for f in self.cv_folds) if self.cv_folds else None,
        }
        return {k: v for k, v in tags.items() if v is not None}


_UNCLOSED = "unclosed_study_run:"  # + the MLflow run id of a study run to close: its status

_RESULT_FIELDS = (
    "metrics",
    "final_metrics",
    "verdict",
    "reason",
    "suggestion",
    "best_epoch",
    "epochs_run",
    "n_params",
    "wall_time",
    "cv_folds",
    "cv_spread",
)


def read_trial(trial: Any) -> TrialRecord:
    """The record of a trial (an ``optuna.trial.FrozenTrial`` or a running ``optuna.Trial``)."""
    return TrialRecord.from_attrs(trial.user_attrs)


@dataclasses.dataclass
class Recipe:
    """What a study was made from, stored on it (under ``tuner``): enough for a worker to rebuild it, and for
    ``report``, ``ui``, ``sync``, ``explain`` and ``refine`` to find its space and its MLflow store.

    Attributes:
        space: the search space's ``parameters``; None for a study not made by ``tuner study``.
        model_space: the user's model's ``model_parameters``, if any.
        space_name: the space's name.
        dataset: the dataset's name.
        dataset_spec: the dataset and its options as given (a name or a file), which workers load; None for
            data in memory.
        objective: the objective metrics, in order.
        n_trials: the study's total of finished trials.
        settings: the :class:`~tuner.study.StudySettings` fields a worker needs (sampler, seed, tracking URI, ...).
        extra: keys written by another version of tuner, kept as they are.
    """

    space: dict[str, Any] | None = None
    model_space: dict[str, Any] | None = None
    space_name: str = "space"
    dataset: str | None = None
    dataset_spec: dict[str, Any] | None = None
    objective: list[str] = dataclasses.field(default_factory=list)
    n_trials: int | None = None
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def tracking_uri(self) -> str | None:
        """The MLflow store the study recorded (``none`` when it ran with tracking off)."""
        return self.settings.get("tracking_uri")

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Recipe:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in attrs.items() if k in names and v is not None}
        return cls(**values, extra={k: v for k, v in attrs.items() if k not in names})

    def to_attrs(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **out}


class StudyRecord:
    """What tuner stores on an Optuna study: its recipe, the best model, the test score and the selection.

    Args:
        study: the ``optuna.Study``.
    """

    def __init__(self, study: Any) -> None:
        self.study = study

    def _get(self, key: str, default: Any = None) -> Any:
        value = self.study.user_attrs.get(key)
        return default if value is None else value

    # the recipe: everything a worker needs to rebuild the study (space, dataset, settings, n_trials)
    @property
    def has_recipe(self) -> bool:
        return bool(self._get("tuner"))

    @property
    def recipe(self) -> Recipe:
        return Recipe.from_attrs(self._get("tuner", {}))

    @recipe.setter
    def recipe(self, value: Recipe) -> None:
        self.study.set_user_attr("tuner", value.to_attrs())

    @property
    def objective(self) -> list[str]:
        return list(self.recipe.objective or ["objective"])

    @property
    def dataset_description(self) -> dict[str, Any]:
        return dict(self._get("dataset_description", {}))

    @dataset_description.setter
    def dataset_description(self, value: Mapping[str, Any]) -> None:
        self.study.set_user_attr("dataset_description", dict(value))

    @property
    def mlflow_experiment_id(self) -> str | None:
        return self._get("mlflow_experiment_id")

    @mlflow_experiment_id.setter
    def mlflow_experiment_id(self, value: str) -> None:
        self.study.set_user_attr("mlflow_experiment_id", value)

    @property
    def best_model_uri(self) -> str | None:
        return self._get("best_model_uri")

    @property
    def best_model_trial(self) -> int | None:
        return self._get("best_model_trial")

    @property
    def best_exported_model_uri(self) -> str | None:
        """The logged best model that takes raw rows (the registered and served one)."""
        return self._get("best_exported_model_uri")

    def set_best_model(self, trial: int, uri: str, *, exported_uri: str | None = None) -> None:
        """``uri``: the bare Keras model (the key studies have always had); ``exported_uri``: raw rows in."""
        self.study.set_user_attr("best_model_uri", uri)
        self.study.set_user_attr("best_model_trial", trial)
        if exported_uri is not None:
            self.study.set_user_attr("best_exported_model_uri", exported_uri)

    @property
    def best_model_dir(self) -> str | None:
        """The folder the exported best model was saved to (with tracking on or off)."""
        return self._get("best_model_dir")

    def set_best_model_dir(self, trial: int, folder: str) -> None:
        self.study.set_user_attr("best_model_dir", folder)
        self.study.set_user_attr("best_model_trial", trial)

    @property
    def unclosed_study_runs(self) -> dict[str, str]:
        """Study runs that their process ended while tracking was away: ``{run_id: status}`` (``tuner sync``
        closes them in MLflow)."""
        return {k[len(_UNCLOSED) :]: v for k, v in self.study.user_attrs.items() if k.startswith(_UNCLOSED)}

    def add_unclosed_study_run(self, run_id: str, status: str) -> None:
        self.study.set_user_attr(f"{_UNCLOSED}{run_id}", status)  # one key per run: processes never overwrite

    @property
    def best_test(self) -> dict[str, float] | None:
        return self._get("best_test")

    @property
    def best_test_trial(self) -> int | None:
        return self._get("best_test_trial")

    def set_best_test(self, trial: int, scores: Mapping[str, float]) -> None:
        self.study.set_user_attr("best_test", dict(scores))
        self.study.set_user_attr("best_test_trial", trial)

    @property
    def selection(self) -> dict[str, Any] | None:
        return self._get("selection")

    @property
    def selected_trial(self) -> int | None:
        return self._get("selected_trial")

    def set_selection(self, trial: int | None, selection: Mapping[str, Any] | None) -> None:
        self.study.set_user_attr("selected_trial", trial)
        self.study.set_user_attr("selection", None if selection is None else dict(selection))

    def set_trial_fail_reason(self, number: int, reason: str) -> None:
        self.study.set_user_attr(f"fail_reason.{number}", reason)

    def trial_fail_reasons(self) -> dict[int, str]:
        """Every reason written on the study for a trial (by number), read at once."""
        prefix = "fail_reason."
        return {
            int(key[len(prefix) :]): value
            for key, value in self.study.user_attrs.items()
            if key.startswith(prefix) and value is not None
        }

    # what `explain`, `--confirm` and `refine` found (tuner.report._explain, tuner.report._refine)
    def lessons(self) -> dict[str, dict[str, Any]]:
        """The stored lessons by kind (``ablation``, ``confirmation``, ``refinement``): only those that ran."""
        found = {kind: self.study.user_attrs.get(f"lesson.{kind}") for kind in LESSONS}
        return {kind: dict(value) for kind, value in found.items() if value}

    def set_lesson(self, kind: str, value: Mapping[str, Any]) -> None:
        if kind not in LESSONS:
            raise KeyError(f"`kind` must be one of {list(LESSONS)}, but got {kind=!r}.")
        self.study.set_user_attr(f"lesson.{kind}", dict(value))
