"""``python -m tuner ...`` for the tests, forked from a process that has imported TensorFlow, Keras and tuner once.

Each ``python -m tuner`` subprocess pays about 8 s of CPU to import TensorFlow and Keras before it does anything;
most of the suite's CPU goes there (session 10's profile). :func:`run` sends the command to a "zygote": one
process per test process that imports them once and forks a child per command. The child is a real process with
its own pid, working folder, environment, stdin, stdout, stderr and exit code, and runs ``tuner/__main__.py`` as
``python -m tuner`` does (``runpy``), so what a test checks (exit code, output, files, signals to the child)
holds as for a fresh interpreter. What it cannot check is a fresh interpreter's own cost or imports (``--help``
must not import TensorFlow), nor another Keras backend: :func:`run` starts a real subprocess for those
(``fresh=True``, or ``KERAS_BACKEND``/``--backend`` other than TensorFlow).
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_ZYGOTE = r'''
import json, os, runpy, signal, sys, traceback
import keras, tuner.cli  # the imports every child shares
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setsid()  # its own process group, as a subprocess the test could signal
            os.chdir(req["cwd"])
            os.environ.clear(); os.environ.update(req["env"])
            fd_in = os.open(req["stdin"], os.O_RDONLY)
            fd_out = os.open(req["stdout"], os.O_WRONLY | os.O_TRUNC)
            fd_err = os.open(req["stderr"], os.O_WRONLY | os.O_TRUNC)
            os.dup2(fd_in, 0); os.dup2(fd_out, 1); os.dup2(fd_err, 2)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            sys.argv = ["tuner", *req["args"]]
            try:
                runpy.run_module("tuner", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, int) and exc.code is not None:
                    print(exc.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
                code = 1
            import atexit, logging
            atexit._run_exitfuncs()
            logging.shutdown()
            sys.stdout.flush(); sys.stderr.flush()
        finally:
            os._exit(code)
    import time
    deadline, timed_out = time.monotonic() + req["timeout"], False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:  # as subprocess.run's timeout: kill it (its group) and say so
            os.killpg(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            timed_out = True
            break
        time.sleep(0.02)
    reply = {"pid": pid, "code": os.waitstatus_to_exitcode(status), "timed_out": timed_out}
    sys.stdout.write(json.dumps(reply) + "\n"); sys.stdout.flush()
'''

_lock = threading.Lock()
_zygote: subprocess.Popen | None = None


def _start() -> subprocess.Popen:
    global _zygote
    if _zygote is None or _zygote.poll() is not None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
        _zygote = subprocess.Popen([sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL,  # its own import noise; a child writes to its files
                                   text=True, env=env, cwd=ROOT)
        assert _zygote.stdout is not None and _zygote.stdout.readline().strip() == "ready"
        atexit.register(_zygote.kill)
    return _zygote


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600,
        input: str = "", fresh: bool = False) -> subprocess.CompletedProcess:
    """``python -m tuner *args`` in ``cwd`` with ``os.environ`` updated by ``env``, output captured as text."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    backend = full_env.get("KERAS_BACKEND", "tensorflow")
    if fresh or backend != "tensorflow" or any(a.startswith("--backend") for a in args):
        return subprocess.run([sys.executable, "-m", "tuner", *args], cwd=cwd, env=full_env, capture_output=True,
                              text=True, timeout=timeout, input=input)
    with tempfile.TemporaryDirectory() as tmp, _lock:
        paths = {name: os.path.join(tmp, name) for name in ("stdin", "stdout", "stderr")}
        Path(paths["stdin"]).write_text(input)
        Path(paths["stdout"]).touch()
        Path(paths["stderr"]).touch()
        zygote = _start()
        assert zygote.stdin is not None and zygote.stdout is not None
        request = {"args": list(args), "cwd": str(cwd), "env": full_env, "timeout": timeout, **paths}
        zygote.stdin.write(json.dumps(request) + "\n")
        zygote.stdin.flush()
        reply: dict[str, Any] = json.loads(zygote.stdout.readline())
        if reply["timed_out"]:
            raise subprocess.TimeoutExpired([sys.executable, "-m", "tuner", *args], timeout,
                                            Path(paths["stdout"]).read_text(), Path(paths["stderr"]).read_text())
        return subprocess.CompletedProcess([sys.executable, "-m", "tuner", *args], reply["code"],
                                           Path(paths["stdout"]).read_text(), Path(paths["stderr"]).read_text())
