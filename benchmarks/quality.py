"""Is a model tuned with tuner worth deploying? tuner's default study against tuned scikit-learn baselines.

For each dataset and seed, both sides see the same stratified split (``tuner.data.load_dataset(name,
seed=seed)``): scikit-learn's estimators learn from the training and validation rows together and tune
with their own cross-validation; tuner runs its default study (``tuner.Study(None, name)``: the space
that suits the data, 12 trials, cross-validation as its default says) and, for the selection gap, the
same study with cross-validation the other way round (``--cv 0`` where the default is on, ``--cv 3``
where it is off). Both are scored once on the same test split.

The budget is the wall time of tuner's default study on that split (its trials, the refit of the best
configuration when cross-validated, and the test evaluation): scikit-learn gets the same total, in equal
shares of what is left for each of its estimators in turn (SVC, logistic regression,
HistGradientBoostingClassifier, random forest; ridge and gradient boosting for regression), so time one
leaves unused goes to the next. In its share an estimator is tuned by ``HalvingRandomSearchCV`` (5-fold) with
8 candidates, then 16, 32, ..., each search in a child process that is stopped when the share is spent; the
last search that finished counts (an estimator whose first search did not finish has no score), and the
estimator with the best cross-validated score is the baseline. Selection gap: the best validation (or CV)
score minus the test score (for regression, test MAE minus validation MAE): how much the winner's
validation figure flattered it.

    python benchmarks/quality.py --quick           # digits, wine, breast_cancer, diabetes; seed 0
    python benchmarks/quality.py                   # + mnist1d; seeds 0, 1, 2
    python benchmarks/quality.py --datasets digits wine --seeds 0 1 --json out.json
    python benchmarks/quality.py --datasets digits wine --seeds 3 4 5 6 7 8 9 --no-baselines   # --cv's gap only

The machine's load average is printed before and after: on a shared machine the times (and so the
baseline's budget) stretch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (quiet TensorFlow, repository on sys.path)
import numpy as np
from _common import load1, machine, table

REGRESSION = {"diabetes"}


def _baselines(task: str, seed: int) -> dict[str, tuple[Any, dict[str, Any]]]:
    from scipy.stats import loguniform, randint, uniform
    from sklearn.ensemble import (GradientBoostingRegressor, HistGradientBoostingClassifier,
                                  RandomForestClassifier)
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if task == "regression":
        return {
            "ridge": (make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": loguniform(1e-3, 1e3)}),
            "gradient_boosting": (GradientBoostingRegressor(random_state=seed),
                                  {"learning_rate": loguniform(0.01, 0.3), "max_depth": randint(2, 6),
                                   "n_estimators": randint(50, 400), "subsample": uniform(0.5, 0.5)}),
        }
    return {
        "svc": (make_pipeline(StandardScaler(), SVC()), {"svc__C": loguniform(1e-2, 1e3),
                                                         "svc__gamma": loguniform(1e-4, 1e0)}),
        "logistic_regression": (make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                                {"logisticregression__C": loguniform(1e-3, 1e3)}),
        "hist_gradient_boosting": (HistGradientBoostingClassifier(random_state=seed),
                                   {"learning_rate": loguniform(0.01, 0.3), "max_leaf_nodes": randint(8, 64),
                                    "l2_regularization": loguniform(1e-4, 10.0)}),
        "random_forest": (RandomForestClassifier(random_state=seed),
                          {"n_estimators": randint(50, 300), "max_features": uniform(0.1, 0.8),
                           "min_samples_leaf": randint(1, 5)}),
    }


def _searches(conn: Any, estimator: Any, grid: dict[str, Any], n_candidates: int, cv: Any, scoring: str,
              seed: int, x: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> None:
    """In a child process: ``HalvingRandomSearchCV`` with ``n_candidates``, then twice as many, and so on, until
    the parent stops it; sends "ready" once scikit-learn is imported, then each finished search's CV score,
    parameters and test predictions."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV

    conn.send("ready")
    while True:
        search = HalvingRandomSearchCV(estimator, grid, n_candidates=n_candidates, cv=cv, scoring=scoring,
                                       random_state=seed, n_jobs=1, factor=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search.fit(x, y)
        conn.send({"score": float(search.best_score_), "params": {k: repr(v) for k, v in search.best_params_.items()},
                   "pred": search.best_estimator_.predict(x_test), "n_candidates": n_candidates})
        n_candidates *= 2


def _tune_within(share: float, args: tuple[Any, ...]) -> dict[str, Any] | None:
    """Let ``_searches`` run for ``share`` seconds from the moment its child is ready, then stop the child; the
    last search that finished, or None."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs TensorFlow's threads
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_searches, args=(send, *args), daemon=True)
    child.start()
    send.close()
    last = None
    try:
        if receive.poll(60) and receive.recv() == "ready":
            deadline = time.perf_counter() + share
            while (left := deadline - time.perf_counter()) > 0 and receive.poll(left):
                last = receive.recv()
    except EOFError:  # the child died
        pass
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
    return last  # type: ignore[no-any-return]


def sklearn_baseline(data: Any, budget: float, seed: int, first_candidates: int = 8) -> dict[str, Any]:
    """The best of the tuned estimators by cross-validated score, scored once on the test split.

    Each estimator's turn gets an equal share of what is left of ``budget`` (time one leaves unused goes to the
    ones after it). In its share a child process runs ``HalvingRandomSearchCV`` with ``first_candidates``
    candidates, then twice as many, and so on, and is stopped when the share is spent (counted from the moment
    the child has imported scikit-learn); the last search that finished counts, and an estimator whose first
    search did not finish has no score.
    """
    from sklearn.metrics import accuracy_score, mean_absolute_error
    from sklearn.model_selection import KFold, StratifiedKFold

    regression = data.task == "regression"
    x = np.concatenate([data.x_train, data.x_val]).reshape(len(data.x_train) + len(data.x_val), -1)
    y = np.concatenate([data.y_train, data.y_val])
    x_test = data.x_test.reshape(len(data.x_test), -1)
    cv = (KFold(5, shuffle=True, random_state=seed) if regression else
          StratifiedKFold(5, shuffle=True, random_state=seed))
    scoring = "neg_mean_absolute_error" if regression else "accuracy"
    estimators = _baselines(data.task, seed)
    start = time.perf_counter()
    found: dict[str, dict[str, Any]] = {}
    times, candidates = {}, {}
    for i, (name, (estimator, grid)) in enumerate(estimators.items()):
        began = time.perf_counter()
        share = (budget - (began - start)) / (len(estimators) - i)
        got = _tune_within(share, (estimator, grid, first_candidates, cv, scoring, seed, x, y, x_test))
        if got is not None:
            found[name] = got
        times[name] = round(time.perf_counter() - began, 1)
        candidates[name] = got["n_candidates"] if got else 0
    spent = time.perf_counter() - start
    if not found:
        return {"model": "none finished", "val": np.nan, "test": np.nan, "gap": np.nan, "time": spent,
                "budget": budget, "times": times, "candidates": candidates, "cv_scores": {}}
    name, best = max(found.items(), key=lambda item: item[1]["score"])
    if regression:
        test, val = float(mean_absolute_error(data.y_test, best["pred"])), -best["score"]
        gap = test - val
    else:
        test, val = float(accuracy_score(data.y_test, best["pred"])), best["score"]
        gap = val - test
    return {"model": name, "val": val, "test": test, "gap": gap, "time": spent, "budget": budget, "times": times,
            "candidates": candidates, "params": best["params"],
            "cv_scores": {n: f["score"] for n, f in found.items()}}


def tuner_study(name: str, seed: int, cv: int | None, folder: str, n_trials: int = 12) -> dict[str, Any]:
    """tuner's default study (no space given) on this split; ``cv`` None is the default."""
    import tuner

    start = time.perf_counter()
    study = tuner.Study(None, name, seed=seed, cv=cv, tracking_uri="none", log_best_model=False, n_trials=n_trials,
                        storage=f"sqlite:///{folder}/optuna-{name}-{seed}-{cv}.db",
                        dataset_options={"seed": seed})
    study.run()
    wall = time.perf_counter() - start
    best = study.best_trial()
    regression = study.dataset.task == "regression"
    metric = "mae" if regression else "accuracy"
    val, test = float(best.metrics[f"val_{metric}"]), float((study.best_test or {}).get(f"test_{metric}", np.nan))
    return {"model": study.space.name, "cv": study.settings.cv, "val": val, "test": test,
            "gap": (test - val) if regression else (val - test), "time": wall,
            "spread": (best.cv_spread or {}).get(f"val_{metric}")}


def _summary(values: list[float]) -> tuple[float, float]:
    return (statistics.mean(values), statistics.pstdev(values) if len(values) > 1 else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="digits, wine, breast_cancer, diabetes; seed 0")
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--no-other-cv", action="store_true", help="skip the study with cross-validation flipped")
    parser.add_argument("--no-baselines", action="store_true",
                        help="tuner's studies only (the selection gap with and without --cv over many seeds)")
    parser.add_argument("--n-trials", type=int, default=12, help="trials of each tuner study (default: 12, the CLI's)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    datasets = args.datasets or (["digits", "wine", "breast_cancer", "diabetes"] if args.quick else
                                 ["digits", "wine", "breast_cancer", "mnist1d", "diabetes"])
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    from tuner.data import load_dataset

    info = machine()
    print(f"machine: {info}", flush=True)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        for name in datasets:
            for seed in seeds:
                data = load_dataset(name, seed=seed)
                default = tuner_study(name, seed, None, folder, args.n_trials)
                runs.append({"dataset": name, "seed": seed, "who": f"tuner {default['model']} (cv {default['cv']})",
                             "side": "tuner default", **default})
                print(json.dumps(runs[-1]), flush=True)
                if not args.no_other_cv:
                    other = tuner_study(name, seed, 0 if default["cv"] else 3, folder, args.n_trials)
                    runs.append({"dataset": name, "seed": seed, "who": f"tuner {other['model']} (cv {other['cv']})",
                                 "side": "tuner other cv", **other})
                    print(json.dumps(runs[-1]), flush=True)
                if args.no_baselines:
                    continue
                base = sklearn_baseline(data, default["time"], seed)
                runs.append({"dataset": name, "seed": seed, "who": f"scikit-learn {base['model']}",
                             "side": "scikit-learn", **base})
                print(json.dumps(runs[-1]), flush=True)
    rows = []
    for name in datasets:
        for side in ("tuner default", "tuner other cv", "scikit-learn"):
            mine = [r for r in runs if r["dataset"] == name and r["side"] == side]
            if not mine:
                continue
            test, test_sd = _summary([r["test"] for r in mine])
            gap, gap_sd = _summary([r["gap"] for r in mine])
            rows.append({"dataset": name, "side": side, "who": ", ".join(sorted({r["who"] for r in mine})),
                         "metric": "test MAE" if name in REGRESSION else "test accuracy", "test": test,
                         "test_sd": test_sd, "gap": gap, "gap_sd": gap_sd, "seeds": len(mine),
                         "time": statistics.mean(r["time"] for r in mine)})
    print()
    table(rows, [("dataset", "dataset"), ("who", "who"), ("metric", "metric"), ("test", "test"), ("test_sd", "±"),
                 ("gap", "selection gap"), ("gap_sd", "±"), ("time", "time s"), ("seeds", "seeds")])
    print(f"\nload average: {info['load1_start']} at the start, {load1()} at the end (1 min)")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "runs": runs, "rows": rows,
                                               "load1_end": load1()}, indent=1))


if __name__ == "__main__":
    main()
