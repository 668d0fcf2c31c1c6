"""Argo CD and Flux, observed through the Kubernetes API: "is the pushed commit live?".

A `gitops` deployment pushes a commit; the agent in the cluster applies it some time later,
or fails to. Without asking the agent, "healthy" could only mean "pushed", and a stage's
checks would run against the old version. So when the environment names its agent, the
target watches the agent's own object until it reports the commit (or a later one that
contains it) synced and healthy, and fails with the agent's own words when it reports
otherwise:

- Argo CD `Application` (argoproj.io/v1alpha1): `status.sync.revision` and
  `status.sync.status` (`Synced`), `status.health.status` (`Healthy`; `Degraded` fails,
  with `status.health.message`), and a failed sync operation (`status.operationState`).
- Flux `Kustomization` (kustomize.toolkit.fluxcd.io/v1): `status.lastAppliedRevision`
  (`main@sha1:<sha>`) and the `Ready` condition; `Ready=False` (or `Stalled=True`) about
  our revision (`status.lastAttemptedRevision`) fails, with the condition's message.

The verdicts are pure functions of the object (and of "does this revision contain our
commit", which only Git can answer); `await_agent` watches until one is final.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

from infrastream.domain.errors import PermanentError
from infrastream.manifests import parse_duration
from infrastream.manifests.environment import ArgoCd, Flux

from .base import Health
from .kube_api import KubeApi

Contains = Callable[[str], bool]
"""Whether a revision the agent reports holds our commit (it is, or descends from, it)."""


def argo_verdict(application: dict[str, Any], contains: Contains) -> tuple[Health, str]:
    """Where an Argo CD Application stands with respect to our commit."""
    status = application.get("status") or {}
    sync, health = status.get("sync") or {}, status.get("health") or {}
    revision = str(sync.get("revision") or "")
    operation = status.get("operationState") or {}
    health_status = str(health.get("status") or "Unknown")
    said = f"sync {sync.get('status') or 'Unknown'}, health {health_status}"
    if not revision or not contains(revision):
        return Health.PROGRESSING, f"Argo CD has not synced the commit yet ({said}" + (
            f" at {revision[:12]})" if revision else ")")
    if operation.get("phase") in ("Failed", "Error"):
        return Health.DEGRADED, f"Argo CD sync failed: {operation.get('message') or said}"
    if health_status == "Degraded":
        return Health.DEGRADED, f"Argo CD reports Degraded: {health.get('message') or said}"
    if sync.get("status") == "Synced" and health_status == "Healthy":
        return Health.HEALTHY, f"Argo CD synced {revision[:12]} and reports Healthy"
    message = health.get("message") or operation.get("message")
    return Health.PROGRESSING, f"Argo CD: {said}" + (f": {message}" if message else "")


def flux_revision(text: str) -> str:
    """The commit of a Flux revision: `main@sha1:<sha>` (or the older `main/<sha>`)."""
    for separator in ("@sha1:", "@sha256:", "/"):
        if separator in text:
            return text.rsplit(separator, 1)[1]
    return text


def flux_verdict(kustomization: dict[str, Any], contains: Contains) -> tuple[Health, str]:
    """Where a Flux Kustomization stands with respect to our commit."""
    status = kustomization.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    stalled = conditions.get("Stalled") or {}
    applied = flux_revision(str(status.get("lastAppliedRevision") or ""))
    attempted = flux_revision(str(status.get("lastAttemptedRevision") or ""))
    said = ready.get("message") or ready.get("reason") or "no Ready condition yet"
    about_ours = bool(attempted) and contains(attempted)
    if about_ours and (ready.get("status") == "False" or stalled.get("status") == "True"):
        message = ready.get("message") or stalled.get("message") or ready.get("reason")
        return Health.DEGRADED, f"Flux reports not Ready: {message}"
    if applied and contains(applied) and ready.get("status") == "True":
        return Health.HEALTHY, f"Flux applied {applied[:12]} and reports Ready"
    if not applied or not contains(applied):
        return Health.PROGRESSING, "Flux has not applied the commit yet (" + (
            f"at {applied[:12]}: " if applied else "") + f"{said})"
    return Health.PROGRESSING, f"Flux: {said}"


async def await_agent(api: KubeApi, agent: ArgoCd | Flux, commit: str,
                      contains: Contains) -> str:
    """Watch the agent's object until it reports `commit` live; its words, or
    PermanentError with them when it reports a failure or the agent's timeout passes."""
    judge: Callable[[dict[str, Any], Contains], tuple[Health, str]]
    if isinstance(agent, ArgoCd):
        kind, name, judge, who = "Application", agent.application, argo_verdict, "Argo CD"
    else:
        kind, name, judge, who = "Kustomization", agent.kustomization, flux_verdict, "Flux"
    known: dict[str, bool] = {}

    def cached(revision: str) -> bool:
        if revision not in known:
            known[revision] = revision == commit or contains(revision)
        return known[revision]

    timeout = float(parse_duration(agent.timeout))
    started = time.monotonic()
    obj = await api.get(kind, agent.namespace, name)
    if obj is None:
        raise PermanentError(f"{who}: {kind} {agent.namespace}/{name} does not exist; "
                             "check the environment's agent settings")
    health, reason = await asyncio.to_thread(judge, obj, cached)
    try:
        async with asyncio.timeout(timeout):
            while health is Health.PROGRESSING:
                since = str(obj["metadata"].get("resourceVersion") or "") or None
                events = api.watch(kind, agent.namespace, name, since,
                                   timeout - (time.monotonic() - started))
                async with aclosing(events):
                    async for event, changed in events:
                        if event == "DELETED":
                            raise PermanentError(f"{who}: {kind} {agent.namespace}/{name} "
                                                 "was deleted while waiting for the sync")
                        obj = changed
                        health, reason = await asyncio.to_thread(judge, obj, cached)
                        if health is not Health.PROGRESSING:
                            break
    except TimeoutError:
        raise PermanentError(f"{who} did not report commit {commit[:12]} synced and healthy "
                             f"within {agent.timeout}: {reason}") from None
    if health is Health.DEGRADED:
        raise PermanentError(reason)
    return reason
