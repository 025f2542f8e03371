"""``python -m tuner ...`` and ``python SCRIPT.py ...`` for the tests, forked from a process that imported TensorFlow,
Keras and tuner once.

Each ``python -m tuner`` subprocess pays about 8 s of CPU to import TensorFlow and Keras before it does anything;
most of the suite's CPU went there (session 10's profile). :func:`run` (and :func:`python` for a script) sends the
command to a "zygote": one process per test process that imports them once and forks a child per command. The
child is a real process with its own pid, working folder, environment, stdin, stdout, stderr and exit code, and
runs ``tuner/__main__.py`` as ``python -m tuner`` does (``runpy``; a script with its folder first on ``sys.path``),
so what a test checks (exit code, output, files, signals to the child) holds as for a fresh interpreter. What it
cannot check is a fresh interpreter's own cost or imports (``--help`` must not import TensorFlow), nor another
Keras backend: :func:`python` starts a real subprocess for those (``fresh=True``, or ``KERAS_BACKEND``/``--backend``
other than TensorFlow), and for anything else than ``-m tuner`` or a ``.py`` script.
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
from typing import Any, Mapping

ROOT = Path(__file__).resolve().parents[1]

_ZYGOTE = r'''
import json, os, runpy, signal, sys, traceback
import keras, tuner.cli  # the imports every child shares
import tuner, tuner.study
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
            try:
                if req["script"]:  # python SCRIPT ARGS: its folder first on sys.path, as python puts it
                    sys.argv = [req["script"], *req["args"]]
                    sys.path[0] = os.path.dirname(os.path.abspath(req["script"]))
                    runpy.run_path(req["script"], run_name="__main__")
                else:
                    sys.argv = ["tuner", *req["args"]]
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


def run(args: list[str], *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 600,
        input: str = "", fresh: bool = False, inherit: bool = True) -> subprocess.CompletedProcess:
    """``python -m tuner *args`` in ``cwd``, output captured as text.

    Its environment is ``os.environ`` updated by ``env``, or ``env`` alone with ``inherit=False`` (``PYTHONPATH``
    and ``TF_CPP_MIN_LOG_LEVEL`` are set in both unless ``env`` sets them).
    """
    return python(["-m", "tuner", *args], cwd=cwd, env=env, timeout=timeout, input=input, fresh=fresh,
                  inherit=inherit)


def python(argv: list[str], *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 600,
           input: str = "", fresh: bool = False, inherit: bool = True) -> subprocess.CompletedProcess:
    """``python *argv`` (``-m tuner ...`` or ``SCRIPT ...``), forked from the zygote where it can be."""
    full_env = {**(os.environ if inherit else {}), "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    backend = full_env.get("KERAS_BACKEND", "tensorflow")
    module = argv[:2] == ["-m", "tuner"]
    args = argv[2:] if module else argv[1:]
    command = [sys.executable, *argv]
    if (fresh or backend != "tensorflow" or any(a.startswith("--backend") for a in args)
            or not (module or (argv and not argv[0].startswith("-") and argv[0].endswith(".py")))):
        return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
                              input=input)
    with tempfile.TemporaryDirectory() as tmp, _lock:
        paths = {name: os.path.join(tmp, name) for name in ("stdin", "stdout", "stderr")}
        Path(paths["stdin"]).write_text(input)
        Path(paths["stdout"]).touch()
        Path(paths["stderr"]).touch()
        zygote = _start()
        assert zygote.stdin is not None and zygote.stdout is not None
        script = None if module else str(Path(cwd, argv[0]))
        request = {"args": list(args), "script": script, "cwd": str(cwd), "env": full_env, "timeout": timeout,
                   **paths}
        zygote.stdin.write(json.dumps(request) + "\n")
        zygote.stdin.flush()
        reply: dict[str, Any] = json.loads(zygote.stdout.readline())
        out, err = Path(paths["stdout"]).read_text(), Path(paths["stderr"]).read_text()
        if reply["timed_out"]:
            raise subprocess.TimeoutExpired(command, timeout, out, err)
        return subprocess.CompletedProcess(command, reply["code"], out, err)
