"""Every private name tuner still borrows from a dependency, listed once: this test fails when one disappears.

tuner uses public APIs where they exist. Where none does, the name is borrowed, guarded so that a user's
study still runs without it (a speed-up lost, a retry skipped), and listed here so that an upgrade that
removes it fails CI instead of passing silently. pyproject.toml puts a ceiling on the major versions.
"""

from __future__ import annotations

import importlib

import pytest

BORROWED = [
    # (module, attribute path, what tuner uses it for, where)
    ("keras", "Model._symbolic_build",
     "optimizer and metric variables built before fit (a TensorFlow retrace saved)", "tuner/training/_train.py"),
    *[("optuna.storages", f"RDBStorage.{name}", "retried across a database restart", "tuner/study/_retry.py")
      for name in ("_get_stale_trial_ids", "_create_new_trial", "_get_best_trial_id", "_get_trials",
                   "_set_trial_param")],
    ("ray._private.ray_constants", "ENABLE_RAY_CLUSTER",
     "a local Ray instance listens on 127.0.0.1 only", "tuner/study/_ray.py"),
    ("numpy._core.multiarray", "_reconstruct", "allowed in a CIFAR pickle (Keras's cache)", "tuner/data/_keras_cache.py"),
    ("tensorflow.python.pywrap_tfe", "TFE_ContextClearCaches",
     "kept between trials of a shared model (its instantiated steps stay)", "tuner/training/_reuse.py"),
]


@pytest.mark.parametrize(("module", "path", "use", "where"), BORROWED, ids=[f"{m}.{p}" for m, p, _, _ in BORROWED])
def test_each_borrowed_private_name_still_exists(module: str, path: str, use: str, where: str) -> None:
    obj = importlib.import_module(module)
    for part in path.split("."):
        assert hasattr(obj, part), f"{module}.{path} is gone: {where} loses what it borrowed it for ({use})"
        obj = getattr(obj, part)


def test_every_private_storage_method_that_tuner_retries_is_listed() -> None:
    """The retried private names come from tuner/study/_retry.py's own list: a new one is listed here too."""
    from tuner.study._retry import _RETRIED

    listed = {p.split(".", 1)[1] for m, p, _, _ in BORROWED if p.startswith("RDBStorage.")}
    assert {name for name in _RETRIED if name.startswith("_")} == listed


def test_a_trial_still_carries_its_storage_id() -> None:
    """``--ray`` hands a runner the id of the trial the driver asked for (``optuna.Trial._trial_id``, an
    attribute of each trial, which a look at the class cannot see): tuner/study/_ray.py."""
    import optuna

    trial = optuna.create_study().ask()
    assert isinstance(getattr(trial, "_trial_id", None), int), "optuna.Trial._trial_id is gone: --ray loses its trials"

