"""The `local` target: every application of a release as a supervised process on this machine.

It is the embedded default, so a fresh install can carry a release from development to
production without a cluster. Each application's `run` command is started with a free port
in `$PORT`, its log goes to `<data dir>/local/<environment>/<app>.log` and its process is
recorded in `state.json` beside it (see `local_state`). A deployment swaps all applications
or none: the new processes are started next to the old ones, and the old ones are stopped
only once every new one is healthy; if any new one fails, the new ones are stopped and the
old ones keep serving. Processes run in their own session, so they survive a crash of the
server, and a new server adopts them from the state file. `supervise` (called by the
engine's health pass) restarts those that died, with backoff, reading secret values again
from the store through a callback: nothing here keeps them in memory. Secret values
reach the child's environment only: never the state file, never a log line written here,
never an error message (they are redacted as `***`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from infrastream.domain.errors import BackendError, PermanentError, TransientError
from infrastream.launch import base_environment, injected_variables, redact
from infrastream.manifests import Environment, parse_duration

from . import local_process as proc
from .base import AppDeployment, AppStatus, DeployRequest, DeployResult, Health, Restart
from .local_state import EnvironmentState, Pending, ProcessRecord, StateDirectory

BACKOFF_RESET = 300.0
"""A restart more than this many seconds after the previous one starts the backoff over."""
MAX_BACKOFF = 60.0


@dataclass(frozen=True)
class _Launch:
    """Everything needed to start one application process and judge its health."""

    record: ProcessRecord
    """What will be recorded; `pid`, `proc_start` and `started_at` are filled in at start."""
    child_env: dict[str, str]
    secrets: tuple[str, ...]
    log: Path


@dataclass(frozen=True)
class _Started:
    launch: _Launch
    record: ProcessRecord
    log_offset: int

    @property
    def health_url(self) -> str | None:
        path = self.record.health_path
        return None if path is None else f"{self.record.endpoint}/{path.lstrip('/')}"


class LocalTarget:
    """Runs applications as processes on this machine; one instance serves every environment."""

    type_name = "local"

    def __init__(self, data_dir: Path, *, base_env: Mapping[str, str] | None = None,
                 settle_seconds: float = 1.0, stop_grace: float = 5.0,
                 probe_timeout: float = 2.0, restart_backoff: float = 1.0) -> None:
        self.data_dir = data_dir
        self._base_env = base_env
        self._settle = settle_seconds
        self._grace = stop_grace
        self._probe_timeout = probe_timeout
        self._backoff = restart_backoff
        self._due: dict[tuple[str, str], float] = {}
        """(environment, app) → when its dead process is restarted (monotonic seconds)."""
        self._last_restart: dict[tuple[str, str], tuple[float, int]] = {}
        """(environment, app) → (when last restarted, restarts in a row): the backoff."""

    def deploy(self, request: DeployRequest) -> DeployResult:
        missing = [a.app for a in request.apps if a.spec.run is None]
        if missing:
            raise PermanentError(f"{', '.join(missing)}: no `run` command; the local target "
                                 "needs one to start the application")
        name = request.environment.metadata.name
        directory = self._directory(name)
        with _backend_errors(), directory.locked():
            state = self._stop_orphans(directory, directory.load())
            current = {a.app: self._status(state.apps.get(a.app), a.app) for a in request.apps}
            keep = {a.app for a in request.apps if current[a.app].deploy_key == request.key
                    and current[a.app].health is Health.HEALTHY}
            requested = {a.app for a in request.apps}
            pruned = [r for n, r in state.apps.items() if request.prune and n not in requested]
            if len(keep) == len(request.apps) and not pruned:
                return DeployResult(request.key, tuple(current.values()), "already deployed")
            todo = [a for a in request.apps if a.app not in keep]
            ports = proc.free_ports(len(todo))
            launches = [self._plan(request, a, p) for a, p in zip(todo, ports, strict=True)]
            started = self._start_all(directory, state, launches)
            try:
                failures = [f for f in proc.parallel(self._await, started) if f]
            except BaseException:
                self._abandon(directory, state, started)
                raise
            if failures:
                self._abandon(directory, state, started)
                raise PermanentError("; ".join(failures), environment=name)
            self._stop_all([state.apps[a.app] for a in todo if a.app in state.apps] + pruned)
            apps = {n: r for n, r in state.apps.items() if n in requested or not request.prune}
            apps.update({s.record.app: s.record for s in started})
            directory.save(EnvironmentState(apps))
        fresh = {s.record.app: _healthy(s.record, "started") for s in started}
        statuses = tuple(fresh.get(a.app, current[a.app]) for a in request.apps)
        return DeployResult(request.key, statuses, "started " + ", ".join(sorted(fresh)))

    def status(self, environment: Environment) -> tuple[AppStatus, ...]:
        with _backend_errors():
            state = self._directory(environment.metadata.name).load()
            return tuple(proc.parallel(lambda r: self._status(r, r.app), list(state.apps.values())))

    def teardown(self, environment: Environment) -> None:
        name = environment.metadata.name
        directory = self._directory(name)
        with _backend_errors(), directory.locked():
            state = directory.load()
            self._stop_all([*state.apps.values(), *state.pending])
            directory.clear()
        for key in [k for k in self._due if k[0] == name]:
            del self._due[key]

    def supervise(self, environment: Environment,
                  secrets: Callable[[str], Mapping[str, str]]) -> tuple[Restart, ...]:
        """Restart the applications whose process died, with backoff per application.

        A dead process is restarted once its backoff has run out (`backoff` seconds after it
        was first seen dead, doubling with every restart within `BACKOFF_RESET` seconds of the
        previous one, up to `MAX_BACKOFF`). Secret values are read again through `secrets(app)`
        (from the store) at each restart: nothing keeps them in memory between restarts. An
        environment that is being deployed right now is skipped.
        """
        name = environment.metadata.name
        directory = self._directory(name)
        restarts: list[Restart] = []
        now = time.monotonic()
        with _backend_errors(), directory.locked(wait=False) as acquired:
            if not acquired:
                return ()
            state = self._stop_orphans(directory, directory.load())
            for record in list(state.apps.values()):
                key = (name, record.app)
                if proc.is_alive(record.pid, record.proc_start):
                    continue
                due = self._due.setdefault(key, now + self._backoff_for(key, now))
                if now < due:
                    continue
                restarted, status = self._restart(name, directory, record, secrets)
                del self._due[key]
                self._last_restart[key] = (now, self._last_restart.get(key, (0.0, 0))[1] + 1)
                restarts.append(Restart(record.app, record.pid, status, restarted is not None,
                                        restarted.restarts if restarted else record.restarts))
                if restarted is not None:
                    state = EnvironmentState({**state.apps, record.app: restarted})
                    directory.save(state)
        return tuple(restarts)

    def _backoff_for(self, key: tuple[str, str], now: float) -> float:
        last, streak = self._last_restart.get(key, (0.0, 0))
        if now - last > BACKOFF_RESET:
            self._last_restart[key] = (last, 0)
            streak = 0
        return float(min(self._backoff * (2 ** streak), MAX_BACKOFF))

    def log_file(self, environment: str, app: str) -> Path:
        """Where the output of `app` in `environment` is appended."""
        return self._directory(environment).log_file(app)

    def _directory(self, environment: str) -> StateDirectory:
        return StateDirectory(self.data_dir, environment)

    def _plan(self, request: DeployRequest, app: AppDeployment, port: int) -> _Launch:
        run = app.spec.run
        assert run is not None  # checked by deploy
        cwd = request.workdir / (run.working_dir or "")
        app_env, secret_names = _variables(app)
        check = app.spec.health_check
        record = ProcessRecord(
            app=app.app, pid=0, proc_start=None, port=port, version=app.version,
            image=app.image, release=request.release, deploy_key=request.key,
            started_at="", command=tuple(run.command), cwd=str(cwd),
            env={k: v for k, v in app_env.items() if k not in secret_names},
            secret_names=tuple(sorted(secret_names)),
            health_path=check.path if check else None,
            health_timeout=float(parse_duration(check.timeout)) if check else self._settle,
        )
        env_name = request.environment.metadata.name
        secrets = tuple(app_env[n] for n in secret_names if n in app_env)
        return _Launch(record, self._child_env(env_name, record, app_env), secrets,
                       self._directory(env_name).log_file(app.app))

    def _child_env(self, environment: str, record: ProcessRecord,
                   app_env: Mapping[str, str]) -> dict[str, str]:
        env = base_environment(self._base_env)
        env.update(app_env)
        env.update(PORT=str(record.port), **injected_variables(
            record.app, record.version, record.release, environment))
        env[proc.OWNER_VARIABLE] = str(self._directory(environment).path)
        return env

    def _start_all(self, directory: StateDirectory, state: EnvironmentState,
                   launches: list[_Launch]) -> list[_Started]:
        """Start every launch, recorded as pending so that a crash leaves no stray process."""
        started: list[_Started] = []
        try:
            for launch in launches:
                started.append(self._spawn(launch))
        except BaseException:
            self._stop_all([s.record for s in started])
            raise
        pending = tuple(Pending(s.record.app, s.record.pid, s.record.proc_start) for s in started)
        try:
            directory.save(EnvironmentState(state.apps, pending))
        except BaseException:
            self._stop_all([s.record for s in started])
            raise
        return started

    def _abandon(self, directory: StateDirectory, state: EnvironmentState,
                 started: list[_Started]) -> None:
        """Stop what a failed deployment started; what ran before keeps running."""
        self._stop_all([s.record for s in started])
        directory.save(EnvironmentState(state.apps))

    def _spawn(self, launch: _Launch) -> _Started:
        record = launch.record
        if not Path(record.cwd).is_dir():
            raise PermanentError(f"{record.app}: working directory {record.cwd} does not exist")
        header = redact(
            f"--- {_now()} infrastream starts {record.app} {record.version} "
            f"(release {record.release}, key {record.deploy_key}) on port {record.port}: "
            + " ".join(record.command), launch.secrets)
        try:
            spawned = proc.spawn(record.command, Path(record.cwd), launch.child_env, launch.log,
                                 header)
        except OSError as exc:
            raise PermanentError(f"{record.app}: cannot start `{record.command[0]}`: "
                                 f"{exc.strerror or exc}") from None
        running = replace(record, pid=spawned.pid, proc_start=spawned.proc_start,
                          started_at=_now())
        return _Started(launch, running, spawned.log_offset)

    def _await(self, started: _Started) -> str | None:
        """None when the started process became healthy, else why not, with its log tail."""
        record = started.record
        problem = proc.wait_healthy(record.pid, started.health_url,
                                    timeout=record.health_timeout, settle=self._settle)
        if problem is None:
            return None
        tail = proc.log_tail(started.launch.log, started.log_offset, lines=10)
        message = f"{record.app}: {problem}: {tail or '(no output)'}"
        return redact(message, started.launch.secrets)

    def _restart(self, environment: str, directory: StateDirectory, record: ProcessRecord,
                 secrets: Callable[[str], Mapping[str, str]]
                 ) -> tuple[ProcessRecord | None, AppStatus]:
        app_env = dict(record.env)
        if record.secret_names:
            values = secrets(record.app)
            missing = [n for n in record.secret_names if n not in values]
            if missing:
                return None, _status(record, Health.MISSING, "restart failed: secret "
                                     + ", ".join(missing) + " is not set")
            app_env.update({n: values[n] for n in record.secret_names})
        port = record.port if proc.port_is_free(record.port) else proc.free_ports(1)[0]
        template = replace(record, port=port)
        launch = _Launch(template, self._child_env(environment, template, app_env),
                         tuple(app_env[n] for n in record.secret_names),
                         directory.log_file(record.app))
        try:
            started = self._spawn(launch)
        except PermanentError as exc:
            return None, _status(record, Health.MISSING, f"restart failed: {exc.reason}")
        problem = self._await(started)
        if problem is not None:
            self._stop_all([started.record])
            return None, _status(record, Health.MISSING, f"restart failed: {problem}")
        restarted = replace(started.record, restarts=record.restarts + 1)
        return restarted, _healthy(restarted, f"restarted (was pid {record.pid})")

    def _stop_orphans(self, directory: StateDirectory,
                      state: EnvironmentState) -> EnvironmentState:
        """Stop processes an interrupted deployment left behind: those recorded as pending,
        and those it started but had no time to record (found by their owner marker)."""
        known = {r.pid for r in state.apps.values()}
        unrecorded = [Pending("?", pid, start) for pid, start in
                      proc.owned_processes(str(directory.path)) if pid not in known]
        strays = [*state.pending, *(p for p in unrecorded
                                    if p.pid not in {q.pid for q in state.pending})]
        if not strays:
            return state
        self._stop_all(strays)
        cleaned = EnvironmentState(state.apps)
        directory.save(cleaned)
        return cleaned

    def _stop_all(self, processes: Sequence[ProcessRecord | Pending]) -> None:
        proc.parallel(lambda p: proc.stop(p.pid, p.proc_start, grace=self._grace), processes)

    def _status(self, record: ProcessRecord | None, app: str) -> AppStatus:
        if record is None:
            return AppStatus(app, "", "", Health.MISSING, detail="not deployed")
        if not proc.is_alive(record.pid, record.proc_start):
            return _status(record, Health.MISSING, f"process {record.pid} is not running")
        if record.health_path is None:
            return _healthy(record, f"pid {record.pid}")
        url = f"{record.endpoint}/{record.health_path.lstrip('/')}"
        if proc.probe(url, timeout=self._probe_timeout):
            return _healthy(record, f"pid {record.pid}")
        return _status(record, Health.DEGRADED, f"pid {record.pid} runs; GET {url} fails")


def _status(record: ProcessRecord, health: Health, detail: str) -> AppStatus:
    return AppStatus(app=record.app, version=record.version, image=record.image, health=health,
                     endpoint=record.endpoint, release=record.release,
                     deploy_key=record.deploy_key, detail=detail, restarts=record.restarts)


def _healthy(record: ProcessRecord, detail: str) -> AppStatus:
    return _status(record, Health.HEALTHY, detail)


def _variables(app: AppDeployment) -> tuple[dict[str, str], set[str]]:
    """The app's variables (spec values overridden by the resolved ones) and its secret names."""
    secret_names = set(app.secret_names) | {e.name for e in app.spec.env if e.secret}
    values = {e.name: e.value for e in app.spec.env if e.value is not None and not e.secret}
    values.update(app.env)
    return values, secret_names


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def _backend_errors() -> Iterator[None]:
    """Let only TransientError and PermanentError escape."""
    try:
        yield
    except BackendError:
        raise
    except json.JSONDecodeError as exc:
        raise PermanentError(f"local target: the state file is corrupt: {exc}") from exc
    except OSError as exc:
        raise TransientError(f"local target: {exc}") from exc
