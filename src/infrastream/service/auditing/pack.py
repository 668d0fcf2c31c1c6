"""The shape of an evidence pack (`evidence.build_evidence`), for the OpenAPI and clients.

The pack is built and signed as a plain JSON document; this model only describes it (the API
sends the signed document untouched, so describing it can never change what was signed).
"""

from __future__ import annotations

from typing import Any

from ..readmodel import ReadModel
from .view import AuditEntryView, CheckpointView


class PackRelease(ReadModel):
    ref: str
    application_set: str
    name: str
    lane: str
    track: str
    state: str
    incident: str | None
    digest: str
    created_by: str
    created_at: str | None
    finished_at: str | None
    content: dict[str, Any]
    """The release's immutable content: versions and the manifest snapshot."""


class DigestCheck(ReadModel):
    method: str
    recomputed: str
    matches: bool


class PackStage(ReadModel):
    index: int
    name: str
    environments: list[str]
    state: str
    attempt: int
    requested_by: str | None
    requested_at: str | None
    deployed_at: str | None
    finished_at: str | None
    reason: str


class PackDeployment(ReadModel):
    stage: int
    environment: str
    attempt: int
    state: str
    message: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class PackCheck(ReadModel):
    stage: int
    type: str
    app: str
    environment: str
    attempt: int
    state: str
    summary: str
    output: str
    started_at: str | None
    finished_at: str | None


class PackDecision(ReadModel):
    stage: int
    stage_name: str
    user: str
    role: str
    decision: str
    comment: str
    at: str | None
    request: int
    digest: str


class PublicKey(ReadModel):
    algorithm: str
    key_id: str
    pem: str


class PackSignature(ReadModel):
    algorithm: str
    key_id: str
    """The id of the audit key that signed (every server shares one: README)."""
    value: str


class EvidencePack(ReadModel):
    """Everything an auditor needs about one release, signed as a whole."""

    kind: str
    format: str
    generated_at: str | None
    release: PackRelease
    digest_check: DigestCheck
    stages: list[PackStage]
    deployments: list[PackDeployment]
    checks: list[PackCheck]
    decisions: list[PackDecision]
    audit: list[AuditEntryView]
    checkpoint: CheckpointView | None
    public_key: PublicKey
    sections: dict[str, Any]
    """A digest of every part, so a verifier names the part that was altered."""
    signature: PackSignature
