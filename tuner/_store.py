"""Where things live: the local store folder, the default Optuna storage and MLflow tracking URI.

Every default location and every parse of a ``sqlite:///`` or ``journal:`` URL is here, once.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_STORE", "default_storage", "default_tracking_uri", "sqlite_path", "journal_path",
           "local_store_dir", "tracking_beside"]

DEFAULT_STORE = Path("mlruns")
_SQLITE = "sqlite:///"


def default_storage(store: Path = DEFAULT_STORE) -> str:
    """The default Optuna storage: ``sqlite:///mlruns/optuna.db``."""
    return f"{_SQLITE}{Path(store).as_posix()}/optuna.db"


def default_tracking_uri(store: Path = DEFAULT_STORE) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the SQLite store ``sqlite:///mlruns/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"{_SQLITE}{Path(store).as_posix()}/mlflow.db"


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URL; None for any other URL."""
    if url.startswith(_SQLITE):
        return Path(url[len(_SQLITE):])
    return None


def journal_path(url: str) -> Path | None:
    """The log file of a ``journal:PATH`` storage; None for any other URL."""
    if url.startswith("journal:"):
        return Path(url[len("journal:"):].removeprefix("//"))
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
