"""tuner.study: the study engine (a :class:`Study` facade over settings, storage, loop, objective, workers).

Importing this package stays light: Keras, TensorFlow, Optuna and MLflow are imported where they are used.
"""

from __future__ import annotations

from tuner.study._best import load_best_model, register_best_model
from tuner.study._budget import BudgetLock, budget_counts
from tuner.study._executor import Executor, InProcess, make_executor
from tuner.study._interrupts import interrupt, request_stop, stop_requested
from tuner.study._join import EarlyWorkers, WorkerJoin, read_join_file
from tuner.study._loop import rss_mb
from tuner.study._process import keep_process_changes, restoring_process_state
from tuner.study._ray import RayCluster, connect_ray
from tuner.study._record import INTERRUPTED, Recipe, StudyRecord, TrialRecord, read_trial
from tuner.study._resources import (
    LARGE_MODEL_MACS,
    auto_workers,
    estimate_macs,
    resolve_workers,
    share_this_process,
    visible_gpus,
    worker_env,
)
from tuner.study._results import StudyResults, TrialReport, load_study_results
from tuner.study._retrain import (
    BUILTIN_OFF,
    Variant,
    ablation_variants,
    declared_off,
    open_for_retraining,
    regularization_knobs,
    resolved_params,
    retrain,
    retrain_seeds,
    top_trials,
)
from tuner.study._settings import DEFAULT_N_TRIALS, PRUNERS, SAMPLERS, StudySettings, objective_direction
from tuner.study._study import Study, create_study, default_storage, run_study
from tuner.study._workers import EXIT_RECYCLE, ProcessPool, run_workers

__all__ = [
    "BUILTIN_OFF",
    "Variant",
    "ablation_variants",
    "declared_off",
    "open_for_retraining",
    "regularization_knobs",
    "resolved_params",
    "retrain",
    "retrain_seeds",
    "top_trials",
    "BudgetLock",
    "DEFAULT_N_TRIALS",
    "LARGE_MODEL_MACS",
    "auto_workers",
    "estimate_macs",
    "resolve_workers",
    "EXIT_RECYCLE",
    "EarlyWorkers",
    "Executor",
    "InProcess",
    "ProcessPool",
    "RayCluster",
    "WorkerJoin",
    "connect_ray",
    "make_executor",
    "INTERRUPTED",
    "PRUNERS",
    "Recipe",
    "SAMPLERS",
    "Study",
    "StudyRecord",
    "StudyResults",
    "StudySettings",
    "TrialRecord",
    "TrialReport",
    "budget_counts",
    "create_study",
    "default_storage",
    "load_best_model",
    "load_study_results",
    "objective_direction",
    "read_join_file",
    "read_trial",
    "interrupt",
    "keep_process_changes",
    "register_best_model",
    "restoring_process_state",
    "request_stop",
    "rss_mb",
    "run_study",
    "run_workers",
    "share_this_process",
    "stop_requested",
    "visible_gpus",
    "worker_env",
]
