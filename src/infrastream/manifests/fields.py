"""Field types shared by every manifest kind: names, durations, roles, the base model.

Each type validates with its own error code (`invalid-name`, `invalid-duration`,
`invalid-count`) so the diagnostic a user sees names the rule that was broken instead of a
generic "pattern mismatch".
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

API_VERSION = "lowops.manifests.v1"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_UNITS = (86400, 3600, 60, 1)
#: What parse_duration accepts, for editors: at least one part, and not all of them zero.
_DURATION_SCHEMA_PATTERN = r"^(?=\d)(?!(?:0+[dhms])+$)(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"


class ManifestModel(BaseModel):
    """Base of every manifest model: immutable, camelCase in YAML, unknown fields refused."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
        str_strip_whitespace=False,
        defer_build=True,
    )


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):  # fullmatch: `$` allows a "\n"
        raise PydanticCustomError(
            "invalid-name",
            "`{value}` is not a valid name: use at most 63 lowercase letters, digits and `-`, "
            "starting and ending with a letter or digit",
            {"value": value},
        )
    return value


def parse_duration(text: str) -> int:
    """`1h30m` → 5400 seconds. Raises ValueError for anything else (including `0s`)."""
    match = _DURATION.fullmatch(text) if text else None
    if not match or not any(match.groups()):
        raise ValueError(text)
    groups = zip(match.groups(), _DURATION_UNITS, strict=True)
    seconds = sum(int(g) * unit for g, unit in groups if g)
    if seconds <= 0:
        raise ValueError(text)
    return seconds


def format_duration(seconds: float) -> str:
    """5400 → `1h30m`; the inverse of parse_duration for whole seconds."""
    remaining = max(0, round(seconds))
    if remaining == 0:
        return "0s"
    parts = []
    for suffix, unit in zip("dhms", _DURATION_UNITS, strict=True):
        amount, remaining = divmod(remaining, unit)
        if amount:
            parts.append(f"{amount}{suffix}")
    return "".join(parts)


def _duration(value: str) -> str:
    try:
        parse_duration(value)
    except ValueError:
        raise PydanticCustomError(
            "invalid-duration",
            "`{value}` is not a duration",
            {"value": value},
        ) from None
    return value


def _count(value: int) -> int:
    if value < 1:
        raise PydanticCustomError(
            "invalid-count", "approval count must be at least 1, got {value}", {"value": value}
        )
    return value


Name = Annotated[
    str,
    AfterValidator(_dns_label),
    Field(json_schema_extra={"pattern": _DNS_LABEL.pattern, "maxLength": 63}),
]
"""A DNS-1123 label: lowercase letters, digits and `-`, at most 63 characters."""

Duration = Annotated[
    str,
    AfterValidator(_duration),
    Field(json_schema_extra={"pattern": _DURATION_SCHEMA_PATTERN}, examples=["10m"]),
]
"""A duration such as `30s`, `10m`, `1h30m` or `2d`."""

Count = Annotated[int, AfterValidator(_count), Field(json_schema_extra={"minimum": 1})]

Role = Annotated[str, Field(min_length=1, max_length=63, examples=["qa", "security"])]
"""A role slug, free-form (the demo scaffolds developer, release-manager, qa, product, …)."""


def is_dns_label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS_LABEL.fullmatch(value))
