"""Real servers for the fault and security tests: an MLflow tracking server (optionally with MLflow's basic-auth) and
a private PostgreSQL, on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """``mlflow server`` with a SQLite backend in ``folder``; :meth:`stop` and :meth:`start` it again.

    With ``auth=True`` it is MLflow's own authentication (``--app-name basic-auth``, users in ``folder``): every
    API call needs a user's credentials; the admin is ``admin`` / :attr:`admin_password`, :meth:`add_user`
    adds others. That needs Flask-WTF (``pip install 'mlflow[auth]'``): see :func:`basic_auth_or_skip`.
    """

    def __init__(self, folder: Path, port: int | None = None, *, auth: bool = False) -> None:
        self.folder, self.port, self.auth = folder, port or free_port(), auth
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.admin_password = "Admin-" + os.urandom(6).hex()

    def _auth_env(self) -> dict[str, str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        ini = self.folder / "basic_auth.ini"
        ini.write_text("[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                       f"database_uri = sqlite:///{self.folder}/basic_auth.db\nadmin_username = admin\n"
                       "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                       "auth_cache_ttl_seconds = 60\n")  # a password hash checked once a minute, not every call
        return {"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_AUTH_ADMIN_PASSWORD": self.admin_password,
                "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(16).hex()}

    def add_user(self, username: str, password: str) -> None:
        """Create a user through the server's REST API, as the admin."""
        import base64
        import json

        request = urllib.request.Request(
            f"{self.uri}/api/2.0/mlflow/users/create", method="POST",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Basic " + base64.b64encode(
                f"admin:{self.admin_password}".encode()).decode()})
        with urllib.request.urlopen(request, timeout=30):
            pass

    def start(self, timeout: float = 90.0) -> MlflowServer:
        mlflow = Path(sys.executable).with_name("mlflow")
        auth = ["--app-name", "basic-auth"] if self.auth else []
        env = {**os.environ, **self._auth_env()} if self.auth else None
        self.proc = subprocess.Popen(
            [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1", *auth,
             "--backend-store-uri", f"sqlite:///{self.folder}/mlflow.db",
             "--artifacts-destination", (self.folder / "artifacts").as_uri()],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("mlflow server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=30)
        self.proc = None


def basic_auth_or_skip() -> None:
    """Skip a test that needs MLflow's basic-auth app without Flask-WTF (fail it on CI, which installs the test
    extra: ``mlflow[auth]``)."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("flask_wtf") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install the test extra: mlflow[auth] (Flask-WTF) for `mlflow server --app-name "
                        "basic-auth`")
        pytest.skip("MLflow's basic-auth app needs Flask-WTF: pip install 'mlflow[auth]'")


def basic_auth_server(folder: Path, users: dict[str, str]) -> MlflowServer:
    """A started :class:`MlflowServer` with MLflow's basic-auth and ``users`` (name -> password) added; skips
    without Flask-WTF (fails on CI)."""
    basic_auth_or_skip()
    server = MlflowServer(folder, auth=True).start()
    try:
        for name, password in users.items():
            server.add_user(name, password)
    except BaseException:
        server.stop()
        raise
    return server


def pg_folder() -> Path:
    """A folder the ``postgres`` user can reach (pytest's own tmp folders are private to root)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="tuner-pg-"))
    folder.chmod(0o755)
    return folder


def private_postgres_bin() -> Path | None:
    versions = sorted(PG_BIN.glob("*/bin/pg_ctl")) if PG_BIN.exists() else []
    return versions[-1].parent if versions else None


class PrivatePostgres:
    """A PostgreSQL cluster of its own in ``folder`` (initdb, pg_ctl), password authentication, 127.0.0.1.

    Run as the ``postgres`` user when the tests run as root (PostgreSQL refuses to run as root).
    """

    def __init__(self, folder: Path, password: str = "s3cr3t-pw") -> None:
        self.bin = private_postgres_bin()
        self.folder, self.password, self.port = folder, password, free_port()
        self.data = folder / "data"
        self.url = f"postgresql+psycopg2://tuner:{password}@127.0.0.1:{self.port}/tuner"

    def _as_owner(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + list(cmd), check=True, capture_output=True, timeout=120)

    def _ctl(self, action: str) -> None:
        self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "-l",
                       str(self.folder / "log"), "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
                       action)

    def start(self) -> PrivatePostgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        pw = self.folder / "pw"
        pw.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            shutil.chown(pw, "postgres")
        self._as_owner(str(self.bin / "initdb"), "-D", str(self.data), "-A", "scram-sha-256", f"--pwfile={pw}",
                       "-U", "tuner")
        self._ctl("start")
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("CREATE DATABASE tuner"))
        engine.dispose()
        return self

    def restart(self) -> None:
        self._ctl("restart")

    def stop(self) -> None:
        try:
            self._ctl("stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


def postgres_or_skip(password: str = "s3cr3t-pw") -> PrivatePostgres:
    """A started :class:`PrivatePostgres`; skips the test without PostgreSQL's binaries (fails it on CI)."""
    import pytest

    if private_postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install PostgreSQL (see .ci/services.sh)")
        pytest.skip("no PostgreSQL binaries (apt-get install postgresql)")
    return PrivatePostgres(pg_folder(), password=password).start()
