"""Checking an evidence pack offline: pure functions an auditor can run without our server.

An evidence pack is one JSON document about one release, signed with the server's Ed25519
audit key. The auditor holds the public key (fetched once, out of band) and a pack file; this
module says whether the pack is exactly what the server signed, and when it is not, *which
part* changed: the signed document carries a digest of each of its parts, so a one-byte
edit is named ("decisions[1] (approve by quinn) was altered after signing") instead of a bare
"bad signature". It also re-checks what the pack claims: every audit entry's hash, the
release digest over the embedded content, the checkpoint's signature.

No database, no files, no clock: the key is passed in as PEM, the pack as a dict.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .audit_chain import entry_hash
from .release import canonical_json, content_digest

ALGORITHM = "ed25519"
SIGNATURE = "signature"
SECTIONS = "sections"


@dataclass(frozen=True)
class EvidenceVerdict:
    ok: bool
    reason: str
    problems: tuple[str, ...] = ()


# --- keys and signatures --------------------------------------------------------------------

def load_public_key(pem: bytes | str) -> Ed25519PublicKey:
    """The Ed25519 public key in `pem`; ValueError when it is not one."""
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name for a key: the first 16 hex digits of sha256(raw public key)."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()[:16]


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def verify_signature(key: Ed25519PublicKey, payload: bytes, signature: str) -> bool:
    """True when `signature` (base64) is `key`'s signature of `payload`."""
    try:
        key.verify(base64.b64decode(signature, validate=True), payload)
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def checkpoint_payload(seq: int, hash: str, at: str) -> bytes:
    """What a checkpoint signs: the chain head (seq, hash) and when it was signed."""
    return canonical_json({"seq": seq, "hash": hash, "at": at})


# --- the parts of a pack --------------------------------------------------------------------

def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def section_digests(document: Mapping[str, Any]) -> dict[str, Any]:
    """A digest of every part of the document: per key of a mapping, per item of a list."""
    digests: dict[str, Any] = {}
    for name, value in document.items():
        if name in (SIGNATURE, SECTIONS):
            continue
        if isinstance(value, Mapping):
            digests[name] = {key: _digest(item) for key, item in value.items()}
        elif isinstance(value, list):
            digests[name] = [_digest(item) for item in value]
        else:
            digests[name] = _digest(value)
    return digests


def unsigned(pack: Mapping[str, Any]) -> dict[str, Any]:
    """The pack without its signature: exactly what the signature covers."""
    return {key: value for key, value in pack.items() if key != SIGNATURE}


_LABELS: dict[str, Callable[[Any], str]] = {
    "decisions": lambda d: f"{d.get('decision')} by {d.get('user')}",
    "audit": lambda e: f"entry {e.get('seq')}, {e.get('action')}",
    "stages": lambda s: str(s.get("name")),
    "deployments": lambda d: f"{d.get('environment')} attempt {d.get('attempt')}",
    "checks": lambda c: f"{c.get('type')} {c.get('app')}@{c.get('environment')}",
}


def _label(section: str, item: Any) -> str:
    label = _LABELS.get(section)
    if label is None or not isinstance(item, Mapping):
        return ""
    return f" ({label(item)})"


def altered_parts(pack: Mapping[str, Any]) -> list[str]:
    """The parts whose content no longer matches the digests the pack was signed with."""
    signed = pack.get(SECTIONS)
    if not isinstance(signed, Mapping):
        return ["the list of section digests is missing"]
    now = section_digests(pack)
    parts: list[str] = []
    for name in sorted(set(signed) | set(now)):
        before, after = signed.get(name), now.get(name)
        if before == after:
            continue
        items = pack.get(name)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            parts += [f"{name}.{key}" for key in sorted(set(before) | set(after))
                      if before.get(key) != after.get(key)]
        elif (isinstance(before, list) and isinstance(after, list)
              and isinstance(items, list) and len(before) == len(after)):
            parts += [f"{name}[{i}]{_label(name, items[i])}"
                      for i in range(len(after)) if before[i] != after[i]]
        else:
            parts.append(name)
    return parts


# --- the checks -----------------------------------------------------------------------------

def _signature_problems(pack: Mapping[str, Any], key: Ed25519PublicKey) -> list[str]:
    given = key_id(key)
    signature = pack.get(SIGNATURE)
    if not isinstance(signature, Mapping) or not isinstance(signature.get("value"), str):
        return ["the pack carries no signature"]
    embedded = _embedded_key_id(pack)
    if verify_signature(key, canonical_json(unsigned(pack)), signature["value"]):
        if embedded != given:
            return [f"the pack is signed by the given key {given} but embeds key {embedded}"]
        return []
    if signature.get("keyId") != given:
        return [f"the signature does not verify with the given key {given}: the pack says it "
                f"was signed by key {signature.get('keyId')}"]
    altered = altered_parts(pack)
    where = ", ".join(altered) if altered else "its signature or section digests"
    return [f"the signature does not verify with the given key {given}: {where} "
            f"{'was' if len(altered) <= 1 else 'were'} altered after signing"]


def _embedded_key_id(pack: Mapping[str, Any]) -> str | None:
    embedded = pack.get("publicKey")
    if not isinstance(embedded, Mapping):
        return None
    try:
        return key_id(load_public_key(str(embedded.get("pem", ""))))
    except ValueError:
        return None


def _entry_problems(pack: Mapping[str, Any]) -> list[str]:
    problems = []
    for index, entry in enumerate(pack.get("audit") or []):
        try:
            expected = entry_hash(
                seq=entry["seq"], at=datetime.fromisoformat(entry["at"]), actor=entry["actor"],
                action=entry["action"], object_type=entry["objectType"],
                object_id=entry["objectId"], before=entry["before"], after=entry["after"],
                prev_hash=entry["prevHash"])
            recorded = entry["hash"]
        except (KeyError, TypeError, ValueError):
            problems.append(f"audit entry #{index + 1} is malformed")
            continue
        if expected != recorded:
            problems.append(f"audit entry {entry['seq']} ({entry['action']}) does not match its "
                            "hash: it was edited")
    return problems


def _release_problems(pack: Mapping[str, Any]) -> list[str]:
    release = pack.get("release")
    if not isinstance(release, Mapping) or not isinstance(release.get("content"), Mapping):
        return ["the pack carries no release content"]
    digest = release.get("digest")
    recomputed = content_digest(dict(release["content"]))
    problems = []
    if recomputed != digest:
        problems.append(f"the release content does not match its digest {digest} "
                        f"(recomputed {recomputed})")
    for decision in pack.get("decisions") or []:
        if isinstance(decision, Mapping) and decision.get("digest") != digest:
            problems.append(f"the {decision.get('decision')} by {decision.get('user')} is bound "
                            f"to digest {decision.get('digest')}, not the release's {digest}")
    return problems


def _checkpoint_problems(pack: Mapping[str, Any], key: Ed25519PublicKey) -> list[str]:
    checkpoint = pack.get("checkpoint")
    if checkpoint is None:
        return []
    try:
        payload = checkpoint_payload(checkpoint["seq"], checkpoint["hash"], checkpoint["at"])
        signature = checkpoint["signature"]
    except (KeyError, TypeError):
        return ["the checkpoint is malformed"]
    if not verify_signature(key, payload, signature):
        return [f"checkpoint {checkpoint['seq']}'s signature does not verify with the given key"]
    return []


def verify_pack(pack: Mapping[str, Any], public_key_pem: bytes | str) -> EvidenceVerdict:
    """Is `pack` exactly what the holder of `public_key_pem`'s private key signed?

    The key the pack embeds is never trusted: only the one given here, obtained separately.
    """
    try:
        key = load_public_key(public_key_pem)
    except ValueError as error:
        return EvidenceVerdict(False, f"the given public key is unusable: {error}")
    if not isinstance(pack, Mapping):
        return EvidenceVerdict(False, "this is not an evidence pack (not a JSON object)")
    problems = (_signature_problems(pack, key) + _entry_problems(pack)
                + _release_problems(pack) + _checkpoint_problems(pack, key))
    if problems:
        return EvidenceVerdict(False, "; ".join(problems), tuple(problems))
    entries = len(pack.get("audit") or [])
    return EvidenceVerdict(True, f"the pack is intact: signed by key {key_id(key)}; {entries} "
                           "audit entries and the release digest check out")
