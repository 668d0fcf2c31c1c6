"""The Kubernetes API as the targets use it: lightkube, with every failure sorted for the engine.

Why lightkube and not the official `kubernetes` client: lightkube is small and typed, has
server-side apply and watch as plain calls, runs kubeconfig exec plugins, and offers the
same API synchronously and asynchronously on one HTTP stack; the official client is a large
generated code base whose async flavour is a separate package and whose watch cannot be
given a deadline. A deadline is the point: a rollout or a GitOps sync is waited for by
watching the object, and `asyncio.timeout` ends a watch that sits on a quiet stream, which
a blocking read cannot. So this session is async, and `run` lets the targets' blocking
methods use it from the engine's worker threads.

Every failure leaves this module as the engine's kind of error: a timeout, a refused
connection, 409 Conflict, 429 and 5xx are `TransientError` (retry later); a refused login, a
forbidden verb, a rejected object, a broken kubeconfig or exec plugin, an untrusted
certificate is `PermanentError` with the API server's (or the plugin's) own message.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import AsyncGenerator, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx2
import msgspec
from lightkube import ApiError, AsyncClient, ConfigError
from lightkube.config.kubeconfig import SingleConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret, Service
from lightkube.types import PatchType

from infrastream.domain.errors import BackendError, PermanentError, TransientError

FIELD_MANAGER = "infrastream"
KINDS: dict[str, Any] = {
    "Deployment": Deployment, "Service": Service, "Secret": Secret, "ConfigMap": ConfigMap,
    "Application": create_namespaced_resource(
        "argoproj.io", "v1alpha1", "Application", "applications"),
    "Kustomization": create_namespaced_resource(
        "kustomize.toolkit.fluxcd.io", "v1", "Kustomization", "kustomizations"),
}
"""The kinds the targets read or write, by `kind`."""
T = TypeVar("T")


class KubeApi:
    """A connection to one API server; use as `async with`."""

    def __init__(self, config: SingleConfig, *, timeout: float = 10.0) -> None:
        self.server = config.cluster.server
        with translated(f"connect to {self.server}"):
            self._client = AsyncClient(config, timeout=httpx2.Timeout(timeout),
                                       field_manager=FIELD_MANAGER)

    async def __aenter__(self) -> KubeApi:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.close()

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with translated(f"get {kind} {namespace}/{name}", missing_ok=True) as found:
            found.append(plain(await self._client.get(KINDS[kind], name, namespace=namespace)))
        return found[0] if found else None

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply `obj` as our field manager, taking over conflicting fields."""
        kind, metadata = str(obj["kind"]), obj["metadata"]
        name, namespace = str(metadata["name"]), str(metadata["namespace"])
        with translated(f"apply {kind} {namespace}/{name}"):
            applied = await self._client.patch(
                KINDS[kind], name, dict(obj), namespace=namespace, patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER, force=True)
        return plain(applied)

    async def list(self, kind: str, namespace: str,
                   labels: Mapping[str, str]) -> list[dict[str, Any]]:
        with translated(f"list {kind} in {namespace}"):
            return [plain(obj) async for obj in self._client.list(
                KINDS[kind], namespace=namespace, labels=dict(labels))]

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        with translated(f"delete {kind} {namespace}/{name}", missing_ok=True):
            await self._client.delete(KINDS[kind], name, namespace=namespace)

    async def watch(self, kind: str, namespace: str, name: str, since: str | None,
                    seconds: float) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """Changes to one object after resourceVersion `since`, as (event, object)."""
        with translated(f"watch {kind} {namespace}/{name}"):
            async for event, obj in self._client.watch(
                    KINDS[kind], namespace=namespace, fields={"metadata.name": name},
                    resource_version=since, server_timeout=max(1, int(seconds) + 1)):
                yield event, plain(obj)


def plain(obj: Any) -> dict[str, Any]:
    """A lightkube object as the JSON the API server sent."""
    converted: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return converted


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to the end from blocking code (in a thread of its own if this one
    already runs an event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    outcome: list[T] = []
    failure: list[BaseException] = []

    def main() -> None:
        try:
            outcome.append(asyncio.run(coroutine))
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    worker = threading.Thread(target=main, name="infrastream-kube")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]


@contextmanager
def translated(what: str, *, missing_ok: bool = False) -> Iterator[list[Any]]:
    """Turn what lightkube, httpx2 or an exec plugin raise into Transient/PermanentError;
    with `missing_ok`, a 404 just ends the block."""
    try:
        yield []
    except BackendError:
        raise
    except ApiError as exc:
        code = int(exc.status.code or (
            exc.response.status_code if exc.response is not None else 0))
        if missing_ok and code == 404:
            return
        raise _by_code(what, code, exc.status.message or exc.status.reason or "",
                       exc.response.headers.get("Retry-After", "")
                       if exc.response is not None else "") from exc
    except httpx2.HTTPStatusError as exc:
        code = exc.response.status_code
        if missing_ok and code == 404:
            return
        raise _by_code(what, code, exc.response.text.strip()[:300] or
                       exc.response.reason_phrase,
                       exc.response.headers.get("Retry-After", "")) from exc
    except httpx2.TimeoutException as exc:
        raise TransientError(f"{what}: timed out") from exc
    except httpx2.TransportError as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise PermanentError(f"{what}: the server's certificate is not trusted: "
                                 f"{exc}") from exc
        raise TransientError(f"{what}: {exc or type(exc).__name__}") from exc
    except ConfigError as exc:
        raise PermanentError(f"{what}: kubeconfig: {exc}") from exc
    except (ssl.SSLError, OSError) as exc:
        raise PermanentError(f"{what}: {exc}") from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise PermanentError(f"{what}: the kubeconfig's exec plugin did not print an "
                             f"ExecCredential with a token ({type(exc).__name__})") from exc
    except msgspec.ValidationError as exc:
        raise PermanentError(f"{what}: unexpected answer from the API server: {exc}") from exc


def _by_code(what: str, code: int, message: str, retry_after: str) -> BackendError:
    reason = f"{what}: {code} {message}"
    if code in (409, 429) or code >= 500:
        return TransientError(reason, delay=float(retry_after) if retry_after.isdigit() else None)
    return PermanentError(reason)
