"""tuner.training."""

from __future__ import annotations

from tuner.training._train import train_model, evaluate_test, TrainResult, prepare_data, ModelBuilder
from tuner.training._gap import HonestGap, evaluate_split, primary_metric, metric_functions, HIGHER_IS_BETTER
from tuner.training._diagnosis import Diagnosis, DiagnosisRules, diagnose, baseline_score, VERDICTS

__all__ = ['Diagnosis', 'DiagnosisRules', 'HIGHER_IS_BETTER', 'HonestGap', 'ModelBuilder', 'TrainResult', 'VERDICTS', 'baseline_score', 'diagnose', 'evaluate_split', 'evaluate_test', 'metric_functions', 'prepare_data', 'primary_metric', 'train_model']
