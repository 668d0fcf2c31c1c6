"""The `noop` target: records what would be deployed and reports it healthy at once.

For dry runs, demos and benchmarks, and as the fake that tests of the layers above use: it
honours the whole target contract (idempotent per key, prune, status, teardown) without
starting anything. Given a data directory it keeps its records in
`<data dir>/noop/<environment>.json`, so that status survives a restart, and appends the key
of every deployment that changed something to `<environment>.calls` (one line per call that
reached it: how tests count target calls); without one it keeps them in memory. Variables
are never recorded, so no secret can leak through it. The records are per data directory:
with several servers, noop environments are not shared state (each server keeps its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.manifests import Environment

from .base import AppStatus, DeployRequest, DeployResult, Health

DETAIL = "recorded by the noop target; nothing runs"


@dataclass(frozen=True)
class _Record:
    app: str
    version: str
    image: str
    release: str
    deploy_key: str

    def status(self) -> AppStatus:
        return AppStatus(app=self.app, version=self.version, image=self.image,
                         health=Health.HEALTHY, release=self.release,
                         deploy_key=self.deploy_key, detail=DETAIL)


class NoopTarget:
    """Records intent only; every environment it serves is instantly healthy."""

    type_name = "noop"
    synchronous = True
    """It answers at once, so the engine deploys inside its own transaction, without a job."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir
        self._records: dict[str, dict[str, _Record]] = {}
        self._lock = threading.Lock()
        self.deploy_count = 0
        """How many deployments changed something (idempotent repeats do not count)."""

    def deploy(self, request: DeployRequest) -> DeployResult:
        name = request.environment.metadata.name
        with self._lock:
            records = self._load(name)
            if all(records.get(a.app, None) is not None
                   and records[a.app].deploy_key == request.key for a in request.apps) and (
                    not request.prune or set(records) <= {a.app for a in request.apps}):
                statuses = tuple(records[a.app].status() for a in request.apps)
                return DeployResult(request.key, statuses, "already deployed")
            if request.prune:
                records = {}
            records = dict(records)
            for app in request.apps:
                records[app.app] = _Record(app.app, app.version, app.image, request.release,
                                           request.key)
            self._save(name, records)
            self._called(name, request.key)
            self.deploy_count += 1
            statuses = tuple(records[a.app].status() for a in request.apps)
        return DeployResult(request.key, statuses, "recorded " + ", ".join(
            sorted(a.app for a in request.apps)))

    def status(self, environment: Environment) -> tuple[AppStatus, ...]:
        with self._lock:
            records = self._load(environment.metadata.name)
        return tuple(record.status() for record in records.values())

    def teardown(self, environment: Environment) -> None:
        with self._lock:
            self._save(environment.metadata.name, {})

    def _file(self, environment: str) -> Path | None:
        return None if self.data_dir is None else self.data_dir / "noop" / f"{environment}.json"

    def _load(self, environment: str) -> dict[str, _Record]:
        if environment in self._records:
            return self._records[environment]
        path = self._file(environment)
        records: dict[str, _Record] = {}
        if path is not None and path.exists():
            try:
                data: dict[str, Any] = json.loads(path.read_text())
                records = {n: _Record(**r) for n, r in data.get("apps", {}).items()}
            except (OSError, ValueError, TypeError) as exc:
                raise PermanentError(f"noop target: cannot read {path}: {exc}") from exc
        self._records[environment] = records
        return records

    def _save(self, environment: str, records: dict[str, _Record]) -> None:
        self._records[environment] = records
        path = self._file(environment)
        if path is None:
            return
        try:
            _write_atomically(path, {"apps": {n: asdict(r) for n, r in sorted(records.items())}})
        except OSError as exc:
            raise TransientError(f"noop target: cannot write {path}: {exc}") from exc


    def _called(self, environment: str, key: str) -> None:
        path = self._file(environment)
        if path is None:
            return
        try:
            with open(path.with_suffix(".calls"), "a") as calls:
                calls.write(key + "\n")
        except OSError as exc:
            raise TransientError(f"noop target: cannot write {path}: {exc}") from exc


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-")
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
