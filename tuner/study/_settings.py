"""How a study runs (:class:`StudySettings`), and the checks that its inputs fit before any trial runs."""

from __future__ import annotations

import dataclasses
from typing import Any

from tuner._backend import BACKENDS, choose_backend
from tuner._logging import get_logger
from tuner.errors import ConfigError, Problem
from tuner.metrics import direction, headline_metric

__all__ = [
    "StudySettings",
    "SAMPLERS",
    "PRUNERS",
    "DEFAULT_N_TRIALS",
    "objective_direction",
    "check_inputs",
    "completed_name",
    "completed_storage",
]

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc", "grid", "nsga2")
PRUNERS = ("median", "hyperband", "successive_halving", "percentile", "none")
DEFAULT_N_TRIALS = 12

objective_direction = direction  # the public name the study API has always had
_logger = get_logger(__name__)


@dataclasses.dataclass
class StudySettings:
    """How a study runs. The CLI and the Python API share these defaults.

    Args:
        study_name: the Optuna study (and MLflow experiment) name. Defaults to ``<space>-<dataset>``.
        n_trials: the total number of finished trials wanted in the study; a resumed study runs only
            what is missing. Defaults to `12`.
        timeout: stop starting trials after this many seconds. Defaults to `None`.
        sampler: one of ``tpe``, ``random``, ``cmaes``, ``gp``, ``qmc``, ``grid``, ``nsga2``. Defaults to `"tpe"`.
        pruner: one of ``median``, ``hyperband``, ``successive_halving``, ``percentile``, ``none``.
            Defaults to `"median"`.
        objective: validation metrics to optimize (``val_accuracy``, ``val_loss``, ``gap_loss``, ...);
            two or more make a multi-objective study. Defaults to ``val_accuracy`` for classification
            and ``val_loss`` for regression. A model compiled by the user adds its own metrics
            (``val_auc`` ...).
        directions: ``maximize`` or ``minimize``, one per objective (as a ``keras_tuner.Objective`` gives
            them). Defaults to each metric's own direction (:func:`tuner.metrics.direction`).
        storage: any Optuna storage URL. Defaults to ``sqlite:///mlruns/optuna.db``.
        tracking_uri: any MLflow tracking URI; ``None`` uses ``MLFLOW_TRACKING_URI`` or
            ``sqlite:///mlruns/mlflow.db``. ``"none"`` turns tracking off.
        seed: seeds each trial's training (``seed + trial number``) and the sampler that proposes it (from the seed and
            the trial's place in the study, so a resumed study never replays its proposals). Defaults to `0`.
        gap_subset: rows of the training split evaluated for the honest gap. Defaults to `10_000`.
        log_best_model: log the best model to MLflow at the end. Defaults to `True`.
        pruner_startup_trials: trials completed before the median/percentile pruner may prune.
            Defaults to `5`.
        heartbeat_interval: seconds between a running trial's heartbeats (RDB storages). Defaults to `10`.
        grace_period: seconds without a heartbeat after which a trial's worker counts as dead: the trial
            is failed and retried once with the same parameters. Defaults to `30`.
        parent_run_id: record trials under this tracking (MLflow) parent run, which another process
            started and closes, instead of starting one (used by worker processes). Defaults to `None`.
        model: the reference (``models.py:build``, ``package.module:MyHyperModel``) of the user's model,
            which worker processes import; set by :class:`~tuner.study.Study`. Defaults to `None`.
        executions_per_trial: models trained per trial, each with its own seed; the trial's figures are
            their average (KerasTuner's ``executions_per_trial``). Defaults to `1`.
        max_retries_per_trial: times a trial whose training raised an error (not a diverging loss, not a
            configuration error) is trained again before it fails. Defaults to `0`.
        cv: score each trial over this many stratified folds of the training and validation rows (the mean,
            with each fold's figures on the trial), and refit the best configuration on all of them before the
            test split; ``0`` turns it off; ``None`` (auto) uses 5 folds below 1,000 such rows, else 0. Defaults
            to `None`.
        image_shape: ``(H, W, C)`` (or ``"H,W,C"``) of flat rows that are images (a CSV or ``.npz`` of pixels): the
            image view, and so ``family: cnn`` and the default space, reshape them. Defaults to `None`.
        backend: the Keras backend, ``auto``, ``tensorflow``, ``jax`` or ``torch``, set for this process and
            its workers before Keras is imported; ``auto`` is ``KERAS_BACKEND`` when set, else TensorFlow.
            The study records the one that ran. Defaults to `"auto"`.
    """

    study_name: str | None = None
    n_trials: int = DEFAULT_N_TRIALS
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    objective: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    storage: str | None = None
    tracking_uri: str | None = None
    seed: int = 0
    gap_subset: int | None = 10_000
    log_best_model: bool = True
    pruner_startup_trials: int = 5
    heartbeat_interval: int = 10
    grace_period: int = 30
    parent_run_id: str | None = None
    model: str | None = None
    backend: str = "auto"
    executions_per_trial: int = 1
    max_retries_per_trial: int = 0
    cv: int | None = None
    image_shape: Any = None

    def check_options(self) -> None:
        """Check what needs neither the data nor Keras (backend, sampler, pruner, counts, timeout, folds), so that a
        command line refuses them before Keras, workers or storages start.

        Raises:
            ConfigError: naming every such setting that breaks a rule.
        """
        problems = self._option_problems()
        if problems:
            raise ConfigError(problems)

    def _option_problems(self) -> list[Problem]:
        problems = []
        if self.backend not in BACKENDS:
            problems.append(Problem("--backend", "backend", f"must be one of {list(BACKENDS)}", value=self.backend))
        if self.sampler not in SAMPLERS:
            problems.append(Problem("--sampler", "sampler", f"must be one of {list(SAMPLERS)}", value=self.sampler))
        if self.pruner not in PRUNERS:
            problems.append(Problem("--pruner", "pruner", f"must be one of {list(PRUNERS)}", value=self.pruner))
        if not isinstance(self.n_trials, int) or self.n_trials < 1:
            problems.append(Problem("--n-trials", "n_trials", "must be a positive integer", value=self.n_trials))
        for field, low in (("executions_per_trial", 1), ("max_retries_per_trial", 0)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                problems.append(Problem(field, field, f"must be an integer >= {low}", value=value))
        if self.timeout is not None and not self.timeout > 0:
            problems.append(Problem("--timeout", "timeout", "must be a positive number of seconds", value=self.timeout))
        if self.cv is not None and (
            isinstance(self.cv, bool) or not isinstance(self.cv, int) or self.cv < 0 or self.cv == 1
        ):
            problems.append(Problem("--cv", "cv", "must be 0 (off) or a number of folds >= 2", value=self.cv))
        return problems

    def validate(self, task: str, metrics: tuple[str, ...] = ()) -> None:
        problems = self._option_problems()
        metric = headline_metric(task)
        allowed = {f"{p}_{m}" for p in ("val", "gap", "train") for m in ("loss", metric, *metrics)}
        if task == "regression":
            allowed |= {"val_rmse", "gap_rmse", "train_rmse"}
        for obj in self.objective:
            if obj not in allowed:
                problems.append(
                    Problem(
                        "--objective", "objective", f"must be one of {sorted(allowed)} for a {task} task", value=obj
                    )
                )
        if self.directions and (
            len(self.directions) != len(self.objective) or not set(self.directions) <= {"maximize", "minimize"}
        ):
            problems.append(
                Problem(
                    "--objective",
                    "directions",
                    "must be 'maximize' or 'minimize', one per objective",
                    value=list(self.directions),
                )
            )
        if len(self.objective) != len(set(self.objective)):
            problems.append(Problem("--objective", "objective", "must not repeat a metric", value=list(self.objective)))
        if problems:
            raise ConfigError(problems)

    def complete(self, task: str, default_name: str, default_storage: str, metrics: tuple[str, ...] = ()) -> None:
        """Fill in what depends on the data (objective, study name, storage) and validate.

        ``metrics`` are the names a model compiled by the user logs besides tuner's (an objective may name them).

        Raises:
            ConfigError: naming every setting that breaks a rule.
        """
        given: object = self.objective  # the Python API's keyword overrides are untyped: "val_loss,gap_loss" too
        if isinstance(given, str):
            self.objective = tuple(x.strip() for x in given.split(",") if x.strip())
        if not self.objective:
            self.objective = ("val_loss",) if task == "regression" else ("val_accuracy",)
        self.validate(task, metrics)
        self.directions = tuple(self.directions)
        if len(self.objective) > 1 and self.pruner != "none":  # the settings say what runs (the CLI's header too)
            _logger.warning(
                "pruning is disabled: Optuna cannot prune multi-objective studies (%s)", ",".join(self.objective)
            )
            self.pruner = "none"
        try:
            self.backend = choose_backend(self.backend)  # ConfigError: a backend not installed, or not the one running
        except ValueError as err:
            raise ConfigError([Problem("--backend", "backend", str(err), value=self.backend)]) from None
        if self.study_name is None:
            self.study_name = default_name
        if self.storage is None:
            self.storage = default_storage


def completed_name(settings: StudySettings) -> str:
    """``settings.study_name``, which :meth:`StudySettings.complete` fills in before a study opens.

    Raises:
        RuntimeError: for settings that were never completed (a bug in the caller, not in the user's input).
    """
    if settings.study_name is None:
        raise RuntimeError("StudySettings.study_name is unset: StudySettings.complete() fills it in first")
    return settings.study_name


def completed_storage(settings: StudySettings) -> str:
    """``settings.storage``, which :meth:`StudySettings.complete` fills in before a study opens.

    Raises:
        RuntimeError: for settings that were never completed (a bug in the caller, not in the user's input).
    """
    if settings.storage is None:
        raise RuntimeError("StudySettings.storage is unset: StudySettings.complete() fills it in first")
    return settings.storage


def possible_values(space: Any, name: str) -> list[Any]:
    """Every value the space can give knob ``name`` (its default when the space leaves it out)."""
    from tuner.space import KNOBS

    p = space.params.get(name)
    if p is None:
        return [KNOBS[name].default]
    return p.possible_values() or [KNOBS[name].default]


def _value_on(space: Any, name: str, chosen: dict[str, Any]) -> Any:
    """A value of knob ``name`` that turns it on (not 0 nor ``none``) and that the space can give while the knobs
    in ``chosen`` hold their values; None when it is always off there."""
    p = space.params.get(name)
    if p is None or any(key in chosen and chosen[key] not in allowed for key, allowed in (p.condition or {}).items()):
        return None
    if p.type in ("int", "float"):
        return p.high if p.high is not None and p.high > 0 else None
    return next((v for v in p.possible_values() or [] if v not in (0, 0.0, "none", None)), None)


def check_inputs(space: Any, dataset: Any, settings: StudySettings) -> None:
    """Every loss, output activation, family, view and augmentation the space can pick must fit the data
    (and a grid sampler needs a listable space), before any trial runs, so that nothing is written.

    Raises:
        ConfigError: for the first combination that does not fit.
    """
    from tuner.model import (
        IMAGE_AUGMENTATIONS,
        SEQUENCE_AUGMENTATIONS,
        as_view,
        check_model_fit,
        check_task_fit,
        resolve_view,
    )

    for loss in possible_values(space, "loss"):
        for act in possible_values(space, "output_activation"):
            check_task_fit({"loss": loss, "output_activation": act}, dataset.task, source=space.source)
    for family in possible_values(space, "family"):
        for view in possible_values(space, "view"):
            resolved = resolve_view(dataset, view, family)
            shape = dataset.input_shape if resolved is None else as_view(dataset, resolved).input_shape
            chosen = {"family": family, "view": view}
            on = {name: _value_on(space, name, chosen) for name in (*IMAGE_AUGMENTATIONS, *SEQUENCE_AUGMENTATIONS)}
            check_model_fit({**chosen, **{k: v for k, v in on.items() if v is not None}}, shape, source=space.source)
    if settings.sampler == "grid":
        space.grid()
    if settings.cv:
        from tuner.training import check_folds

        check_folds(dataset, settings.cv)
