"""A CSV with a text column, a study, and the best model answering raw rows as MLflow serves them.

The best model carries its preprocessing (the one-hot encoding of the text column, the scaler fitted on
the training split), so it takes rows as they are in the file and answers in the file's own labels.

    python examples/csv_to_served_model.py
    # then, to serve it over HTTP (the same model, from MLflow's Model Registry):
    # MLFLOW_TRACKING_URI=sqlite:///mlruns/mlflow.db mlflow models serve -m models:/shapes-model@champion \
    #     --env-manager local -h 127.0.0.1 -p 5001
"""

from __future__ import annotations

import os

import mlflow
import numpy as np
import pandas as pd
from _smoke import size

import tuner

# one MLflow store for tuner and for MLflow's own calls below (tuner's default; `mlflow models serve` reads it too)
os.environ.setdefault("MLFLOW_TRACKING_URI", "sqlite:///mlruns/mlflow.db")

# a small table: two numeric columns, a text column, and a text label that depends on all three
rng = np.random.default_rng(0)
n = 600
frame = pd.DataFrame(
    {
        "size": rng.uniform(0, 1, n).round(3),
        "count": rng.integers(0, 10, n),
        "color": rng.choice(["red", "green", "blue"], n),
    }
)
score = frame["size"] * 2 + frame["count"] / 5 + frame["color"].map({"red": 1.0, "green": 0.0, "blue": -1.0})
frame["kind"] = pd.cut(score, [-np.inf, 1.0, 2.5, np.inf], labels=["low", "mid", "high"]).astype(str)
frame.to_csv("shapes.csv", index=False)

study = tuner.Study(
    "default",
    "shapes.csv",
    study_name="shapes",
    n_trials=size(8, 2),
    fixed={"epochs": size(20, 1)},
    dataset_options={"target": "kind", "categorical": "onehot"},
)
study.run()
version = tuner.register_best_model(study, "shapes-model")  # alias 'champion' points at this version
print(f"registered shapes-model version {version}")

new_rows = pd.DataFrame({"size": [0.3, 0.9], "count": [4, 9], "color": ["red", "blue"]})
model = study.best_model()  # the same model as tuner.load_best_model("shapes")
print(model.predict(new_rows))  # labels in the file's own values: 'low', 'mid', 'high'
print(model.predict_proba(new_rows).round(3))

# what `mlflow models serve` runs: the registered pyfunc model, given raw rows
served = mlflow.pyfunc.load_model("models:/shapes-model@champion")
print(served.predict(new_rows))
