"""tuner.study."""

from __future__ import annotations

from tuner.study._study import Study, StudySettings, TrialReport, create_study, run_study, SAMPLERS, PRUNERS, default_storage, objective_direction
from tuner.study._budget import BudgetLock, budget_counts
from tuner.study._workers import run_workers, worker_env, visible_gpus, share_this_process, EarlyWorkers, read_join_file, EXIT_RECYCLE
from tuner.study._results import StudyResults, TrialReport, load_study_results

__all__ = ['BudgetLock', 'EXIT_RECYCLE', 'EarlyWorkers', 'PRUNERS', 'SAMPLERS', 'Study', 'StudyResults', 'StudySettings', 'TrialReport', 'budget_counts', 'create_study', 'default_storage', 'load_study_results', 'objective_direction', 'read_join_file', 'run_study', 'run_workers', 'share_this_process', 'visible_gpus', 'worker_env']
