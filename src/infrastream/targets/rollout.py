"""When a Deployment's rollout is done, judged as `kubectl rollout status` judges it.

Its own module because the order of the questions is the whole point (issue 9, 3e): a
Deployment's conditions describe the generation the controller last observed, so nothing
they say counts until `status.observedGeneration` has reached `metadata.generation`. A
rollback right after a failed rollout still carries the old "ProgressDeadlineExceeded"
until the controller has looked at the new spec; read first, it fails the rollback at once.
"""

from __future__ import annotations

from typing import Any

from .base import Health


def rollout_state(deployment: dict[str, Any]) -> tuple[Health, str]:
    """Where a Deployment's rollout stands, judged as `kubectl rollout status` judges it."""
    metadata, spec = deployment.get("metadata") or {}, deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    generation = int(metadata.get("generation") or 0)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    messages = "; ".join(f"{c.get('type')}: {c.get('message')}" for c in conditions.values()
                         if c.get("status") == "False" and c.get("message"))
    if int(status.get("observedGeneration") or 0) < generation:
        # kubectl's order: a condition is about the generation the controller last saw, so
        # it says nothing until the controller has seen this one (a rollback after a failed
        # rollout still carries the old "progress deadline exceeded" until then).
        return Health.PROGRESSING, f"waiting for the controller to see generation {generation}"
    progressing = conditions.get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health.DEGRADED, messages or "progress deadline exceeded"
    updated = int(status.get("updatedReplicas") or 0)
    current = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < wanted:
        reason = f"{updated}/{wanted} replicas updated"
    elif current > updated:
        reason = f"{current - updated} old replicas are pending termination"
    elif available < updated:
        reason = f"{available}/{updated} updated replicas available"
    else:
        return Health.HEALTHY, f"{available}/{wanted} replicas available (generation {generation})"
    return Health.PROGRESSING, f"{reason}; {messages}" if messages else reason
