"""The optimize loop: one trial at a time under the budget lock, until the study holds its total, the
timeout passes, the process is due for recycling, or a stop is requested.

Optuna and tqdm are imported inside the functions, so that importing tuner stays light.
"""

from __future__ import annotations

import gc
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from tuner._backend import import_keras_for_api
from tuner._logging import get_logger, progress_bar
from tuner.errors import TrialFailed
from tuner.study._budget import BudgetLock, budget_counts
from tuner.study._interrupts import check_stop
from tuner.study._objective import Objective
from tuner.study._record import INTERRUPTED, read_trial
from tuner.study._results import TrialReport
from tuner.study._settings import completed_name, completed_storage
from tuner.study._storage import seed_next_trial
from tuner.study._types import RunningStudy

__all__ = ["optimize", "rss_mb"]

_logger = get_logger(__name__)


def rss_mb() -> float:
    """This process's resident memory in MiB (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
    return peak / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)


def optimize(
    study: RunningStudy,
    *,
    target: int,
    timeout: float | None,
    progress: bool,
    on_trial: Callable[[TrialReport], None] | None,
    max_trials: int | None,
    max_rss_mb: float | None,
) -> None:
    """Run trials of ``study`` (a :class:`~tuner.study.Study`) inside its tracking; sets ``study.stopped_for``.

    Raises:
        KeyboardInterrupt: after the running trial was failed as ``interrupted`` and tracking closed.
        ConfigError: when a trial fails on its configuration.
    """
    import optuna

    import_keras_for_api()  # TensorFlow's start-up lines stay out of a notebook (as in the CLI)
    # Optuna logs each failed trial with a traceback at WARNING; our own line names the reason.
    debug = get_logger("tuner").isEnabledFor(10)
    optuna.logging.set_verbosity(optuna.logging.WARNING if debug else optuna.logging.ERROR)
    s = study.settings
    study.record_target(target)
    study.stopped_for = None
    missing = target - study.n_finished()
    try:
        with study.tracking():
            # Move everything alive now (TensorFlow, Keras, the dataset) out of the garbage collector's view:
            # the collection after each trial then walks only that trial's objects (about 2 s -> 0.03 s per
            # trial on 2 cores; benchmarks/overhead.py). No collection first (it costs about 1 s): garbage
            # frozen with the rest is freed once the run unfreezes.
            gc.freeze()
            if missing <= 0:
                _logger.info(
                    "study %r already holds %d finished trials (asked for %d): nothing to run",
                    s.study_name,
                    study.n_finished(),
                    target,
                )
                return
            study.stopped_for = _trials(
                study,
                target=target,
                missing=missing,
                timeout=timeout,
                progress=progress,
                on_trial=on_trial,
                max_trials=max_trials,
                max_rss_mb=max_rss_mb,
            )
    finally:
        gc.unfreeze()  # last (closing the tracking clears the Keras session): later work collects this run's garbage


def _trials(
    study: RunningStudy,
    *,
    target: int,
    missing: int,
    timeout: float | None,
    progress: bool,
    on_trial: Callable[[TrialReport], None] | None,
    max_trials: int | None,
    max_rss_mb: float | None,
) -> str | None:
    """The loop itself; returns why it stopped early (``halted``, ``timeout``, ``recycle``) or None."""
    import optuna

    s = study.settings
    optuna_study = study.optuna_study
    lock = BudgetLock(completed_storage(s), completed_name(s))
    objective = Objective(study, on_start=lock.release)  # the trial exists: it holds its place in the budget
    deadline = None if timeout is None else time.monotonic() + timeout
    bar = None
    if progress:  # drawn in a terminal or a notebook only: a log file gets the trial lines alone
        bar = progress_bar(total=missing, desc=f"study {s.study_name}", unit="trial")

    def after_trial(st: Any, frozen: Any) -> None:
        if read_trial(frozen).fail_reason != INTERRUPTED and bar is not None:
            bar.update(1)
        if on_trial is not None:
            on_trial(TrialReport.from_frozen(frozen))
        check_stop()

    ran = 0
    try:
        while True:
            check_stop()
            if study.halted:
                return "halted"
            if deadline is not None and time.monotonic() >= deadline:
                return "timeout"
            if max_trials is not None and ran >= max_trials:
                return "recycle"
            if max_rss_mb is not None and ran and rss_mb() > max_rss_mb:
                return "recycle"
            with lock:
                if study.opened.heartbeat:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        optuna.storages.fail_stale_trials(optuna_study)
                counted, running = budget_counts(optuna_study)
                if counted >= target:
                    return None
                if counted + running < target:
                    if deadline is not None and time.monotonic() >= deadline:  # the lock may have taken a while
                        return "timeout"
                    left = None if deadline is None else max(1e-3, deadline - time.monotonic())
                    seed_next_trial(study.opened, s, study.space)  # its own stream: a resume never replays
                    optuna_study.optimize(
                        objective,
                        n_trials=1,
                        timeout=left,
                        callbacks=[after_trial],
                        catch=(TrialFailed,),
                        gc_after_trial=False,
                        show_progress_bar=False,
                    )
                    ran += 1
                    continue
            # the rest of the budget is held by running trials elsewhere: wait for them
            time.sleep(1.0)
    finally:
        lock.release()
        if bar is not None:
            bar.close()
