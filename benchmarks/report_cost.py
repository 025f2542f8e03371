"""What one epoch's Optuna bookkeeping costs on the default SQLite storage (issue 8.1).

    python benchmarks/report_cost.py           # 5 repeats x 20 trials x 25 epochs: ~1 min
    python benchmarks/report_cost.py --quick   # 1 repeat x 5 trials x 25 epochs: ~10 s

Each trial of a real study (``tuner.study._storage.open_optuna_study``, median pruner as the engine configures it, 10
trials already complete so the pruner is past its start-up) reports one value per epoch, as the pruning
callback does. Compared, in milliseconds per epoch (median over repeats):

- ``report``: ``trial.report`` alone (one write);
- ``report+prune``: ``trial.report`` and ``trial.should_prune`` at every epoch (the engine before this
  change);
- ``engine``: ``trial.report`` every epoch and ``should_prune`` only from the pruner's first prunable epoch
  on (``n_warmup_steps``), as ``tuner.study._callbacks._PruningCallback`` now does;

each with SQLite's default rollback journal (``TUNER_SQLITE_WAL=0``) and in write-ahead-log mode (the
default now).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C


def measure(wal: bool, mode: str, trials: int, epochs: int) -> float:
    import optuna

    from tuner import SearchSpace
    from tuner.study import Study, StudySettings
    from tuner.study._storage import first_prunable_step

    os.environ["TUNER_SQLITE_WAL"] = "1" if wal else "0"
    space = SearchSpace.from_dict({"name": "b", "parameters": {"units": {"type": "int", "low": 4, "high": 64},
                                                                "epochs": epochs}})
    with tempfile.TemporaryDirectory() as tmp:
        study = Study(space, "iris", StudySettings(study_name="b", storage=f"sqlite:///{tmp}/optuna.db",
                                                   tracking_uri="none"))
        ost = study.optuna_study
        for i in range(10):  # past the pruner's start-up: should_prune does its full work
            t = ost.ask()
            for step in range(1, epochs + 1):
                t.report(1.0 - i / 100 - step / 1000, step)
            ost.tell(t, 1.0 - i / 100)
        first = first_prunable_step(study._opened)
        spent = 0.0
        for i in range(trials):
            t = ost.ask()
            start = time.perf_counter()
            for step in range(1, epochs + 1):
                t.report(0.5 + step / 1000, step)
                if mode == "report+prune" or (mode == "engine" and first is not None and step >= first):
                    t.should_prune()
            spent += time.perf_counter() - start
            ost.tell(t, 0.5)
        optuna.delete_study(study_name="b", storage=ost._storage)
    return 1000 * spent / (trials * epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.trials = 1, 5
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", message="Heartbeat of storage")  # ask/tell here, not optimize
    rows: list[dict[str, Any]] = []
    runs: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for wal in (False, True):
            for mode in ("report", "report+prune", "engine"):
                runs.setdefault(("WAL" if wal else "rollback journal", mode), []).append(
                    measure(wal, mode, args.trials, args.epochs))
    for (journal, mode), values in runs.items():
        rows.append({"journal": journal, "per_epoch": mode, "ms": C.median(values)})
    base = next(r["ms"] for r in rows if r["journal"] == "rollback journal" and r["per_epoch"] == "report+prune")
    for r in rows:
        r["vs_before"] = r["ms"] / base
    print(f"cpus={C.machine()['cpus']} commit={C.commit()} epochs={args.epochs} trials={args.trials} "
          f"repeats={args.repeats} load1={C.load1()} (medians; 'before' = rollback journal, report+prune)")
    C.table(rows, [("journal", "SQLite journal"), ("per_epoch", "per epoch"), ("ms", "ms/epoch"),
                   ("vs_before", "x before")])
    if args.json:
        args.json.write_text(json.dumps({"machine": C.machine(), "rows": rows}, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
