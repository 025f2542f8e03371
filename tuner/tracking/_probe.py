"""Is the tracking server there? Asked once, quickly, before a study writes anything.

MLflow's own client retries a request that gets no answer for minutes (7 retries with exponential
backoff, 120 s each); a study pointed at a server that is down would hang that long, and would have
created its Optuna study already. :func:`probe_tracking` asks the server's ``/health`` endpoint with a
short timeout instead, with the standard library alone (no MLflow import), and :func:`bound_mlflow_retries`
caps MLflow's retries for the rest of the process (unless the user set them).

A server that answers but refuses the credentials (``mlflow server --app-name basic-auth``) is found the same
way: one cheap authenticated request (``experiments/search`` for one experiment) with the credentials MLflow's
client would send (:func:`tracking_credentials`), so a wrong password stops a study in seconds, before its Optuna
study exists, instead of failing at the first MLflow call after it.
"""

from __future__ import annotations

import base64
import configparser
import os
import socket
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from tuner._store import mask_secrets
from tuner.errors import ConfigError, Problem

__all__ = ["probe_tracking", "bound_mlflow_retries", "tracking_credentials", "PROBE_TIMEOUT"]

PROBE_TIMEOUT = 3.0  # seconds
# a server that answered /health may take longer over a request it authenticates: MLflow's basic-auth checks a
# password hash that is slow on purpose (scrypt: 0.3 s of CPU) on every call, seconds on a busy machine
AUTH_TIMEOUT = 10.0

# MLflow's defaults (7 retries, backoff factor 2, 120 s per request) block minutes per call on a dead
# server; these keep one failed call to a few seconds. Names from mlflow/environment_variables.py.
_MLFLOW_HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}


def bound_mlflow_retries() -> None:
    """Cap MLflow's HTTP retries and timeout for this process (and the workers it starts); a value the
    user set is kept."""
    for key, value in _MLFLOW_HTTP_LIMITS.items():
        os.environ.setdefault(key, value)


def probe_tracking(uri: str | None, *, timeout: float = PROBE_TIMEOUT, credentials_only: bool = False) -> str | None:
    """Check that an ``http(s)://`` tracking server answers and accepts our credentials; other URIs (local
    stores) need no check.

    Args:
        uri: the tracking URI (``None`` or ``"none"``: nothing to check).
        timeout: seconds to wait for the answer. Defaults to `3.0`.
        credentials_only: raise only when the server answers and refuses the credentials (a worker joining a
            running study goes on with tracking off when the server is away). Defaults to `False`.

    Returns:
        What is wrong that it did not raise for (with ``credentials_only``: a server that is away), else None.

    Raises:
        ConfigError: naming the URI (its password masked) and what failed, when the server does not answer
            with a success within ``timeout`` or refuses the credentials MLflow's client would send.
    """
    failed, refused = _diagnose(uri, timeout)
    if failed is not None and (refused or not credentials_only):
        fix = "Fix the credentials" if refused else "Start the server"
        raise ConfigError(
            [
                Problem(
                    mask_secrets(uri),
                    "tracking server",
                    f"{failed}; nothing was written. {fix}, or pass --tracking-uri none to run without tracking",
                    has_value=False,
                )
            ]
        )
    return failed


def tracking_credentials(uri: str) -> tuple[str | None, str | None, str | None]:
    """The ``(username, password, token)`` MLflow's client sends to the tracking server at ``uri``.

    As MLflow's ``read_mlflow_creds`` resolves them (read here without importing MLflow, which takes seconds):
    ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, each else from the ``[mlflow]`` section of
    ``~/.mlflow/credentials``; ``MLFLOW_TRACKING_TOKEN`` for a bearer token; and a ``user:password@`` in the URI
    itself (which requests sends when MLflow sets no header).
    """
    username, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    path = os.path.expanduser("~/.mlflow/credentials")
    if (not username or not password) and os.path.exists(path):
        config = configparser.ConfigParser()
        try:
            config.read(path)
        except configparser.Error:
            config = configparser.ConfigParser()
        if "mlflow" in config:
            username = username or config["mlflow"].get("mlflow_tracking_username")
            password = password or config["mlflow"].get("mlflow_tracking_password")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN") or None
    if not (username and password) and not token:
        parts = urlsplit(uri)
        if parts.username is not None:
            username, password = parts.username, parts.password or ""
    return username or None, password, token


def _authorization(uri: str) -> tuple[str | None, str | None]:
    """The ``Authorization`` header MLflow's client sends (basic auth first, else a bearer token) and the user."""
    username, password, token = tracking_credentials(uri)
    if username and password:
        return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode(), username
    if token:
        return f"Bearer {token}", None
    return None, None


def _tls_context() -> ssl.SSLContext | None:
    """MLflow's own TLS settings for the server: its certificate authority, or no verification when asked."""
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").strip().lower() in ("true", "1"):
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return context
    cafile = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    return ssl.create_default_context(cafile=cafile) if cafile else None


def _ask(url: str, header: str | None, timeout: float) -> int:
    """The HTTP status of ``GET url`` (with ``Authorization: header``); raises OSError when nobody answers."""
    request = urllib.request.Request(url, method="GET")
    if header is not None:
        request.add_header("Authorization", header)
    try:
        # http(s) only, checked by the caller
        with urllib.request.urlopen(request, timeout=timeout, context=_tls_context()) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code


def tracking_trouble(uri: str | None, *, timeout: float = PROBE_TIMEOUT) -> str | None:
    """What is wrong with an ``http(s)://`` tracking server (e.g. ``did not answer (Connection refused)``,
    ``refused the credentials of user 'bob' (HTTP 401)``), asked with a short timeout; None when it answers and
    accepts the credentials MLflow would send, or for any other URI."""
    return _diagnose(uri, timeout)[0]


def _diagnose(uri: str | None, timeout: float) -> tuple[str | None, bool]:
    """What is wrong (see :func:`tracking_trouble`), and whether it is the credentials (the server is there)."""
    if not uri or not uri.lower().startswith(("http://", "https://")):
        return None, False
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    base = parts.path.rstrip("/")
    header, user = _authorization(uri)
    try:
        status = _ask(urlunsplit((parts.scheme, netloc, base + "/health", "", "")), header, timeout)
        if status in (401, 403) or 200 <= status < 300:  # there (basic-auth leaves /health open; a proxy may not)
            # one cheap request that needs the credentials: MLflow's basic-auth checks every API call
            search = urlunsplit(
                (parts.scheme, netloc, base + "/api/2.0/mlflow/experiments/search", "max_results=1", "")
            )
            try:
                status = _ask(search, header, max(timeout, AUTH_TIMEOUT))
            except (TimeoutError, urllib.error.URLError, OSError) as err:
                if not isinstance(getattr(err, "reason", err), (socket.timeout, TimeoutError)):
                    raise
                # there, but slow to serve a call (a refusal is quick: no store behind it); MLflow's own calls,
                # with their bounded retries, tell the rest
                return None, False
            if status not in (401, 403) or _plugin_auth():
                # accepted, or an API this check does not know (MLflow's own calls will tell), or MLflow signs its
                # requests with a plugin (MLFLOW_TRACKING_AUTH, AWS SigV4) this check cannot imitate
                return None, False
            if status == 403:
                return (
                    f"refused access to user {user!r} (HTTP 403): ask the server's admin for READ permission"
                    if user
                    else "refused access (HTTP 403)"
                ), True
            if header is None:
                return (
                    "asks for credentials (HTTP 401): set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, "
                    "or write them to ~/.mlflow/credentials"
                ), True
            return (
                f"refused the credentials of user {user!r} (HTTP 401)"
                if user
                else "refused the token in MLFLOW_TRACKING_TOKEN (HTTP 401)"
            ), True
        failed = f"answered HTTP {status} to GET /health"
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, (socket.timeout, TimeoutError)):
            failed = f"did not answer within {timeout:g} s"
        else:
            failed = f"did not answer ({reason})"
        failed = failed.replace("[Errno 111] ", "")
    return failed, False


def _plugin_auth() -> bool:
    """MLflow signs its requests with a plugin (``MLFLOW_TRACKING_AUTH``) or AWS SigV4, which this probe cannot."""
    return bool(os.environ.get("MLFLOW_TRACKING_AUTH")) or (
        os.environ.get("MLFLOW_TRACKING_AWS_SIGV4", "").strip().lower() in ("true", "1")
    )
