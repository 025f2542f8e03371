"""Where things live: the local store folder, the default Optuna storage and MLflow tracking URI.

Every default location and every parse of a ``sqlite:///`` or ``journal:`` URL is here, once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_STORE",
    "STORAGE_ENV",
    "default_storage",
    "default_tracking_uri",
    "sqlite_path",
    "journal_path",
    "local_store_dir",
    "absolute_sqlite",
    "cache_dir",
    "keras_home",
    "study_tracking_uri",
    "tracking_beside",
    "mask_secrets",
    "masked",
    "storage_trouble",
    "connection_lost",
]

DEFAULT_STORE = Path("mlruns")
STORAGE_ENV = "TUNER_STORAGE"  # the storage URL when --storage is not given: keeps a password off command lines
_SQLITE = "sqlite:///"
# scheme://user:PASSWORD@host  (the password is everything up to the last "@" before the host)
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)(?P<secret>[^\s/?#]*)(?P<at>@)")
# ?password=...  in a query string
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)(?P<secret>[^&\s]*)", re.IGNORECASE)


def mask_secrets(value: Any) -> Any:
    """``value`` with the passwords of any URLs in it replaced by ``***``; non-strings are returned as they are.

    ``postgresql://tuner:secret@db/tuner`` -> ``postgresql://tuner:***@db/tuner``. Everything tuner
    writes or prints about a storage or tracking URL (MLflow parameters, ``settings.json``, logs,
    ``--json``, reports) goes through here.
    """
    if not isinstance(value, str):
        return value
    if "@" in value:
        value = _URL_PASSWORD.sub(lambda m: m["head"] + "***" + m["at"] if m["secret"] else m[0], value)
    if "=" in value:
        value = _QUERY_PASSWORD.sub(lambda m: m["head"] + "***", value)
    return value


def masked(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``mapping`` with :func:`mask_secrets` applied to each value (nested mappings too)."""
    return {k: masked(v) if isinstance(v, Mapping) else mask_secrets(v) for k, v in mapping.items()}


def default_storage(store: Path = DEFAULT_STORE) -> str:
    """The default Optuna storage: ``$TUNER_STORAGE`` when set, else ``sqlite:///mlruns/optuna.db``."""
    env = os.environ.get(STORAGE_ENV)
    if env and store == DEFAULT_STORE:
        return env
    return f"{_SQLITE}{Path(store).as_posix()}/optuna.db"


def default_tracking_uri(store: Path = DEFAULT_STORE) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the SQLite store ``sqlite:///mlruns/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"{_SQLITE}{Path(store).as_posix()}/mlflow.db"


def cache_dir() -> Path:
    """tuner's own cache (generated datasets, JAX's compiled programs): ``$TUNER_CACHE_DIR``, else
    ``~/.cache/tuner``."""
    env = os.environ.get("TUNER_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tuner"


def keras_home() -> Path:
    """Keras's own folder (``keras.json``, ``datasets/``): ``$KERAS_HOME``, else ``~/.keras``."""
    env = os.environ.get("KERAS_HOME")
    return Path(env).expanduser() if env else Path.home() / ".keras"


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URL; None for any other URL."""
    if url.startswith(_SQLITE):
        return Path(url[len(_SQLITE) :])
    return None


def journal_path(url: str) -> Path | None:
    """The log file of a ``journal:PATH`` storage; None for any other URL."""
    if url.startswith("journal:"):
        return Path(url[len("journal:") :].removeprefix("//"))
    return None


def local_store_dir(uri: str) -> Path | None:
    """The folder holding a local SQLite database (MLflow artifacts go beside it); None for servers."""
    path = sqlite_path(uri)
    return None if path is None else path.parent


def tracking_beside(storage: str) -> str | None:
    """The MLflow store that ``study`` wrote beside an Optuna storage, when it exists.

    ``sqlite:///DIR/optuna.db`` -> ``sqlite:///DIR/mlflow.db``; else the default ``mlruns/mlflow.db``.
    None when neither exists.
    """
    path = sqlite_path(storage)
    if path is not None:
        beside = path.parent / "mlflow.db"
        if beside.exists():
            return f"{_SQLITE}{beside.as_posix()}"
    default = DEFAULT_STORE / "mlflow.db"
    return f"{_SQLITE}{default.as_posix()}" if default.exists() else None


def absolute_sqlite(uri: str | None) -> str | None:
    """``sqlite:///relative/path`` as an absolute ``sqlite:////...`` URL (what a study records, so that a worker or
    a command started in another folder finds the same file); any other URI as it is."""
    path = sqlite_path(uri) if uri else None
    if path is None or path.is_absolute():
        return uri
    return f"{_SQLITE}{path.resolve().as_posix()}"


def study_tracking_uri(storage: str, *, given: str | None = None, recorded: str | None = None) -> str | None:
    """The MLflow store of a study, for every command that reads or opens it (``report``, ``ui``, ``sync``).

    The one ``given`` (``"none"``: None); else the one the study ran with (``recorded`` in its recipe;
    ``"none"`` when it ran with tracking off; a relative SQLite path, as older studies recorded it, is looked
    for here, then in the folder of an absolute SQLite storage), unless it is a SQLite file that is not there; else
    ``MLFLOW_TRACKING_URI``; else the ``mlflow.db`` beside a SQLite Optuna storage, or the default
    ``mlruns/mlflow.db``, when one exists (:func:`tracking_beside`). None when there is none.
    """
    if given:
        return None if given == "none" else given
    if recorded == "none":
        return None
    path = sqlite_path(recorded) if recorded else None
    if recorded and path is None:
        return recorded
    if path is not None:  # relative to the folder the study ran in (older studies): here, or an absolute storage's
        storage_path = sqlite_path(storage)
        beside = (
            [storage_path.parent / path]
            if storage_path is not None and storage_path.is_absolute() and not path.is_absolute()
            else []
        )
        for candidate in [path, *beside]:
            if candidate.exists():
                return f"{_SQLITE}{candidate.resolve().as_posix()}"
    return os.environ.get("MLFLOW_TRACKING_URI") or tracking_beside(storage)


# a database server that went away or is restarting: tuner retries these for a while (tuner.study._retry)
_CONNECTION_LOST = (
    "server closed the connection",
    "could not connect",
    "connection refused",
    "terminating connection",
    "connection not open",
    "connection already closed",
    "the database system is starting up",
    "the database system is shutting down",
    "ssl syscall error",
    "lost connection",
)
_STORAGE_TROUBLE = (
    (
        ("readonly database", "read-only file system", "permission denied"),
        "is read-only: give this user write permission on the database file and its folder",
    ),
    (("database is locked",), "is locked by another process that holds a write transaction; retry when it ends"),
    (
        ("disk is full", "no space left", "file too large", "disk i/o error"),
        "has no room left to write (disk full, a file-size limit, or a disk error); free space",
    ),
    (_CONNECTION_LOST, "did not answer (the database server is down or restarting); start it"),
)


def storage_trouble(err: BaseException, url: str | None = None) -> str | None:
    """One line for a storage that cannot be written (read-only, locked, disk full, server gone), or None.

    Names the storage (its password masked), what failed, and what to do; every trial that finished
    before is kept in the storage, and running the same command again resumes the study.
    """
    text = _chain_text(err)
    for needles, what in _STORAGE_TROUBLE:
        if any(n in text for n in needles):
            where = f"storage {mask_secrets(url)}" if url else "the storage"
            detail = mask_secrets(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
            return (
                f"{where} {what}, then run the same command again to resume: finished trials are kept "
                f"({type(err).__name__}: {detail[:200]})"
            )
    return None


def _chain_text(err: BaseException) -> str:
    chain: list[str] = []
    seen: BaseException | None = err
    while seen is not None and len(chain) < 6:  # Optuna and SQLAlchemy wrap the driver's error
        chain.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return " ".join(chain).lower()


def connection_lost(err: BaseException) -> bool:
    """Whether ``err`` says the database server went away, refused a connection, or is restarting."""
    text = _chain_text(err)
    return any(n in text for n in _CONNECTION_LOST)
