"""Releases: immutable packages of one version of every application of a set.

A release's content is the versions it carries plus a snapshot of the manifests as they
were when it was cut; its digest is the sha256 of a canonical JSON of that content, so any
later change to the manifests or the versions can never alter what a release is — and an
approval bound to a digest can never be reused for different content.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")
_TAG = re.compile(r":([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")
_RELEASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None
    digest: str | None

    @property
    def label(self) -> str:
        """What people call this version: the tag, else the short digest."""
        if self.tag:
            return self.tag
        return (self.digest or "latest").removeprefix("sha256:")[:12]


def parse_image(ref: str) -> ImageRef:
    """`registry/app:1.2@sha256:…` → parts. ValueError when there is neither tag nor digest."""
    text = ref.strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"`{ref}` is not an image reference")
    digest = None
    match = _DIGEST.search(text)
    if match:
        digest = match.group(1)
        text = text[: match.start()]
    tag = None
    last = text.rsplit("/", 1)[-1]
    tag_match = _TAG.search(last)
    if tag_match:
        tag = tag_match.group(1)
        text = text[: len(text) - len(tag) - 1]
    if not text:
        raise ValueError(f"`{ref}` has no repository")
    if tag is None and digest is None:
        raise ValueError(f"`{ref}` names no version: add a `:tag` or an `@sha256:` digest")
    return ImageRef(text, tag, digest)


def valid_release_name(name: str) -> bool:
    return bool(_RELEASE_NAME.match(name))


def release_number(name: str) -> int | None:
    """N of a release named `vN` (N below 2³¹); None for any other name."""
    if not (name.startswith("v") and name[1:].isdigit() and name[1:].isascii()):
        return None
    number = int(name[1:])
    return number if number < 2**31 else None


def next_release_name(highest: int | None) -> str:
    """`v1`, `v2`, … : one more than the highest `vN` among the set's release names."""
    return f"v{(highest or 0) + 1}"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_digest(content: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(content)).hexdigest()
