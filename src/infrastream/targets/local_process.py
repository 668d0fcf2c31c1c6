"""Operating-system plumbing of the `local` target: start, watch, probe and stop processes.

The local target runs applications as detached process groups (`start_new_session=True`) so
they outlive a crash of the server. A new server must then recognise them from a PID alone,
and a PID can be reused by an unrelated process: every process is identified by its PID
*and* its start time (`/proc/<pid>/stat`, field 22), and nothing is signalled unless both
match. Where `/proc` does not exist the start time is unknown and the PID alone is trusted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from infrastream.manifests import format_duration

T = TypeVar("T")
R = TypeVar("R")


_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Processes started by this Python process, kept so that exited ones are reaped."""
_CHILDREN_LOCK = threading.Lock()
_CLIENT: httpx.Client | None = None


@dataclass(frozen=True)
class Spawned:
    pid: int
    proc_start: int | None
    log_offset: int
    """Where the process's own output begins in its log file (after our header line)."""


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that were free on 127.0.0.1 a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int) -> bool:
    """Whether a server (which sets SO_REUSEADDR, as most do) could listen on `port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spawn(command: Sequence[str], cwd: Path, env: Mapping[str, str], log_path: Path,
          header: str) -> Spawned:
    """Start `command` in its own session, output appended to `log_path` after `header`.

    Raises OSError when the program cannot be started (not found, not executable, bad cwd).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(header.rstrip("\n").encode() + b"\n")
        log.flush()
        offset = log.tell()
        process = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )
    with _CHILDREN_LOCK:
        _CHILDREN[process.pid] = process
    return Spawned(process.pid, process_start_time(process.pid), offset)


def process_start_time(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot, or None without /proc or process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


OWNER_VARIABLE = "INFRASTREAM_LOCAL_OWNER"
"""Set in every child's environment to the state directory that owns it, so processes a
crash left unrecorded can still be found and stopped."""


def owned_processes(owner: str) -> list[tuple[int, int | None]]:
    """(pid, start time) of every live process whose environment names `owner`."""
    marker = f"{OWNER_VARIABLE}={owner}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            pid = int(entry.name)
            found.append((pid, process_start_time(pid)))
    return found


def exit_code(pid: int) -> int | None:
    """The exit status of a process this Python process started, once it has exited."""
    with _CHILDREN_LOCK:
        process = _CHILDREN.get(pid)
    return process.poll() if process is not None else None


def is_alive(pid: int, proc_start: int | None) -> bool:
    """Whether `pid` still runs and is the process that started at `proc_start`."""
    _reap()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else: the start time decides
    fields = _stat_fields(pid)
    if fields is None:
        return not Path("/proc/self/stat").exists()
    if fields[0] in ("Z", "X"):
        return False
    return proc_start is None or int(fields[19]) == proc_start


def stop(pid: int, proc_start: int | None, *, grace: float = 5.0) -> None:
    """SIGTERM the process group of `pid`, then SIGKILL it after `grace` seconds."""
    if not is_alive(pid, proc_start):
        return
    _signal_group(pid, signal.SIGTERM)
    if not _wait_gone(pid, proc_start, grace):
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid, proc_start, 5.0)
    else:
        _signal_group(pid, signal.SIGKILL)  # stragglers the leader left behind
    with _CHILDREN_LOCK:
        _CHILDREN.pop(pid, None)


def probe(url: str, timeout: float = 2.0) -> bool:
    """Whether GET `url` answers 2xx within `timeout` seconds."""
    try:
        response = _client().get(url, timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.is_success


def _client() -> httpx.Client:
    """One client for every probe: building one per call costs more than the call itself.

    It ignores proxy variables: probes only ever go to 127.0.0.1.
    """
    global _CLIENT
    with _CHILDREN_LOCK:
        if _CLIENT is None:
            _CLIENT = httpx.Client(trust_env=False, follow_redirects=False)
        return _CLIENT


def wait_healthy(pid: int, url: str | None, *, timeout: float, settle: float,
                 interval: float = 0.05) -> str | None:
    """Wait for the started process `pid` to become healthy; None when it did, else why not.

    With a `url` healthy means a 2xx answer before `timeout`; without one it means still
    running after `settle` seconds. Asks often at first, then less (up to twice a second).
    """
    deadline = time.monotonic() + (timeout if url else settle)
    while True:
        code = exit_code(pid)
        if code is not None:
            return _describe_exit(code)
        if url and probe(url, timeout=max(0.2, min(2.0, deadline - time.monotonic()))):
            return None
        if time.monotonic() >= deadline:
            return None if url is None else f"not healthy after {format_duration(timeout)}"
        time.sleep(interval)
        interval = min(0.5, interval * 1.5)


def log_tail(path: Path, offset: int = 0, *, lines: int = 15, max_bytes: int = 8192) -> str:
    """The last `lines` lines written to `path` after `offset`, joined with ` | `."""
    try:
        with open(path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(offset, size - max_bytes))
            data = log.read()
    except OSError:
        return ""
    text = data.decode(errors="replace")
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def parallel(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`function` over `items` in threads (inline for a single item), results in order."""
    items = list(items)
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(16, len(items))) as pool:
        return list(pool.map(function, items))


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3… of /proc/<pid>/stat (state first), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _wait_gone(pid: int, proc_start: int | None, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while is_alive(pid, proc_start):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _reap() -> None:
    """Collect the exit status of our exited children so they stop being zombies."""
    with _CHILDREN_LOCK:
        for process in _CHILDREN.values():
            process.poll()
