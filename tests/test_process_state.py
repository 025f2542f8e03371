"""The Python API leaves the process as it found it: environment, log levels, SIGINT handler."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import logging, os, signal, sys
    os.environ.pop("KERAS_BACKEND", None)
    # what the libraries set on their own import (TensorFlow's TF2_BEHAVIOR, Optuna's logger level) is theirs
    import keras, optuna, tuner
    logging.getLogger("alembic")  # a logger the user's program knows (a notebook that ran SQLAlchemy's tools)

    def snapshot():
        loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                          if isinstance(v, logging.Logger))]
        return dict(os.environ), {l.name: l.level for l in loggers}, signal.getsignal(signal.SIGINT)

    env, levels, handler = snapshot()
    space = {"parameters": {"n_layers": 1, "units": 8, "epochs": 1, "batch_size": 64}}
    study = tuner.run_study(tuner.SearchSpace.from_dict(space), "iris", n_trials=2, study_name="leaks",
                            storage=f"sqlite:///{sys.argv[1]}/optuna.db", tracking_uri=f"sqlite:///{sys.argv[1]}/mlflow.db")
    assert len(study.trials()) == 2 and "keras" in sys.modules
    tuner.load_study_results("leaks", storage=f"sqlite:///{sys.argv[1]}/optuna.db")
    # a study's Optuna study opened on its own, before any run (Optuna's RDB storage sets alembic's level)
    opened = tuner.Study(tuner.SearchSpace.from_dict(space), "iris", study_name="opened",
                         storage=f"sqlite:///{sys.argv[1]}/other.db", tracking_uri="none")
    assert opened.optuna_study.study_name == "opened"
    env_after, levels_after, handler_after = snapshot()
    changed = {k: (env.get(k), env_after.get(k)) for k in set(env) | set(env_after) if env.get(k) != env_after.get(k)}
    print("environment:", changed)
    print("levels:", {n: (l, levels_after[n]) for n, l in levels.items() if levels_after[n] != l})
    print("handler:", handler_after is handler)
''')


@pytest.mark.slow
def test_run_study_leaves_environment_log_levels_and_sigint_handler_as_it_found_them(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-3:] == ["environment: {}", "levels: {}", "handler: True"], proc.stdout
