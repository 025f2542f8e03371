"""Which TCP ports a process tree listens on, read from ``/proc`` (Linux): for the tests that check that tuner
opens no port beyond loopback unless the user asked.

A socket belongs to a process when one of its ``/proc/PID/fd/*`` links reads ``socket:[INODE]``; the listening
sockets of its network namespace, with their address, are the ``0A`` (LISTEN) rows of ``/proc/PID/net/tcp``
and ``/proc/PID/net/tcp6``. The process tree is found through each process's parent in ``/proc/PID/stat``, so
children started in a session of their own (tuner's workers, ``start_new_session=True``) are found too.

    with SocketWatch(proc.pid) as watch:   # polls until the block ends
        ...                                # the study, UI or dashboard runs
    assert not exposed(watch.listeners), watch.listeners
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Listener", "process_tree", "listening_sockets", "exposed", "SocketWatch"]

_LISTEN = "0A"  # TCP_LISTEN in include/net/tcp_states.h


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket: its address and port, and the process that holds it."""

    pid: int
    cmdline: str = field(compare=False)  # read while the process may be exiting (then empty): not its identity
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        address = ipaddress.ip_address(self.host)
        mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
        return (mapped or address).is_loopback

    def __str__(self) -> str:
        return f"{self.host}:{self.port} (pid {self.pid}: {self.cmdline[:120]})"


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])  # the fields after "(comm)": state, ppid, ...
    except (OSError, IndexError, ValueError):  # gone, or read while it exits (then the text can be cut short)
        return None


def process_tree(root: int) -> set[int]:
    """``root`` and every process descended from it that is alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, []))
    return tree


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _address(hex_address: str) -> str:
    """``0100007F`` -> ``127.0.0.1``; IPv6 is four 32-bit words, each in the host's (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def _listening_table(pid: int) -> dict[str, tuple[str, int]]:
    """inode -> (host, port) of the LISTEN sockets in the network namespace of ``pid``."""
    table = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN:
                host, port = fields[1].rsplit(":", 1)
                table[fields[9]] = (_address(host), int(port, 16))
    return table


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def listening_sockets(pids: set[int] | list[int]) -> list[Listener]:
    """The listening TCP sockets that the processes ``pids`` hold now."""
    found: list[Listener] = []
    tables: dict[str, dict[str, tuple[str, int]]] = {}
    for pid in pids:
        inodes = _socket_inodes(pid)
        if not inodes:
            continue
        try:
            namespace = os.readlink(f"/proc/{pid}/ns/net")
        except OSError:
            namespace = "?"
        if namespace not in tables:
            tables[namespace] = _listening_table(pid)
        for inode in inodes & tables[namespace].keys():
            host, port = tables[namespace][inode]
            found.append(Listener(pid, _cmdline(pid), host, port))
    return found


def exposed(listeners: list[Listener] | set[Listener]) -> list[Listener]:
    """The listeners bound beyond loopback (``0.0.0.0``, ``::``, a network interface's address)."""
    return sorted((x for x in listeners if not x.loopback), key=str)


class SocketWatch:
    """Poll the process tree of ``root`` in a thread, every ``interval`` seconds, while the ``with`` block runs;
    :attr:`listeners` holds every listening socket seen (processes come and go: workers, server workers),
    :attr:`processes` every process seen in the tree; :attr:`polls` and :attr:`longest_gap` say how well it saw."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root, self.interval = root, interval
        self.listeners: set[Listener] = set()
        self.processes: dict[int, str] = {}
        self.polls = 0
        self.longest_gap = 0.0  # seconds between the starts of two polls: a watch that stalled says so
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def poll(self) -> None:
        tree = process_tree(self.root)
        for pid in tree:
            self.processes.setdefault(pid, _cmdline(pid))
        self.listeners.update(listening_sockets(tree))
        self.polls += 1

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            self.longest_gap, last = max(self.longest_gap, now - last), now
            try:
                self.poll()
            except Exception as exc:  # kept for __exit__: a watch that stopped seeing must fail the test, not go blind
                self.errors.append(exc)
            self._stop.wait(self.interval)

    def __enter__(self) -> SocketWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.errors:
            raise RuntimeError(f"SocketWatch: {len(self.errors)} of {self.polls + len(self.errors)} polls failed") \
                from self.errors[0]
