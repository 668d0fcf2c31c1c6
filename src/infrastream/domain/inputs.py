"""What every face may hand the service layer: the limits of names, free text and ids.

One home for the rules a request's values must follow before anything is stored, whichever
face (API, CLI through the API, Portal) they came through:

- **Names** (users, releases) follow the manifests' rule: DNS labels, at most 63 lowercase
  letters, digits and `-`, starting and ending with a letter or digit.
- **Free text** (approval comments, rejection, rollback and abandon reasons, override
  reasons, incident references) holds at most `MAX_TEXT` characters and no NUL or other
  control character but tab and newline; no lone surrogate (it cannot be stored as UTF-8).
- **Short values** (images, refs, commits, secret values, manifest sources) hold no NUL and
  no lone surrogate either: PostgreSQL refuses both in text, SQLite's driver refuses the
  second.
- **Ids** (`?before=`, pre-release run ids) fit the database's signed 64-bit integers.

Each check raises `Invalid` naming the field, so the caller learns exactly what to fix.
"""

from __future__ import annotations

import re

from infrastream.manifests.fields import is_dns_label

from .errors import Invalid

MAX_TEXT = 4096
"""Characters of a free-text field (a comment, a reason, an incident reference)."""
MAX_NAME = 63
MAX_ID = 2**63 - 1
"""The largest id the database can hold (signed 64-bit)."""
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
"""A DNS label, as a JSON Schema pattern (what `is_dns_label` accepts)."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def unstorable(value: str) -> str | None:
    """Why `value` cannot be stored as text (a NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if _SURROGATE.search(value):
        return "contains a lone surrogate (not valid Unicode text)"
    return None


def storable(field: str, value: str) -> str:
    """`value` if the database can store it as text; Invalid naming `field` otherwise."""
    problem = unstorable(value)
    if problem:
        raise Invalid(f"{field} {problem}", field=field)
    return value


def text_problem(value: str, limit: int = MAX_TEXT) -> str | None:
    """Why `value` is not acceptable free text, or None."""
    problem = unstorable(value)
    if problem:
        return problem
    if len(value) > limit:
        return f"is longer than {limit} characters ({len(value)})"
    if _CONTROL.search(value):
        return "contains a control character (only tab and newline are allowed)"
    return None


def free_text(field: str, value: str, limit: int = MAX_TEXT) -> str:
    """`value` stripped if it is acceptable free text; Invalid naming `field` otherwise."""
    problem = text_problem(value, limit)
    if problem:
        raise Invalid(f"{field} {problem}", field=field)
    return value.strip()


def optional_text(field: str, value: str | None, limit: int = MAX_TEXT) -> str | None:
    return None if value is None else free_text(field, value, limit)


def name_problem(value: str) -> str | None:
    """Why `value` is not a valid name (user, release), or None."""
    if not is_dns_label(value):
        return ("is not a valid name: use at most 63 lowercase letters, digits and `-`, "
                "starting and ending with a letter or digit")
    return None


def valid_name(kind: str, value: str) -> str:
    """`value` if it is a valid name; Invalid saying the one rule otherwise."""
    problem = name_problem(value)
    if problem:
        raise Invalid(f"`{_shown(value)}` {problem} (the {kind} name)", field=kind)
    return value


def valid_id(field: str, value: int | None) -> int | None:
    """`value` if it is None or an id the database can hold; Invalid otherwise."""
    if value is not None and not 0 <= value <= MAX_ID:
        raise Invalid(f"{field} must be between 0 and {MAX_ID}", field=field)
    return value


def _shown(value: str, limit: int = 80) -> str:
    clean = _CONTROL.sub("?", _SURROGATE.sub("?", value))
    return clean if len(clean) <= limit else clean[:limit] + "…"
