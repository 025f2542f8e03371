"""What the parts of the study stage see of a study: :class:`RunningStudy`, the shape of
:class:`~tuner.study.Study` that the loop, the objective, the executors and the best model use.

A protocol, not the class, so that those modules do not import the facade that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # types only: nothing here is imported at run time
    from tuner.data import Dataset
    from tuner.space import SearchSpace
    from tuner.study._best import BestModel
    from tuner.study._results import TrialReport
    from tuner.study._settings import StudySettings
    from tuner.study._storage import OptunaStudy
    from tuner.tracking import Tracker

__all__ = ["RunningStudy"]


class RunningStudy(Protocol):
    """A study while its trials run (implemented by :class:`~tuner.study.Study`)."""

    settings: StudySettings
    space: SearchSpace
    dataset: Dataset
    dataset_spec: dict[str, Any] | None
    builder: Callable[..., Any] | None
    user_model: Any
    tracker: Tracker
    directions: list[str]
    halted: bool
    stopped_for: str | None
    best_test: dict[str, float] | None
    best_kept: BestModel

    @property
    def multi_objective(self) -> bool: ...

    @property
    def optuna_study(self) -> Any: ...

    @property
    def opened(self) -> OptunaStudy: ...

    @property
    def tracking_run_id(self) -> str | None: ...

    def n_finished(self) -> int: ...

    def record_target(self, n_trials: int) -> None: ...

    def tracking(self) -> AbstractContextManager[Tracker]: ...

    def run_here(
        self,
        *,
        n_trials: int | None = None,
        timeout: float | None = None,
        progress: bool = False,
        on_trial: Callable[[TrialReport], None] | None = None,
        max_trials: int | None = None,
        max_rss_mb: float | None = None,
    ) -> RunningStudy: ...

    def halt(self) -> None: ...

    def best_trial(self) -> Any: ...

    def trials(self) -> Sequence[Any]: ...
