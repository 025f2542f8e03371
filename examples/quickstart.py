"""Quick start in Python: a study of the default space on digits, its winner, its gap and its trials.

python examples/quickstart.py
"""

from __future__ import annotations

from _smoke import size

import tuner

study = tuner.run_study("default", "digits", n_trials=size(12, 2), fixed={"epochs": size(20, 1)})

best = study.best_trial()
print(f"best trial {best.number}: {best.params}")
print(f"honest gap {best.metrics['gap_accuracy']:.4f}, verdict {best.verdict}: {best.reason}")
print(f"held-out test split, scored once: {study.best_test}")

table = study.trials_dataframe()  # one row per trial: parameters, honest metrics, gap, verdict
print(table.filter(regex="^(number|state|verdict|val_accuracy|gap_accuracy)$").to_string(index=False))
