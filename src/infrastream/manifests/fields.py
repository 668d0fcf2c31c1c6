"""Field types shared by every manifest kind: names, durations, counts, roles, the base model.

Each type validates with its own error code (`invalid-name`, `invalid-duration`,
`invalid-count`) so the diagnostic a user sees names the rule that was broken instead of a
generic "pattern mismatch". Numbers and switches are strict (pydantic's `StrictInt` and
`StrictBool` in the models): `count: '3'` is a `wrong-type`, never quietly the number 3.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from .limits import MAX_APPROVALS, MAX_DURATION, MAX_DURATION_TEXT, shown

API_VERSION = "lowops.manifests.v1"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_UNITS = (86400, 3600, 60, 1)
#: The most significant digits each unit can have within the maximum: 3d, 4h, 6m, 8s.
_DURATION_DIGITS = tuple(len(str(MAX_DURATION // unit)) for unit in _DURATION_UNITS)
#: What parse_duration accepts, for editors: at least one part, not all of them zero, and no
#: part with more digits than the maximum has (the sum of the parts a pattern cannot check:
#: the description states the maximum).
_DURATION_SCHEMA_PATTERN = "^(?=\\d)(?!(?:0+[dhms])+$)" + "".join(
    f"(0*\\d{{1,{digits}}}{unit})?" for digits, unit in zip(_DURATION_DIGITS, "dhms", strict=True)
) + "$"
DURATION_DESCRIPTION = (f"A duration such as `30s`, `10m`, `1h30m` or `2d`, at most "
                        f"`{MAX_DURATION_TEXT}`.")


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
            {"value": shown(value)},
        )
    return value


def parse_duration(text: str) -> int:
    """`1h30m` → 5400 seconds, at most `MAX_DURATION` (365 days, which every date the engine
    computes from now can add). Raises ValueError, saying why, for anything else: text that
    is no duration, `0s`, and longer durations."""
    match = _DURATION.fullmatch(text) if text else None
    if not match or not any(match.groups()):
        raise ValueError(f"`{shown(text)}` is not a duration")
    seconds = 0
    for group, unit, digits in zip(match.groups(), _DURATION_UNITS, _DURATION_DIGITS,
                                   strict=True):
        significant = (group or "").lstrip("0")
        if len(significant) > digits:  # too long, and never converted: it could be any size
            seconds = MAX_DURATION + 1
            break
        seconds += int(significant or 0) * unit
    if seconds > MAX_DURATION:
        raise ValueError(f"`{shown(text)}` is longer than the maximum of {MAX_DURATION_TEXT}")
    if seconds <= 0:
        raise ValueError(f"`{shown(text)}` is not a duration")
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


#: Durations already accepted: manifests repeat a few (`30s`, `5m`, `24h`) thousands of times.
_ACCEPTED_DURATIONS: dict[str, None] = {}
_MAX_ACCEPTED_DURATIONS = 4096


def _duration(value: str) -> str:
    if value in _ACCEPTED_DURATIONS:
        return value
    try:
        parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("invalid-duration", "{reason}", {"reason": str(exc)}) from None
    if len(_ACCEPTED_DURATIONS) < _MAX_ACCEPTED_DURATIONS:
        _ACCEPTED_DURATIONS[value] = None
    return value


def _count(value: int) -> int:
    if not 1 <= value <= MAX_APPROVALS:
        raise PydanticCustomError(
            "invalid-count", "an approval count must be between 1 and {most}, got {value}",
            {"value": value, "most": MAX_APPROVALS},
        )
    return value


def _describe_duration(schema: dict[str, Any]) -> None:
    """The JSON Schema of a duration field: its own description, then the duration rule."""
    own = schema.get("description")
    schema["description"] = f"{own} {DURATION_DESCRIPTION}" if own else DURATION_DESCRIPTION
    schema["pattern"] = _DURATION_SCHEMA_PATTERN


Name = Annotated[
    str,
    AfterValidator(_dns_label),
    Field(json_schema_extra={"pattern": _DNS_LABEL.pattern, "maxLength": 63}),
]
"""A DNS-1123 label: lowercase letters, digits and `-`, at most 63 characters."""

Duration = Annotated[
    str,
    AfterValidator(_duration),
    Field(json_schema_extra=_describe_duration, examples=["10m"]),
]
"""A duration such as `30s`, `10m`, `1h30m` or `2d`, at most `365d`."""

Count = Annotated[
    int,
    Strict(),
    AfterValidator(_count),
    Field(json_schema_extra={"minimum": 1, "maximum": MAX_APPROVALS}),
]
"""How many distinct people must sign off: 1 to 100."""

Role = Annotated[str, Field(min_length=1, max_length=63, examples=["qa", "security"])]
"""A role slug, free-form (the demo scaffolds developer, release-manager, qa, product, …)."""


def is_dns_label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS_LABEL.fullmatch(value))
