"""A small Kubernetes API server on loopback, for the kubernetes target's tests.

kmock (the Kubernetes API emulator we looked at first) stores objects as plain merged JSON:
it has no resourceVersion or generation, answers 404 to an apply of a new object and
ignores label selectors, which are exactly what the target relies on. So this fixture is
our own, and as small as it can be: a real HTTP server (so the target's httpx client, its
headers and its error handling all run for real) that serves apps/v1 Deployments and v1
Services with

- server-side apply (`PATCH`, `application/apply-patch+yaml`, `fieldManager` required) that
  creates or replaces what the manager applied, and changes nothing (same resourceVersion)
  when the applied object is what is stored;
- JSON merge patches (`application/merge-patch+json`) on objects and on `/status`, for
  tests that edit an object by hand or play the Deployment controller;
- get, list with `labelSelector` (equality terms), delete;
- a resourceVersion counter, `metadata.generation` bumped on spec changes, bearer-token
  authentication, namespaces that must exist, and Status objects as error bodies;
- a simulated controller that, `rollout_delay` seconds after a spec change, reports the
  Deployment rolled out (or whatever status `controller` returns);
- `inject(...)` to make the next matching requests fail with a chosen status.

Every applied object is also validated against the official schemas (kubernetes-validate,
strict): an invalid one is refused with 422, as a real API server would.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import yaml

SCHEMA_VERSION = "1.30.0"
RESOURCES = {("apis/apps/v1", "deployments"): ("apps/v1", "Deployment"),
             ("api/v1", "services"): ("v1", "Service")}
_ROUTE = re.compile(r"^/(api/v1|apis/apps/v1)/namespaces/([^/]+)/(deployments|services)"
                    r"(?:/([^/]+))?(/status)?$")
Controller = Callable[[dict[str, Any]], dict[str, Any]]


def rolled_out(deployment: dict[str, Any]) -> dict[str, Any]:
    """The status a Deployment controller reports once every replica is available."""
    replicas = deployment["spec"].get("replicas", 1)
    return {"observedGeneration": deployment["metadata"]["generation"], "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas,
            "availableReplicas": replicas, "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}


class ApiFailure(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


@dataclass
class Fault:
    method: str
    path_part: str
    code: int
    message: str
    times: int


@dataclass
class KubernetesEmulator:
    namespaces: set[str] = field(default_factory=lambda: {"default"})
    token: str = "emulator-token"
    rollout_delay: float | None = 0.05
    """Seconds until the simulated controller reports a changed Deployment; None: never."""
    controller: Controller = rolled_out
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    """(plural, namespace, name) → the stored object."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    applies: list[dict[str, str]] = field(default_factory=list)
    """Query parameters of every apply request."""
    faults: list[Fault] = field(default_factory=list)
    resource_version: int = 100
    valid: set[str] = field(default_factory=set)
    """Applied objects already validated (schema validation is the slow part)."""
    lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> KubernetesEmulator:
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def inject(self, method: str, code: int, message: str, *, path_part: str = "",
               times: int = 1) -> None:
        """Make the next `times` requests of `method` whose path holds `path_part` fail."""
        self.faults.append(Fault(method, path_part, code, message, times))

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.objects.get((plural, namespace, name))
            return copy.deepcopy(found)

    # The API, called by the handler under `lock`.

    def handle(self, method: str, path: str, query: dict[str, str], content_type: str,
               body: bytes, authorization: str) -> tuple[int, dict[str, Any]]:
        self.requests.append((method, path))
        for fault in self.faults:
            if fault.method == method and fault.path_part in path and fault.times > 0:
                fault.times -= 1
                raise ApiFailure(fault.code, "Injected", fault.message)
        if authorization != f"Bearer {self.token}":
            raise ApiFailure(401, "Unauthorized", "Unauthorized")
        match = _ROUTE.match(path)
        if match is None:
            raise ApiFailure(404, "NotFound", f"the server could not find {path}")
        group, namespace, plural, name, status = match.groups()
        if namespace not in self.namespaces:
            raise ApiFailure(404, "NotFound", f'namespaces "{namespace}" not found')
        api_version, kind = RESOURCES[(group, plural)]
        if name is None and method == "GET":
            return 200, self._list(plural, namespace, api_version, kind,
                                   query.get("labelSelector", ""))
        key = (plural, namespace, name)
        if method == "GET":
            return 200, self._existing(key, plural)
        if method == "DELETE":
            self._existing(key, plural)
            del self.objects[key]
            self._bump()
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        if method == "PATCH" and content_type.startswith("application/apply-patch+yaml"):
            self.applies.append(query)
            return 200, self._apply(key, api_version, kind, query, body)
        if method == "PATCH" and content_type.startswith("application/merge-patch+json"):
            return 200, self._merge(key, plural, json.loads(body), status is not None)
        raise ApiFailure(415, "UnsupportedMediaType", f"{method} {content_type} not supported")

    def _list(self, plural: str, namespace: str, api_version: str, kind: str,
              selector: str) -> dict[str, Any]:
        terms = dict(term.split("=", 1) for term in selector.split(",") if term)
        items = [copy.deepcopy(obj) for (p, ns, _), obj in sorted(self.objects.items())
                 if p == plural and ns == namespace and all(
                     obj["metadata"].get("labels", {}).get(k) == v for k, v in terms.items())]
        return {"apiVersion": api_version, "kind": f"{kind}List", "items": items,
                "metadata": {"resourceVersion": str(self.resource_version)}}

    def _existing(self, key: tuple[str, str, str], plural: str) -> dict[str, Any]:
        if key not in self.objects:
            raise ApiFailure(404, "NotFound", f'{plural} "{key[2]}" not found')
        return copy.deepcopy(self.objects[key])

    def _apply(self, key: tuple[str, str, str], api_version: str, kind: str,
               query: dict[str, str], body: bytes) -> dict[str, Any]:
        if not query.get("fieldManager"):
            raise ApiFailure(400, "BadRequest", "fieldManager: Required value: is required "
                             "for apply patch")
        applied = yaml.safe_load(body)
        metadata = applied.get("metadata") or {}
        if (applied.get("apiVersion"), applied.get("kind")) != (api_version, kind) or (
                metadata.get("name") != key[2]):
            raise ApiFailure(400, "BadRequest", "the applied object does not match the URL")
        self._validate(applied, kind, key[2])
        applied.pop("status", None)
        stored = self.objects.get(key)
        if stored is None:
            stored = {"apiVersion": api_version, "kind": kind, "spec": {}, "metadata": {
                "uid": f"uid-{self.resource_version}", "generation": 0}}
        before = copy.deepcopy(stored)
        stored["metadata"].update(name=key[2], namespace=key[1],
                                  labels=metadata.get("labels", {}),
                                  annotations=metadata.get("annotations", {}))
        stored["spec"] = applied.get("spec", {})
        return self._store(key, before, stored)

    def _validate(self, applied: dict[str, Any], kind: str, name: str) -> None:
        text = json.dumps(applied, sort_keys=True)
        if text in self.valid:
            return
        try:
            kubernetes_validate.validate(applied, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise ApiFailure(422, "Invalid", f'{kind} "{name}" is invalid: {exc.message}'
                             ) from exc
        self.valid.add(text)

    def _merge(self, key: tuple[str, str, str], plural: str, patch: dict[str, Any],
               status: bool) -> dict[str, Any]:
        stored = self._existing(key, plural)
        before = copy.deepcopy(stored)
        if status:
            stored["status"] = _merge_patch(stored.get("status", {}), patch.get("status", {}))
        else:
            patch.pop("status", None)
            stored = _merge_patch(stored, patch)
        return self._store(key, before, stored)

    def _store(self, key: tuple[str, str, str], before: dict[str, Any],
               stored: dict[str, Any]) -> dict[str, Any]:
        if stored == before and key in self.objects:
            return copy.deepcopy(stored)
        if stored.get("spec") != before.get("spec") or key not in self.objects:
            stored["metadata"]["generation"] = before["metadata"].get("generation", 0) + 1
            if key[0] == "deployments" and self.rollout_delay is not None:
                timer = threading.Timer(self.rollout_delay, self._roll_out,
                                        (key, stored["metadata"]["generation"]))
                timer.daemon = True
                timer.start()
        stored["metadata"]["resourceVersion"] = self._bump()
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def _roll_out(self, key: tuple[str, str, str], generation: int) -> None:
        with self.lock:
            stored = self.objects.get(key)
            if stored is None or stored["metadata"]["generation"] != generation:
                return
            stored["status"] = self.controller(copy.deepcopy(stored))
            stored["metadata"]["resourceVersion"] = self._bump()

    def _bump(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)


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


class _Handler(BaseHTTPRequestHandler):
    emulator: KubernetesEmulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms delayed ACK

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            with self.emulator.lock:
                code, payload = self.emulator.handle(
                    self.command, url.path, query, self.headers.get("Content-Type", ""), body,
                    self.headers.get("Authorization", ""))
        except ApiFailure as failure:
            code, payload = failure.code, {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": failure.message, "reason": failure.reason, "code": failure.code}
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_DELETE = _serve
