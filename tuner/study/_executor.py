"""The seam of where trials run: :class:`Executor`, and the one that runs them in this process.

An executor runs a study's trials until the study holds its ``n_trials`` finished trials, and tells
``on_trial`` as each one ends. Three implement it: :class:`InProcess` (this process, one trial at a time),
:class:`~tuner.study._workers.ProcessPool` (``--workers N`` worker processes on this machine) and
:class:`~tuner.study._ray.RayCluster` (``--ray``: trials as Ray actor calls, anywhere on a cluster). The
objective, the trial record and the tracker never know which one runs them. Another engine (Dask, a
Kubernetes Job) is one module with a class that has :meth:`Executor.run`, and one branch in
:func:`make_executor`; its library is imported inside that module's functions only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from tuner.study._types import RunningStudy

__all__ = ["Executor", "InProcess", "make_executor"]


@runtime_checkable
class Executor(Protocol):
    """Runs a study's trials: "run these trials, tell me when each ends"."""

    def run(self, study: RunningStudy, *, progress: bool, on_trial: Callable[[Any], None] | None) -> None:
        """Run trials until ``study`` holds its ``settings.n_trials`` finished trials (or its timeout passes);
        call ``on_trial`` with a :class:`~tuner.study.TrialReport` as each one ends.

        Raises:
            KeyboardInterrupt: after the running trials were stopped, recorded as ``interrupted`` and their
                tracking runs closed as KILLED.
            ConfigError: when a trial fails on its configuration.
        """


class InProcess:
    """This process, one trial at a time (:func:`tuner.study._loop.optimize`)."""

    def __init__(self, *, max_trials: int | None = None, max_rss_mb: float | None = None) -> None:
        self.max_trials = max_trials
        self.max_rss_mb = max_rss_mb

    def run(self, study: RunningStudy, *, progress: bool, on_trial: Callable[[Any], None] | None) -> None:
        from tuner.study._loop import optimize

        s = study.settings
        optimize(
            study,
            target=s.n_trials,
            timeout=s.timeout,
            progress=progress,
            on_trial=on_trial,
            max_trials=self.max_trials,
            max_rss_mb=self.max_rss_mb,
        )


def make_executor(
    *,
    workers: int = 1,
    ray: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    recycle_after: int | None = 50,
    max_rss_mb: float | None = None,
    verbosity: int = 0,
    early: Any = None,
) -> Executor:
    """The executor for the CLI's and the API's options: Ray when ``ray`` names a cluster (``"local"``
    starts one here), else the process pool with ``workers > 1``, else this process."""
    if ray is not None:
        from tuner.study._ray import RayCluster

        return RayCluster(ray, workers=workers, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    if workers > 1:
        from tuner.study._workers import ProcessPool

        return ProcessPool(
            workers, recycle_after=recycle_after, max_rss_mb=max_rss_mb, verbosity=verbosity, early=early
        )
    return InProcess(max_rss_mb=max_rss_mb)
