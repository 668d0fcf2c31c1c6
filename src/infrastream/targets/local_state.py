"""What the `local` target remembers about an environment, on disk so it survives a restart.

One directory per environment, `<data dir>/local/<environment>/`, holds `state.json` (the
process of every application, written atomically: temporary file + `os.replace`), the log
file of every application and a lock file that serialises deployments across threads and
processes. Secret values never reach this module: a record keeps the *names* of the secret
variables and the values of the others, enough to restart an application without secrets.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1


@dataclass(frozen=True)
class ProcessRecord:
    """One application's process as started by the local target."""

    app: str
    pid: int
    proc_start: int | None
    """Start time of the process (clock ticks since boot), to tell it from a reused PID."""
    port: int
    version: str
    image: str
    release: str
    deploy_key: str
    started_at: str
    """ISO 8601 UTC."""
    command: tuple[str, ...]
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    """The application's own non-secret variables (not PORT or INFRASTREAM_*)."""
    secret_names: tuple[str, ...] = ()
    health_path: str | None = None
    health_timeout: float = 60.0
    restarts: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def for_storage(self) -> dict[str, Any]:
        data = asdict(self)
        data["command"] = list(self.command)
        data["secret_names"] = list(self.secret_names)
        return data

    @classmethod
    def from_storage(cls, data: dict[str, Any]) -> ProcessRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["command"] = tuple(known.get("command", ()))
        known["secret_names"] = tuple(known.get("secret_names", ()))
        return cls(**known)


@dataclass(frozen=True)
class Pending:
    """A process started by a deployment that has not finished (yet): killed if orphaned."""

    app: str
    pid: int
    proc_start: int | None


@dataclass(frozen=True)
class EnvironmentState:
    apps: dict[str, ProcessRecord] = field(default_factory=dict)
    pending: tuple[Pending, ...] = ()

    def for_storage(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "apps": {name: record.for_storage() for name, record in sorted(self.apps.items())},
            "pending": [asdict(p) for p in self.pending],
        }

    @classmethod
    def from_storage(cls, data: dict[str, Any]) -> EnvironmentState:
        apps = {name: ProcessRecord.from_storage(r) for name, r in data.get("apps", {}).items()}
        pending = tuple(Pending(**p) for p in data.get("pending", ()))
        return cls(apps, pending)


class StateDirectory:
    """The files of one environment under `<data dir>/local/<environment>/`."""

    def __init__(self, root: Path, environment: str) -> None:
        self.path = root / "local" / environment

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    def log_file(self, app: str) -> Path:
        return self.path / f"{app}.log"

    def load(self) -> EnvironmentState:
        try:
            data = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return EnvironmentState()
        return EnvironmentState.from_storage(data)

    def save(self, state: EnvironmentState) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.path, prefix=".state-", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(state.for_storage(), handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.state_file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()

    @contextlib.contextmanager
    def locked(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the environment's lock; yields False (without it) when busy and not `wait`."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
