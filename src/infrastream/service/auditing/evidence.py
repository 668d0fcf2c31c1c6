"""Evidence packs: everything an auditor needs about one release, in one signed document.

"Show me that v42 went to production only after QA, Product and Security signed off, and
that what they approved is what was deployed" should not need database access or our word.
The pack holds the release's immutable content (versions and manifest snapshot; secret
variables carry no value by construction), its digest re-computed from that content, each
stage, deployment, check and sign-off, the release's audit entries with their hashes, the
latest signed checkpoint and the public key — signed as a whole with the audit key.
`infrastream.domain.evidence.verify_pack` checks it offline with a separately obtained key.

Building a pack first signs a checkpoint of the chain head, so the entries it carries are
pinned by a signature too; a chain that no longer verifies is not signed over (Conflict).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy import select

from infrastream.domain.errors import Conflict
from infrastream.domain.evidence import (
    ALGORITHM,
    SECTIONS,
    SIGNATURE,
    key_id,
    public_pem,
    section_digests,
)
from infrastream.domain.release import canonical_json, content_digest
from infrastream.store.clock import utc
from infrastream.store.tables import approvals, check_runs, deployments

from ..context import Services
from ..records.releases import ReleaseRef, find, release_stages, stage_rows
from . import signing
from . import trail as audit

FORMAT = "infrastream.evidence/v1"


def _iso(value: datetime | None) -> str | None:
    value = utc(value)
    return value.isoformat() if value else None


def _secret_values(value: Any, path: str = "") -> list[str]:
    """Where a variable marked secret carries a value (there must be none)."""
    if isinstance(value, dict):
        found = [path] if value.get("secret") is True and value.get("value") is not None else []
        for key, item in value.items():
            found += _secret_values(item, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _secret_values(item, f"{path}[{i}]")]
    return []


def build_evidence(services: Services, ref: ReleaseRef) -> dict[str, Any]:
    signing.checkpoint(services)
    key = signing.private_key(services)
    public = key.public_key()
    audit.settle(services.db)
    with services.db.connect() as conn:
        release = find(conn, ref)
        rows = stage_rows(conn, release.id)
        deps = conn.execute(select(deployments).where(deployments.c.release_id == release.id)
                            .order_by(deployments.c.id)).all()
        runs = conn.execute(select(check_runs).where(check_runs.c.release_id == release.id)
                            .order_by(check_runs.c.id)).all()
        decisions = conn.execute(select(approvals).where(approvals.c.stage_run_id.in_(
            [r.id for r in rows])).order_by(approvals.c.id)).all()
        entries = audit.entries(conn, object_type="release", object_id=str(ref))
    content = release.content
    leaked = _secret_values(content)
    if leaked:
        raise Conflict(f"release `{ref}` carries a value for a secret variable at "
                       + ", ".join(leaked) + "; refusing to put it into an evidence pack")
    recomputed = content_digest(content)
    if recomputed != release.digest:
        raise Conflict(f"release `{ref}` no longer matches its digest {release.digest} "
                       f"(its stored content hashes to {recomputed}): it was altered")
    stages = release_stages(release)
    stage_of = {r.id: r.stage_index for r in rows}
    pack: dict[str, Any] = {
        "kind": "EvidencePack",
        "format": FORMAT,
        "generatedAt": _iso(services.now()),
        "release": {
            "ref": str(ref), "applicationSet": release.app_set, "name": release.name,
            "lane": release.lane, "track": release.track, "state": release.state,
            "incident": release.incident, "digest": release.digest,
            "createdBy": release.created_by, "createdAt": _iso(release.created_at),
            "finishedAt": _iso(release.finished_at), "content": content,
        },
        "digestCheck": {"method": "sha256 of the canonical JSON of release.content",
                        "recomputed": recomputed, "matches": True},
        "stages": [{
            "index": r.stage_index, "name": stages[r.stage_index].display_name,
            "environments": list(stages[r.stage_index].environments), "state": r.state,
            "attempt": r.attempt, "requestedBy": r.requested_by,
            "requestedAt": _iso(r.requested_at), "deployedAt": _iso(r.deployed_at),
            "finishedAt": _iso(r.finished_at), "reason": r.reason,
        } for r in rows],
        "deployments": [{
            "stage": d.stage_index, "environment": d.environment, "attempt": d.attempt,
            "state": d.state, "message": d.message, "createdAt": _iso(d.created_at),
            "startedAt": _iso(d.started_at), "finishedAt": _iso(d.finished_at),
        } for d in deps],
        "checks": [{
            "stage": c.stage_index, "type": c.check_type, "app": c.app,
            "environment": c.environment, "attempt": c.attempt, "state": c.state,
            "summary": c.summary, "output": c.output, "startedAt": _iso(c.started_at),
            "finishedAt": _iso(c.finished_at),
        } for c in runs],
        "decisions": [{
            "stage": stage_of[d.stage_run_id],
            "stageName": stages[stage_of[d.stage_run_id]].display_name, "user": d.user,
            "role": d.role, "decision": d.decision, "comment": d.comment, "at": _iso(d.at),
            "request": d.request_id, "digest": d.digest,
        } for d in decisions],
        "audit": [entry.to_json() for entry in entries],
        "checkpoint": signing.latest_checkpoint(services),
        "publicKey": {"algorithm": ALGORITHM, "keyId": key_id(public),
                      "pem": public_pem(public)},
    }
    pack[SECTIONS] = section_digests(pack)
    pack[SIGNATURE] = {"algorithm": ALGORITHM, "keyId": key_id(public),
                       "value": base64.b64encode(key.sign(canonical_json(pack))).decode()}
    return pack


# --- Markdown -------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>") or "—"


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return ["_none_", ""]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(pack: dict[str, Any]) -> str:
    """The pack for people: the facts and tables; the JSON stays the thing that is signed."""
    release = pack["release"]
    content = release["content"]
    checkpoint = pack.get("checkpoint")
    names = {s["index"]: s["name"] for s in pack["stages"]}
    lines = [
        f"# Evidence pack: release {release['ref']}", "",
        f"- **Application set:** {release['applicationSet']} (track {release['track']})",
        f"- **Lane:** {release['lane']}" + (f" — incident {release['incident']}"
                                            if release.get("incident") else ""),
        f"- **State:** {release['state']}",
        f"- **Created:** {release['createdAt']} by {release['createdBy']}",
        f"- **Digest:** `{release['digest']}` (re-computed from the content: "
        + ("matches" if pack["digestCheck"]["matches"] else "**does not match**") + ")",
        f"- **Generated:** {pack['generatedAt']}",
        f"- **Signed with:** {pack['signature']['algorithm']} key `{pack['signature']['keyId']}`",
        "",
        "## Versions", "",
        *_table(["application", "version", "image", "commit"],
                [[app, v.get("version"), v.get("image"), v.get("commit")]
                 for app, v in sorted(content.get("versions", {}).items())]),
        "## Stages", "",
        *_table(["#", "stage", "environments", "state", "attempt", "requested by",
                 "finished", "reason"],
                [[s["index"], s["name"], ", ".join(s["environments"]), s["state"],
                  s["attempt"], s["requestedBy"], s["finishedAt"], s["reason"]]
                 for s in pack["stages"]]),
        "## Approvals and rejections", "",
        *_table(["stage", "decision", "user", "role", "at", "request", "comment"],
                [[d["stageName"], d["decision"], d["user"], d["role"], d["at"], d["request"],
                  d["comment"]] for d in pack["decisions"]]),
        "## Checks", "",
        *_table(["stage", "check", "application", "environment", "attempt", "state",
                 "summary"],
                [[names.get(c["stage"], c["stage"]), c["type"], c["app"], c["environment"],
                  c["attempt"], c["state"], c["summary"]] for c in pack["checks"]]),
        "## Deployments", "",
        *_table(["stage", "environment", "attempt", "state", "started", "finished", "message"],
                [[names.get(d["stage"], d["stage"]), d["environment"], d["attempt"],
                  d["state"], d["startedAt"], d["finishedAt"], d["message"]]
                 for d in pack["deployments"]]),
        "## Audit trail", "",
        *_table(["seq", "at", "actor", "action", "hash"],
                [[e["seq"], e["at"], e["actor"], e["action"], f"`{e['hash'][:16]}…`"]
                 for e in pack["audit"]]),
        "## Signatures", "",
        (f"- **Latest checkpoint:** entry {checkpoint['seq']}, hash `{checkpoint['hash']}`, "
         f"signed {checkpoint['at']} with key `{checkpoint['keyId']}`"
         if checkpoint else "- **Latest checkpoint:** none"),
        f"- **Public key** (`{pack['publicKey']['keyId']}`) — verify with a copy obtained "
        "separately (`GET /api/v1/audit/public-key`), never with this one alone:", "",
        "```", pack["publicKey"]["pem"].strip(), "```", "",
    ]
    return "\n".join(lines)
