"""A small Kubernetes API server on loopback, for the targets' tests.

kmock (the Kubernetes API emulator we looked at first) stores objects as plain merged JSON:
it has no resourceVersion, generation or field ownership, answers 404 to an apply of a new
object and ignores label selectors, which are exactly what the targets rely on. So this
fixture is our own: a real HTTP server (so lightkube, its authentication, its watch and
its error handling all run for real), optionally over TLS, that serves Deployments,
Services, Secrets and ConfigMaps, and the two custom resources GitOps agents report
through (Argo CD `Application`, Flux `Kustomization`), with

- server-side apply (`PATCH`, `application/apply-patch+yaml`, `fieldManager` required)
  merged per field manager (see `k8s_fields`): `managedFields` are kept, a label another
  manager added survives our apply, a field another manager owns with a different value
  is a 409 conflict unless `force=true`, and an apply that changes nothing changes
  nothing (same resourceVersion);
- JSON merge patches on objects (an `Update` by their `fieldManager`, which takes over the
  fields it changes) and on `/status`, for tests that edit by hand or play a controller;
- defaulting (see `k8s_defaults`), `metadata.generation` bumped on spec changes, uid,
  creationTimestamp, a resourceVersion counter;
- get, list and watch (`?watch=true`: a chunked stream of ADDED/MODIFIED/DELETED events
  after `resourceVersion`, filtered by `labelSelector` and `fieldSelector=metadata.name=`,
  closed after `timeoutSeconds`), delete;
- bearer-token authentication, namespaces that must exist, Status objects as error bodies;
- a simulated Deployment controller that, `rollout_delay` seconds after a spec change,
  reports the Deployment rolled out (or whatever status `controller` returns);
- `inject(...)` to make the next matching requests fail with a chosen status.

Every object of a built-in kind is validated, as it would be stored, against the official
schemas (kubernetes-validate, strict) when it is written: an invalid one is refused with
422, as a real API server would.
"""

from __future__ import annotations

import copy
import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from k8s_defaults import default
from k8s_fields import (
    MISSING,
    applied_paths,
    assign,
    changed_paths,
    describe,
    lookup,
    remove,
    to_fields_v1,
)
from k8s_server import ApiFailure, Handler, self_signed

SCHEMA_VERSION = "1.30.0"


@dataclass(frozen=True)
class Resource:
    group_path: str
    """`api/v1` or `apis/<group>/<version>`: where the kind is served."""
    api_version: str
    kind: str
    plural: str
    builtin: bool = True
    """Validated against the official schemas (custom resources have none there)."""
    generation: bool = False
    """Whether `metadata.generation` counts spec changes."""


RESOURCES = {r.plural: r for r in (
    Resource("api/v1", "v1", "Service", "services"),
    Resource("api/v1", "v1", "Secret", "secrets"),
    Resource("api/v1", "v1", "ConfigMap", "configmaps"),
    Resource("apis/apps/v1", "apps/v1", "Deployment", "deployments", generation=True),
    Resource("apis/argoproj.io/v1alpha1", "argoproj.io/v1alpha1", "Application",
             "applications", builtin=False, generation=True),
    Resource("apis/kustomize.toolkit.fluxcd.io/v1", "kustomize.toolkit.fluxcd.io/v1",
             "Kustomization", "kustomizations", builtin=False, generation=True),
)}
_ROUTE = re.compile(r"^/(api/v1|apis/[^/]+/[^/]+)/namespaces/([^/]+)/([^/]+)"
                    r"(?:/([^/]+))?(/status)?$")
Controller = Callable[[dict[str, Any]], dict[str, Any]]
Key = tuple[str, str, str]
Owners = dict[tuple[str, str], tuple[list[tuple[str, ...]], str]]
"""(manager, operation) → (the fields it owns, when they last changed)."""


def rolled_out(deployment: dict[str, Any]) -> dict[str, Any]:
    """The status a Deployment controller reports once every replica is available."""
    replicas = deployment["spec"].get("replicas", 1)
    return {"observedGeneration": deployment["metadata"]["generation"], "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas,
            "availableReplicas": replicas, "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}


@dataclass
class Fault:
    method: str
    path_part: str
    code: int
    message: str
    times: int


@dataclass
class Event:
    version: int
    type: str
    key: Key
    object: dict[str, Any]


@dataclass
class KubernetesEmulator:
    namespaces: set[str] = field(default_factory=lambda: {"default"})
    token: str = "emulator-token"
    rollout_delay: float | None = 0.05
    """Seconds until the simulated controller reports a changed Deployment; None: never."""
    controller: Controller = rolled_out
    tls: bool = False
    """Serve HTTPS with a self-signed certificate for 127.0.0.1 (see `ca_pem`)."""
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    """(plural, namespace, name) → the stored object."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    applies: list[dict[str, str]] = field(default_factory=list)
    """Query parameters of every apply request."""
    faults: list[Fault] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    resource_version: int = 100
    ca_pem: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock)
    _owners: dict[Key, Owners] = field(default_factory=dict)
    _changed: threading.Condition | None = None
    _valid: set[str] = field(default_factory=set)
    _stopping: bool = False
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    def start(self) -> KubernetesEmulator:
        self._changed = threading.Condition(self.lock)
        emulator = self

        class Bound(Handler):
            pass

        Bound.emulator = emulator
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Bound)
        self._server.daemon_threads = True
        if self.tls:
            cert, key, self.ca_pem = self_signed("127.0.0.1")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        with self.lock:
            self._stopping = True
            self._notify()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def inject(self, method: str, code: int, message: str, *, path_part: str = "",
               times: int = 1) -> None:
        """Make the next `times` requests of `method` whose path holds `path_part` fail."""
        self.faults.append(Fault(method, path_part, code, message, times))

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return copy.deepcopy(self.objects.get((plural, namespace, name)))

    def write_status(self, plural: str, namespace: str, name: str,
                     status: dict[str, Any]) -> None:
        """Replace an object's status, as its controller does (a MODIFIED event)."""
        with self.lock:
            stored = copy.deepcopy(self._existing((plural, namespace, name)))
            stored["status"] = copy.deepcopy(status)
            self._commit((plural, namespace, name), stored)

    def create(self, obj: dict[str, Any]) -> None:
        """Store `obj` as someone else (e.g. the team that installed Argo CD) created it."""
        metadata = obj["metadata"]
        plural = next(r.plural for r in RESOURCES.values() if r.kind == obj["kind"])
        key = (plural, metadata.get("namespace", "default"), metadata["name"])
        with self.lock:
            self._apply(key, RESOURCES[plural], {"fieldManager": "kubectl-create"},
                        json.dumps(obj).encode())

    # The API, called by the handler.

    def handle(self, method: str, path: str, query: dict[str, str], content_type: str,
               body: bytes, authorization: str, agent: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append((method, path))
            self._check(method, path, authorization)
            key, resource, status = self._route(path)
            if key[2] == "" and method == "GET":
                return 200, self._list(resource, key[1], query)
            if method == "GET":
                return 200, copy.deepcopy(self._existing(key))
            if method == "DELETE":
                self._existing(key)
                self._delete(key)
                return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
            if method == "PATCH" and content_type.startswith("application/apply-patch+yaml"):
                self.applies.append(query)
                return 200, self._apply(key, resource, query, body)
            if method == "PATCH" and content_type.startswith("application/merge-patch+json"):
                manager = query.get("fieldManager") or agent.split("/")[0] or "unknown"
                return 200, self._merge(key, resource, json.loads(body), status, manager)
            raise ApiFailure(415, "UnsupportedMediaType", f"{method} {content_type} not supported")

    def watch(self, path: str, query: dict[str, str],
              authorization: str) -> Iterator[dict[str, Any]]:
        """The events of a watch request, as they happen, until its timeout; a refused
        watch raises at once, before the stream starts."""
        with self.lock:
            self.requests.append(("WATCH", path))
            self._check("GET", path, authorization)
            (_, namespace, _), resource, _ = self._route(path)
            matches = _selector(query)
            seen = int(query.get("resourceVersion") or 0)
            initial: list[dict[str, Any]] = []
            if seen == 0:  # no version: the current state first, as ADDED events
                seen = self.resource_version
                initial = [{"type": "ADDED", "object": copy.deepcopy(obj)}
                           for (plural, ns, _), obj in sorted(self.objects.items())
                           if plural == resource.plural and ns == namespace and matches(obj)]
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 300)
        return self._events(resource.plural, namespace, matches, seen, initial, deadline)

    def _events(self, plural: str, namespace: str, matches: Callable[[dict[str, Any]], bool],
                seen: int, pending: list[dict[str, Any]],
                deadline: float) -> Iterator[dict[str, Any]]:
        assert self._changed is not None
        while True:
            yield from pending
            with self.lock:
                pending = []
                while not pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._stopping:
                        return
                    fresh = [e for e in self.events if e.version > seen]
                    if fresh:
                        seen = fresh[-1].version
                        pending = [{"type": e.type, "object": copy.deepcopy(e.object)}
                                   for e in fresh if e.key[0] == plural
                                   and e.key[1] == namespace and matches(e.object)]
                        continue
                    self._changed.wait(min(remaining, 0.5))

    def _check(self, method: str, path: str, authorization: str) -> None:
        for fault in self.faults:
            if fault.method == method and fault.path_part in path and fault.times > 0:
                fault.times -= 1
                raise ApiFailure(fault.code, "Injected", fault.message)
        if authorization != f"Bearer {self.token}":
            raise ApiFailure(401, "Unauthorized", "Unauthorized")

    def _route(self, path: str) -> tuple[Key, Resource, bool]:
        match = _ROUTE.match(path)
        resource = RESOURCES.get(match.group(3)) if match else None
        if match is None or resource is None or resource.group_path != match.group(1):
            raise ApiFailure(404, "NotFound", f"the server could not find {path}")
        _, namespace, plural, name, status = match.groups()
        if namespace not in self.namespaces:
            raise ApiFailure(404, "NotFound", f'namespaces "{namespace}" not found')
        return (plural, namespace, name or ""), resource, status is not None

    def _list(self, resource: Resource, namespace: str, query: dict[str, str]) -> dict[str, Any]:
        matches = _selector(query)
        items = [copy.deepcopy(obj) for (plural, ns, _), obj in sorted(self.objects.items())
                 if plural == resource.plural and ns == namespace and matches(obj)]
        return {"apiVersion": resource.api_version, "kind": f"{resource.kind}List",
                "items": items, "metadata": {"resourceVersion": str(self.resource_version)}}

    def _existing(self, key: Key) -> dict[str, Any]:
        if key not in self.objects:
            raise ApiFailure(404, "NotFound", f'{key[0]} "{key[2]}" not found')
        return self.objects[key]

    def _apply(self, key: Key, resource: Resource, query: dict[str, str],
               body: bytes) -> dict[str, Any]:
        manager = query.get("fieldManager")
        if not manager:
            raise ApiFailure(400, "BadRequest", "fieldManager: Required value: is required "
                             "for apply patch")
        applied = yaml.safe_load(body)
        metadata = applied.get("metadata") or {}
        if (applied.get("apiVersion"), applied.get("kind")) != (
                resource.api_version, resource.kind) or metadata.get("name") != key[2]:
            raise ApiFailure(400, "BadRequest", "the applied object does not match the URL")
        stored = self.objects.get(key)
        result = copy.deepcopy(stored) if stored is not None else {
            "apiVersion": resource.api_version, "kind": resource.kind,
            "metadata": {"name": key[2], "namespace": key[1]}}
        owners = copy.deepcopy(self._owners.get(key, {}))
        wanted = applied_paths(applied)
        conflicts = [(other, path) for other, (paths, _) in owners.items()
                     if other != (manager, "Apply") for path in wanted
                     if path in paths and not path[-1].startswith("k:")
                     and lookup(result, path) != lookup(applied, path)]
        if conflicts and query.get("force") != "true":
            named = "; ".join(f'conflict with "{m}": {describe(p)}' for (m, _), p in conflicts)
            raise ApiFailure(409, "Conflict", f"Apply failed with {len(conflicts)} "
                             f"conflict{'s' if len(conflicts) > 1 else ''}: {named}")
        for other, path in conflicts:
            owners[other] = ([p for p in owners[other][0] if p != path], _now())
        previous = owners.get((manager, "Apply"), ([], ""))[0]
        kept = {p for other, (paths, _) in owners.items() if other != (manager, "Apply")
                for p in paths}
        for path in sorted(set(previous) - set(wanted), key=len, reverse=True):
            if path not in kept:
                remove(result, path)
        for path in wanted:
            value = lookup(applied, path)
            if value != {} or not isinstance(lookup(result, path), dict):  # {} merges
                assign(result, path, value)
        if previous != wanted:
            owners[(manager, "Apply")] = (wanted, _now())
        return self._write(key, resource, stored, result, owners)

    def _merge(self, key: Key, resource: Resource, patch: dict[str, Any], status: bool,
               manager: str) -> dict[str, Any]:
        stored = self._existing(key)
        if status:
            result = copy.deepcopy(stored)
            result["status"] = _merge_patch(stored.get("status", {}), patch.get("status", {}))
            return self._commit(key, result)
        patch.pop("status", None)
        result = _merge_patch(stored, patch)
        taken = set(changed_paths(stored, result))
        gone = {p for p in applied_paths(stored) if lookup(result, p) is MISSING}
        owners = {other: ([p for p in paths if p not in taken | gone], when)
                  for other, (paths, when) in self._owners.get(key, {}).items()}
        mine = owners.get((manager, "Update"), ([], ""))[0]
        owners[(manager, "Update")] = (mine + [p for p in taken if p not in mine], _now())
        return self._write(key, resource, stored, result, owners)

    def _write(self, key: Key, resource: Resource, stored: dict[str, Any] | None,
               result: dict[str, Any], owners: Owners) -> dict[str, Any]:
        """Store `result` (defaulted, with its managedFields), or nothing if nothing changed."""
        owners = {o: v for o, v in owners.items() if v[0]}
        default(resource.kind, result, f"10.96.0.{len(self.objects) % 250 + 10}")
        result["metadata"]["managedFields"] = [
            {"manager": manager, "operation": operation, "apiVersion": resource.api_version,
             "time": when, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)}
            for (manager, operation), (paths, when) in owners.items()]
        if stored is not None and _same(stored, result):
            return copy.deepcopy(stored)
        metadata = result["metadata"]
        if stored is None:
            metadata.update(uid=f"uid-{self.resource_version + 1}", creationTimestamp=_now())
        if resource.generation and (stored is None or stored.get("spec") != result.get("spec")):
            metadata["generation"] = int((stored or {}).get("metadata", {}).get(
                "generation", 0)) + 1
        if resource.builtin:
            self._validate(result, resource.kind, key[2])
        self._owners[key] = owners
        stored_object = self._commit(key, result)
        if resource.plural == "deployments" and self.rollout_delay is not None and (
                stored is None or stored.get("spec") != result.get("spec")):
            timer = threading.Timer(self.rollout_delay, self._roll_out,
                                    (key, metadata["generation"]))
            timer.daemon = True
            timer.start()
        return stored_object

    def _commit(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        event = "MODIFIED" if key in self.objects else "ADDED"
        obj["metadata"]["resourceVersion"] = self._bump()
        self.objects[key] = obj
        self.events.append(Event(self.resource_version, event, key, copy.deepcopy(obj)))
        self._notify()
        return copy.deepcopy(obj)

    def _delete(self, key: Key) -> None:
        obj = self.objects.pop(key)
        self._owners.pop(key, None)
        obj["metadata"]["resourceVersion"] = self._bump()
        self.events.append(Event(self.resource_version, "DELETED", key, obj))
        self._notify()

    def _validate(self, obj: dict[str, Any], kind: str, name: str) -> None:
        text = json.dumps(obj, sort_keys=True)
        if text in self._valid:
            return
        try:
            kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise ApiFailure(422, "Invalid", f'{kind} "{name}" is invalid: {exc.message}'
                             ) from exc
        self._valid.add(text)

    def roll_out_deployments(self) -> None:
        """Let the controller report every Deployment's current generation now (for a test
        that holds rollouts with `rollout_delay = None`)."""
        with self.lock:
            found = [(key, obj["metadata"]["generation"]) for key, obj in self.objects.items()
                     if key[0] == "deployments"]
        for key, generation in found:
            self._roll_out(key, generation)

    def _roll_out(self, key: Key, generation: int) -> None:
        with self.lock:
            stored = self.objects.get(key)
            if stored is None or stored["metadata"]["generation"] != generation:
                return
            updated = copy.deepcopy(stored)
            updated["status"] = self.controller(copy.deepcopy(stored))
            self._commit(key, updated)

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.notify_all()

    def _bump(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _same(stored: dict[str, Any], result: dict[str, Any]) -> bool:
    """Equal but for the bookkeeping a no-op write must not change."""
    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        copied = copy.deepcopy(obj)
        copied["metadata"].pop("resourceVersion", None)
        return copied
    return strip(stored) == strip(result)


def _selector(query: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    labels = dict(t.split("=", 1) for t in query.get("labelSelector", "").split(",") if t)
    fields = dict(t.split("=", 1) for t in query.get("fieldSelector", "").split(",") if t)
    name = fields.get("metadata.name")

    def matches(obj: dict[str, Any]) -> bool:
        metadata = obj.get("metadata") or {}
        return (name is None or metadata.get("name") == name) and all(
            (metadata.get("labels") or {}).get(k) == v for k, v in labels.items())
    return matches


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = _merge_patch(result.get(name), value)
    return result


def write_ca(emulator: KubernetesEmulator, path: Path) -> Path:
    """The emulator's CA certificate as a file (for kubeconfigs and service accounts)."""
    path.write_text(emulator.ca_pem)
    return path


def write_kubeconfig(path: Path, server: str, user: dict[str, object],
                     context: str = "emulator", ca: Path | None = None) -> Path:
    """A kubeconfig whose context `context` reaches `server` as `user`."""
    cluster: dict[str, object] = {"server": server}
    if ca is not None:
        cluster["certificate-authority"] = str(ca)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "emulated", "cluster": cluster}],
        "users": [{"name": "deployer", "user": user}],
        "contexts": [{"name": context, "context": {"cluster": "emulated",
                                                   "user": "deployer"}}]}))
    return path
