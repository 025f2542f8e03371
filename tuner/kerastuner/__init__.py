"""tuner.kerastuner: a front door with KerasTuner's shape, so that a KerasTuner script changes one line.

``KerasTuner(build_model, objective=..., max_trials=..., directory=..., project_name=...)`` takes what
``keras_tuner.RandomSearch`` takes; ``search``, ``search_space_summary``, ``results_summary``,
``get_best_hyperparameters`` and ``get_best_models`` answer as KerasTuner's do. Underneath runs a tuner
:class:`~tuner.study.Study`. Like the CLI, this door sits on top: it imports the study stage, nothing imports it.
"""

from __future__ import annotations

from tuner.kerastuner._tuner import KerasTuner, objective_of

__all__ = ["KerasTuner", "objective_of"]
