"""Just enough of the Kubernetes API for the `kubernetes` target, over httpx.

Four verbs on two kinds (apps/v1 Deployments, v1 Services): get, server-side apply, list by
labels, delete. Every failure leaves this module as the engine's kind of error: a timeout, a
refused connection, 409 Conflict, 429 and 5xx are `TransientError` (retry later); a refused
login, a forbidden verb, a rejected object (400/401/403/404/422) is `PermanentError` with the
API server's own message, which says what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from infrastream.domain.errors import BackendError, PermanentError, TransientError

from .kubeconfig import ClusterConfig

FIELD_MANAGER = "infrastream"
APPLY = "application/apply-patch+yaml"
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Service": ("/api/v1", "services"),
}


class KubeApi:
    """A connection to one API server; use as a context manager."""

    def __init__(self, config: ClusterConfig, *, timeout: float = 10.0) -> None:
        headers = {"Accept": "application/json", "User-Agent": "infrastream"}
        token = config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.server = config.server
        self._client = httpx.Client(base_url=config.server, headers=headers, timeout=timeout,
                                    verify=config.verify())

    def __enter__(self) -> KubeApi:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        response = self._send("GET", _path(kind, namespace, name))
        return None if response.status_code == 404 else _body(response, f"get {kind} {name}")

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply `obj` as our field manager, taking over conflicting fields."""
        kind, metadata = str(obj["kind"]), obj["metadata"]
        name, namespace = metadata["name"], metadata["namespace"]
        response = self._send("PATCH", _path(kind, namespace, name),
                              params={"fieldManager": FIELD_MANAGER, "force": "true"},
                              content=json.dumps(obj, sort_keys=True).encode(),
                              headers={"Content-Type": APPLY})
        return _body(response, f"apply {kind} {namespace}/{name}")

    def list(self, kind: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        response = self._send("GET", _path(kind, namespace), params={"labelSelector": selector})
        items: list[dict[str, Any]] = _body(response, f"list {kind}").get("items") or []
        return items

    def delete(self, kind: str, namespace: str, name: str) -> None:
        response = self._send("DELETE", _path(kind, namespace, name),
                              params={"propagationPolicy": "Background"})
        if response.status_code != 404:
            _body(response, f"delete {kind} {namespace}/{name}")

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{self.server}: {method} {path} timed out") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{self.server}: {method} {path}: {exc}") from exc


def _path(kind: str, namespace: str, name: str | None = None) -> str:
    prefix, plural = KINDS[kind]
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return path if name is None else f"{path}/{name}"


def _body(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.is_success:
        data: dict[str, Any] = response.json()
        return data
    raise api_error(response, what)


def api_error(response: httpx.Response, what: str) -> BackendError:
    """The error a failed API call means: the API's message, sorted by what to do next."""
    try:
        status = response.json()
        message = status.get("message") or status.get("reason") or response.reason_phrase
    except ValueError:
        message = response.text.strip()[:300] or response.reason_phrase
    reason = f"{what}: {response.status_code} {message}"
    code = response.status_code
    if code in (409, 429) or code >= 500:
        retry_after = response.headers.get("Retry-After", "")
        return TransientError(reason, delay=float(retry_after) if retry_after.isdigit() else None)
    return PermanentError(reason)
