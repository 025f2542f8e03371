"""Nothing open to the network without a key (issue 26).

* ``tuner ui`` and ``tuner dashboard`` bind 127.0.0.1; another ``--host`` needs a credential (``ui --app-name
  basic-auth``) or ``--allow-unauthenticated``, else one line and exit 2.
* A tracking server with MLflow's basic-auth that refuses the credentials (wrong or none) stops ``study`` with one
  line, exit 2, and nothing written, as a server that is down does.
* The sockets tuner's processes listen on (``tests/_sockets.py``, from ``/proc``) are all on loopback unless the
  user asked for another host. (The study with ``--workers 2`` is watched in ``tests/test_secrets.py``.)
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import _forked
from tests._servers import basic_auth_or_skip, basic_auth_server, free_port
from tests._sockets import Listener, SocketWatch, exposed
from tuner.cli._base import is_loopback
from tuner.tracking._probe import tracking_credentials, tracking_trouble

USER, PASSWORD = "tuner", "Right-pw-" + os.urandom(4).hex()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    return {**env, **extra}


def _tuner(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    return _forked.run(list(args), cwd=cwd, env=env or _env(), inherit=False, timeout=timeout)


# -- which addresses count as this machine only ------------------------------------------------------------

@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.1.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("myhost", False), ("::ffff:10.0.0.1", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_the_socket_listing_finds_a_port_open_to_the_network_in_a_process_tree():
    # a child in a session of its own (as tuner's workers are) listening on 0.0.0.0, another on ::1
    code = ("import subprocess, sys, time\n"
            "kids = [subprocess.Popen([sys.executable, '-m', 'http.server', '--bind', b, '0'], start_new_session=True,\n"
            "                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for b in ('0.0.0.0', '::1')]\n"
            "time.sleep(4)\n"
            "[k.kill() for k in kids]\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    with SocketWatch(proc.pid) as watch:
        proc.wait(timeout=60)
    hosts = sorted(x.host for x in watch.listeners)
    assert hosts == ["0.0.0.0", "::1"], watch.listeners
    assert [x.host for x in exposed(watch.listeners)] == ["0.0.0.0"]
    assert all("http.server" in x.cmdline for x in watch.listeners)
    assert Listener(1, "", "::ffff:127.0.0.1", 80).loopback and not Listener(1, "", "::", 80).loopback


# -- ui and dashboard: another host needs a credential --------------------------------------------------------

@pytest.mark.parametrize("args, fix", [
    (["ui", "--host", "0.0.0.0"], "--app-name basic-auth"),
    (["ui", "--host", "::"], "--app-name basic-auth"),
    (["ui", "--host", "192.168.1.5", "--port", "5123"], "ssh -L 5123:127.0.0.1:5123"),
    (["dashboard", "--host", "0.0.0.0"], "--allow-unauthenticated"),
])
def test_ui_and_dashboard_refuse_a_host_beyond_loopback_without_a_credential(tmp_path, args, fix):
    proc = _tuner(*args, cwd=tmp_path, timeout=120)  # the old code served (and never returned)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --host: serving "), proc.stderr
    assert "without a password" in lines[0] and fix in lines[0] and repr(args[2]) in lines[0]
    assert proc.stdout == ""  # no URL printed: nothing started
    assert not (tmp_path / "mlruns").exists()


def test_ui_basic_auth_without_its_secret_key_is_refused_with_one_line(tmp_path):
    basic_auth_or_skip()
    env = {k: v for k, v in _env().items() if k != "MLFLOW_FLASK_SERVER_SECRET_KEY"}
    proc = _tuner("ui", "--host", "0.0.0.0", "--app-name", "basic-auth", cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: --app-name: MLflow's basic-auth needs MLFLOW_FLASK_SERVER_SECRET_KEY set to a random secret (its "
        "CSRF protection signs with it); got 'basic-auth'"]


def _serve(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``python -m tuner ARGS`` (a server) in a session of its own."""
    return subprocess.Popen([sys.executable, "-m", "tuner", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=env or _env())


def _wait(url: str, proc: subprocess.Popen, timeout: float = 180) -> int:
    """The HTTP status of ``url`` once the server answers (any status)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as answer:
                return answer.status
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            assert proc.poll() is None, f"the server exited with {proc.returncode}"
            assert time.monotonic() < deadline, f"{url} did not answer in time"
            time.sleep(1)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=20)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["ui", "dashboard"])
def test_ui_and_dashboard_listen_on_loopback_only(tmp_path, command):
    if command == "dashboard":
        pytest.importorskip("optuna_dashboard")
    port = free_port()
    store = ["--storage", f"sqlite:///{tmp_path}/optuna.db"] if command == "dashboard" else []
    proc = _serve([command, "--port", str(port), *store], tmp_path)
    try:
        with SocketWatch(proc.pid) as watch:
            status = _wait(f"http://127.0.0.1:{port}/", proc)
            time.sleep(1)  # the server's own workers are up too
            watch.poll()
    finally:
        _stop(proc)
    if command == "ui":  # in a folder with no store yet, the UI serves its page (tests/test_ui.py: with a study)
        assert status == 200
    assert any(x.port == port for x in watch.listeners), (watch.listeners, watch.processes)
    assert not exposed(watch.listeners), [str(x) for x in exposed(watch.listeners)]


@pytest.mark.slow
def test_ui_on_another_host_with_basic_auth_asks_every_caller_for_a_password(tmp_path):
    basic_auth_or_skip()
    port, admin = free_port(), "Admin-" + os.urandom(4).hex()
    (tmp_path / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{tmp_path}/basic_auth.db\nadmin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    env = _env(MLFLOW_FLASK_SERVER_SECRET_KEY=os.urandom(8).hex(), MLFLOW_AUTH_ADMIN_PASSWORD=admin,
               MLFLOW_AUTH_CONFIG_PATH=str(tmp_path / "auth.ini"))
    proc = _serve(["ui", "--host", "0.0.0.0", "--port", str(port), "--app-name", "basic-auth"], tmp_path, env=env)
    api = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        with SocketWatch(proc.pid) as watch:
            anonymous = _wait(api, proc)
        request = urllib.request.Request(api, headers={
            "Authorization": "Basic " + base64.b64encode(f"admin:{admin}".encode()).decode()})
        with urllib.request.urlopen(request, timeout=30) as answer:
            admitted = answer.status, json.loads(answer.read())
    finally:
        _stop(proc)
    assert anonymous == 401
    assert admitted[0] == 200 and "experiments" in admitted[1]
    # the user asked for 0.0.0.0: the one port beyond loopback is that one
    assert {(x.host, x.port) for x in exposed(watch.listeners)} == {("0.0.0.0", port)}, watch.listeners


# -- a tracking server with MLflow's basic-auth ------------------------------------------------------------

@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    server = basic_auth_server(tmp_path_factory.mktemp("auth-server"), {USER: PASSWORD})
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("credentials, says", [
    ({}, "asks for credentials (HTTP 401): set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or write "
         "them to ~/.mlflow/credentials"),
    ({"MLFLOW_TRACKING_USERNAME": USER, "MLFLOW_TRACKING_PASSWORD": "wrong"},
     f"refused the credentials of user {USER!r} (HTTP 401)"),
    ({"MLFLOW_TRACKING_USERNAME": "nobody", "MLFLOW_TRACKING_PASSWORD": PASSWORD},
     "refused the credentials of user 'nobody' (HTTP 401)"),
], ids=["none", "wrong-password", "unknown-user"])
def test_a_server_that_refuses_the_credentials_stops_the_study_with_one_line_and_nothing_written(
        tmp_path, auth_server, credentials, says):
    start = time.monotonic()
    proc = _tuner("study", "--study", "refused", "--dataset", "iris", "--tracking-uri", auth_server.uri,
                  "--n-trials", "1", "--set", "epochs=1", cwd=tmp_path, env=_env(**credentials))
    took = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: {auth_server.uri}: tracking server: {says}; nothing was written. Fix the credentials, "
                     "or pass --tracking-uri none to run without tracking"], proc.stderr
    assert not (tmp_path / "mlruns").exists()  # no Optuna study, no local MLflow store
    assert "wrong" not in proc.stderr and PASSWORD not in proc.stderr
    print(f"refused in {took:.1f} s")  # measured, not asserted: see benchmarks/faults.py


@pytest.mark.slow
def test_the_probe_reads_mlflows_credentials_file_and_its_environment_over_it(tmp_path, auth_server, monkeypatch):
    for key in [k for k in os.environ if k.startswith("MLFLOW_TRACKING_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".mlflow").mkdir()
    creds = tmp_path / ".mlflow" / "credentials"
    creds.write_text(f"[mlflow]\nmlflow_tracking_username = {USER}\nmlflow_tracking_password = {PASSWORD}\n")
    assert tracking_credentials(auth_server.uri) == (USER, PASSWORD, None)
    assert tracking_trouble(auth_server.uri) is None  # the file's credentials are accepted
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")  # the environment wins over the file, as in MLflow
    assert tracking_trouble(auth_server.uri) == f"refused the credentials of user {USER!r} (HTTP 401)"
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    creds.write_text("[mlflow]\n")
    assert tracking_trouble(auth_server.uri).startswith("asks for credentials (HTTP 401)")
    # credentials in the URI itself, as requests sends them
    uri = auth_server.uri.replace("http://", f"http://{USER}:{PASSWORD}@")
    assert tracking_trouble(uri) is None


@pytest.mark.slow
def test_a_worker_joining_with_refused_credentials_stops_instead_of_running_untracked(auth_server, monkeypatch):
    from tuner.errors import ConfigError
    from tuner.tracking import make_tracker

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    with pytest.raises(ConfigError, match=r"refused the credentials of user 'tuner' \(HTTP 401\); nothing was "
                                          r"written\. Fix the credentials"):
        make_tracker(auth_server.uri, "joined", joining=True)
    # a server that is away is another matter: the joining worker's trials go on with tracking off
    tracker = make_tracker(f"http://127.0.0.1:{free_port()}", "joined", joining=True)
    assert tracker.experiment_id is None


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (as a private CA's would be), and that key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_the_probe_trusts_the_certificate_authority_mlflow_is_told_to(tmp_path, monkeypatch):
    """An https:// tracking server with a private CA: MLflow's client trusts it through
    MLFLOW_TRACKING_SERVER_CERT_PATH (or MLFLOW_TRACKING_INSECURE_TLS), and so does the probe."""
    import http.server
    import ssl
    import threading

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    cert, key = _self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        for name in ("MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_INSECURE_TLS"):
            monkeypatch.delenv(name, raising=False)
        assert "CERTIFICATE_VERIFY_FAILED" in tracking_trouble(uri)  # an unknown CA is refused
        monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(cert))
        assert tracking_trouble(uri) is None
        monkeypatch.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH")
        monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
        assert tracking_trouble(uri) is None
    finally:
        server.shutdown()
