"""Storage calls that ride out a database server's restart.

A PostgreSQL (or MySQL) server restarted during a study drops every open connection and refuses new ones
for a few seconds. Each storage call that fails on a lost or refused connection is tried again, with
backoff, for up to :data:`RETRY_SECONDS` (one warning line per outage); any other error, or an outage that
lasts longer, is raised as before. SQLAlchemy's ``pool_pre_ping`` then replaces the dead pooled connections.

This module imports Optuna at its top: import it inside functions (``python -m tuner --help`` stays light).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import optuna

from tuner._logging import get_logger
from tuner._store import connection_lost, mask_secrets

__all__ = ["RETRY_SECONDS", "retry_transient", "RetryingRDBStorage"]

_logger = get_logger(__name__)
RETRY_SECONDS = 60.0
_T = TypeVar("_T")
_last_warning = [-1e9]  # monotonic time of this process's last "connection lost" warning


def retry_transient(
    call: Callable[[], _T],
    *,
    what: str = "storage",
    seconds: float | None = None,
    on_retry: Callable[[], None] | None = None,
) -> _T:
    """``call()``, tried again while it fails on a lost or refused database connection.

    Args:
        call: the storage call.
        what: names the call in the warning line.
        seconds: how long to keep trying (default :data:`RETRY_SECONDS`).
        on_retry: called before each new try (e.g. to drop a dead connection).

    Raises:
        Whatever ``call`` raises that is not a lost connection, or the last error once ``seconds`` passed.
    """
    limit = RETRY_SECONDS if seconds is None else seconds
    deadline, delay = None, 0.25
    while True:
        try:
            return call()
        except Exception as err:
            if not connection_lost(err):
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + limit
                if now - _last_warning[0] > limit:
                    _last_warning[0] = now
                    _logger.warning(
                        "%s: the database connection was lost (%s); retrying for up to %.0f s",
                        what,
                        _root_cause(err),
                        limit,
                    )
            if now >= deadline:
                raise
            time.sleep(min(delay, deadline - now))
            delay = min(2 * delay, 5.0)
            if on_retry is not None:
                on_retry()


def _root_cause(err: BaseException) -> str:
    """The driver's own words (Optuna and SQLAlchemy wrap them), first line, password masked."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = str(err).strip()
    return mask_secrets(text.splitlines()[0][:160] if text else type(err).__name__)


def _retrying(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        failed: list[bool] = []

        def once() -> Any:
            try:
                return method(self, *args, **kwargs)
            except optuna.exceptions.UpdateFinishedTrialError:
                if name == "set_trial_state_values" and failed:
                    return True  # the try that lost its connection had committed: the trial is finished
                raise
            except Exception:
                failed.append(True)
                raise

        return retry_transient(once, what=f"storage call {name}")

    return call


# every call that talks to the database (the rest only read settings)
_RETRIED = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial",
    "get_all_trials",
    "get_n_trials",
    "get_best_trial",
    "get_trial_params",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "record_heartbeat",
    "_get_stale_trial_ids",
    # what Optuna's _CachedStorage calls in front of it
    "_create_new_trial",
    "_get_best_trial_id",
    "_get_trials",
    "_set_trial_param",
)


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's ``RDBStorage`` whose calls ride out a database restart (see :func:`retry_transient`).

    A call retried after its connection dropped may repeat a write that had committed: repeating
    ``set_trial_state_values`` on a trial it finished counts as done.
    """


for _name in _RETRIED:
    if hasattr(optuna.storages.RDBStorage, _name):  # private ones may move: tests/test_borrowed_names.py says when
        setattr(RetryingRDBStorage, _name, _retrying(_name, getattr(optuna.storages.RDBStorage, _name)))
