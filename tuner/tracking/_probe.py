"""Is the tracking server there? Asked once, quickly, before a study writes anything.

MLflow's own client retries a request that gets no answer for minutes (7 retries with exponential
backoff, 120 s each); a study pointed at a server that is down would hang that long, and would have
created its Optuna study already. :func:`probe_tracking` asks the server's ``/health`` endpoint with a
short timeout instead, with the standard library alone (no MLflow import), and :func:`bound_mlflow_retries`
caps MLflow's retries for the rest of the process (unless the user set them).
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from tuner._store import mask_secrets
from tuner.errors import ConfigError, Problem

__all__ = ["probe_tracking", "bound_mlflow_retries", "PROBE_TIMEOUT"]

PROBE_TIMEOUT = 3.0  # seconds

# MLflow's defaults (7 retries, backoff factor 2, 120 s per request) block minutes per call on a dead
# server; these keep one failed call to a few seconds. Names from mlflow/environment_variables.py.
_MLFLOW_HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                       "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


def bound_mlflow_retries() -> None:
    """Cap MLflow's HTTP retries and timeout for this process (and the workers it starts); a value the
    user set is kept."""
    for key, value in _MLFLOW_HTTP_LIMITS.items():
        os.environ.setdefault(key, value)


def probe_tracking(uri: str | None, *, timeout: float = PROBE_TIMEOUT) -> None:
    """Check that an ``http(s)://`` tracking server answers; other URIs (local stores) need no check.

    Args:
        uri: the tracking URI (``None`` or ``"none"``: nothing to check).
        timeout: seconds to wait for the answer. Defaults to `3.0`.

    Raises:
        ConfigError: naming the URI (its password masked) and what failed, when the server does not answer
            with a success within ``timeout``.
    """
    failed = tracking_trouble(uri, timeout=timeout)
    if failed is not None:
        raise ConfigError([Problem(mask_secrets(uri), "tracking server",
                                   f"{failed}; nothing was written. Start the server, or pass --tracking-uri none "
                                   "to run without tracking", has_value=False)])


def tracking_trouble(uri: str | None, *, timeout: float = PROBE_TIMEOUT) -> str | None:
    """What is wrong with an ``http(s)://`` tracking server (e.g. ``did not answer (Connection refused)``), asked
    with a short timeout; None when it answers, or for any other URI."""
    if not uri or not uri.lower().startswith(("http://", "https://")):
        return None
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    health = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))
    request = urllib.request.Request(health, method="GET")
    if parts.username is not None:  # http://user:password@host: MLflow sends basic auth; so does the probe
        import base64

        token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http(s) only, checked above
            status = answer.status
    except urllib.error.HTTPError as err:
        status = err.code
        if status in (401, 403):  # the server is there; MLflow's own credentials may still be right
            return None
        failed = f"answered HTTP {status} to GET /health"
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, (socket.timeout, TimeoutError)):
            failed = f"did not answer within {timeout:g} s"
        else:
            failed = f"did not answer ({reason})"
        failed = failed.replace("[Errno 111] ", "")
    else:
        if 200 <= status < 300:
            return None
        failed = f"answered HTTP {status} to GET /health"
    return failed
