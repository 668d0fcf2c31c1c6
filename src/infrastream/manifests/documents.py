"""One YAML document → one typed manifest, or the diagnostics that say why not.

Pydantic does the field-level work; this module translates its errors into our codes and
locations (the key of an unknown field, the value of a wrong one, the mapping that misses a
field) and adds the hints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .diagnostics import Diagnostic, Severity, did_you_mean
from .fields import API_VERSION
from .kinds import KINDS, Manifest
from .limits import MAX_APPROVALS, MAX_DURATION_TEXT, shown
from .raw_document import Position
from .yaml_source import RawDocument

_TYPE_ERRORS = {
    "string_type", "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing",
    "bool_type", "bool_parsing", "list_type", "dict_type", "model_type", "model_attributes_type",
    "tuple_type", "none_required", "is_instance_of",
}
_VALUE_ERRORS = {
    "literal_error", "enum", "greater_than_equal", "less_than_equal", "greater_than",
    "less_than", "string_too_short", "string_too_long", "string_pattern_mismatch", "too_short",
    "too_long", "value_error",
}
_OWN_CODES = {"invalid-name", "invalid-duration", "invalid-count", "empty-stage",
              "duplicate-env-var", "secret-with-value", "incomplete-escalation"}


#: Each kind's validator, once built: `model_validate` without its wrapper, which thousands of
#: manifests would each pay for.
_VALIDATORS: dict[type[BaseModel], Callable[[Any], Any]] = {}


class Locatable(Protocol):
    """What a manifest was read from, as far as reporting a problem at it needs."""

    @property
    def source(self) -> str: ...

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> Position: ...


@dataclass(frozen=True, slots=True)
class LoadedManifest:
    """A validated manifest and the document it was read from (for locating later problems).

    Its kind, name and parent (kind, name) are copied out when it is made, while the manifest
    is fresh in the processor's caches: the checks between manifests read them for thousands
    of manifests long after, when following the model's references is mostly cache misses."""

    manifest: Manifest
    document: Locatable
    kind: str = field(init=False)
    name: str = field(init=False)
    parent: tuple[str, str] | None = field(init=False)

    def __post_init__(self) -> None:
        metadata = self.manifest.metadata
        parent = metadata.parent
        object.__setattr__(self, "kind", self.manifest.kind)
        object.__setattr__(self, "name", metadata.name)
        object.__setattr__(self, "parent", None if parent is None else (parent.kind, parent.name))


@dataclass(frozen=True, slots=True)
class Identity:
    """What a document that failed validation still says about itself: its kind, name and
    parent. The checks between manifests use it so that one broken manifest is reported
    once, not again by every manifest that names it (an unknown parent, an empty set)."""

    kind: str
    name: str
    parent: tuple[str, str] | None


def identify(document: RawDocument) -> Identity | None:
    """The kind, name and parent of a document, when they are plain strings."""
    data = document.data
    if not isinstance(data, dict):
        return None
    kind, metadata = data.get("kind"), data.get("metadata")
    if not isinstance(kind, str) or kind not in KINDS or not isinstance(metadata, dict):
        return None
    name, parent = metadata.get("name"), metadata.get("parent")
    if not isinstance(name, str):
        return None
    reference: tuple[str, str] | None = None
    if isinstance(parent, dict):
        parent_kind, parent_name = parent.get("kind"), parent.get("name")
        if isinstance(parent_kind, str) and isinstance(parent_name, str):
            reference = (parent_kind, parent_name)
    return Identity(kind, name, reference)


def read_manifest(document: RawDocument) -> tuple[LoadedManifest | None, list[Diagnostic]]:
    data = document.data
    if not isinstance(data, dict):
        return None, [_at(document, (), "not-a-mapping",
                          f"a manifest must be a mapping, got {_describe(data)}",
                          "start the document with `apiVersion:`, `kind:`, `metadata:`")]
    problems: list[Diagnostic] = []
    api_version = data.get("apiVersion")
    if api_version != API_VERSION:
        if api_version is None:
            problems.append(_at(document, (), "missing-field", "missing field `apiVersion`",
                                f"add `apiVersion: {API_VERSION}`"))
        else:
            problems.append(_at(document, ("apiVersion",), "unknown-api-version",
                                f"unknown apiVersion `{shown(str(api_version))}`",
                                f"use `{API_VERSION}`"))
    kind = data.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        if kind is None:
            problems.append(_at(document, (), "missing-field", "missing field `kind`",
                                "add `kind:` with one of: " + ", ".join(KINDS)))
        else:
            problems.append(_at(document, ("kind",), "unknown-kind",
                                f"unknown kind `{shown(str(kind))}`",
                                did_you_mean(str(kind), KINDS)))
        return None, problems
    if problems:  # wrong apiVersion: still report field problems of the kind it claims to be
        data = {**data, "apiVersion": API_VERSION}
    try:
        validate = _VALIDATORS.get(model)
        if validate is None:  # the first of its kind builds the deferred validator
            manifest = model.model_validate(data)
            _VALIDATORS[model] = model.__pydantic_validator__.validate_python
        else:
            manifest = validate(data)
    except ValidationError as exc:
        problems.extend(_translate(document, model, error) for error in exc.errors())
        return None, problems
    if problems:
        return None, problems
    return LoadedManifest(manifest, document), []


def _translate(document: RawDocument, model: type[BaseModel], error: ErrorDetails) -> Diagnostic:
    loc = tuple(error["loc"])
    kind = error["type"]
    field = _display(document.data, loc)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = _fields_at(model, loc[:-1])
        where = _display(document.data, loc[:-1])
        return _at(document, loc, "unknown-field", f"unknown field `{shown(name)}` in {where}",
                   did_you_mean(name, allowed), key=True)
    if kind == "missing":
        return _at(document, loc[:-1], "missing-field",
                   f"missing required field `{loc[-1]}` in {_display(document.data, loc[:-1])}",
                   f"add `{loc[-1]}:`", key=True)
    if kind in _OWN_CODES:
        hints = {
            "invalid-name": "for example `payments-api`",
            "invalid-duration": "write it like `30s`, `10m`, `1h30m` or `2d`, at most "
                                f"`{MAX_DURATION_TEXT}`",
            "invalid-count": f"use a count from 1 to {MAX_APPROVALS}",
            "empty-stage": "name at least one environment, or remove the stage",
            "duplicate-env-var": "keep one of the two declarations",
            "secret-with-value": "remove `value:` and set it with `infrastream secret set`; "
                                 "never commit secret values",
            "incomplete-escalation": "e.g. `{after: 4h, escalateAfter: 24h, "
                                     "escalateTo: release-manager}`",
        }
        return _at(document, loc, kind, f"{field}: {error['msg']}", hints[kind])
    if kind == "union_tag_invalid":
        ctx = error.get("ctx") or {}
        tag = str(ctx.get("tag", ""))
        expected = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        return _at(document, (*loc, "type"), "unknown-type",
                   f"{field}: unknown type `{shown(tag)}`",
                   did_you_mean(tag, expected))
    if kind == "union_tag_not_found":
        return _at(document, loc, "missing-field", f"missing required field `type` in {field}",
                   "add `type:`", key=True)
    if kind in _TYPE_ERRORS:
        return _at(document, loc, "wrong-type",
                   f"{field}: {error['msg'].lower()}, got {_describe(error['input'])}",
                   _type_hint(kind))
    if kind in _VALUE_ERRORS:
        return _at(document, loc, "invalid-value", f"{field}: {error['msg']}", "")
    return _at(document, loc, "invalid-value", f"{field}: {error['msg']}", "")


def _type_hint(kind: str) -> str:
    if kind in {"list_type", "tuple_type"}:
        return "use a YAML list (`- item` lines or `[a, b]`)"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "use a mapping of `key: value` lines"
    if kind in {"string_type"}:
        return "quote the value to make it a string"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return "write a whole number, without quotes"
    if kind in {"bool_type", "bool_parsing"}:
        return "write `true` or `false`, without quotes"
    return ""


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The YAML field names allowed at `loc` (the path of a mapping inside `model`)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None:
            # a tagged union branch (`loc` holds its tag): pick the member with that tag
            current = _union_member(current, part)
            continue
        match = next((f for f in fields.values() if (f.alias or "") == part), None)
        if match is None:
            return []
        current = _unwrap(match.annotation)
    fields = getattr(current, "model_fields", {})
    return [f.alias or n for n, f in fields.items()]


def _unwrap(annotation: Any) -> Any:
    """list[X] / X | None / Annotated[...] → the model class X (or the union for tags)."""
    args = getattr(annotation, "__args__", None)
    if getattr(annotation, "model_fields", None) is not None or not args:
        return annotation
    models = [a for a in args if getattr(_unwrap(a), "model_fields", None) is not None]
    if len(models) == 1:
        return _unwrap(models[0])
    return annotation if not models else tuple(_unwrap(m) for m in models)


def _union_member(members: Any, tag: str | int) -> Any:
    for member in members if isinstance(members, tuple) else ():
        type_field = member.model_fields.get("type")
        if type_field is not None and tag in getattr(type_field.annotation, "__args__", ()):
            return member
    return members


def _display(data: Any, loc: tuple[int | str, ...]) -> str:
    """`spec.releaseStages[0].checks[1].duration`: the path as the user wrote it (union tags
    that pydantic inserts into locations are left out)."""
    text = ""
    for part in loc:
        if isinstance(part, int) and isinstance(data, list):
            text += f"[{part}]"
            data = data[part] if 0 <= part < len(data) else None
        elif isinstance(data, dict) and part in data:
            text += f".{part}" if text else str(part)
            data = data[part]
        elif not isinstance(data, dict | list) or isinstance(part, int):
            text += f".{part}" if text else str(part)
            data = None
    return text or "the document"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"number `{shown(str(value))}`"
    if isinstance(value, str):
        return f"the text `{shown(value)}`"
    return f"`{shown(str(value))}`"


def _at(document: RawDocument, path: tuple[int | str, ...], code: str, message: str,
        hint: str = "", *, key: bool = False) -> Diagnostic:
    position = document.locate(path, key=key)
    return Diagnostic(document.source, position.line, position.column, Severity.ERROR, code,
                      message, hint)
