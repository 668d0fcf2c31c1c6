"""The JSON Schema (`infrastream schema`) describes the manifests the validator accepts.

Editors check manifests against this schema (yaml-language-server), so it must use the YAML
field names, refuse unknown fields, accept the scaffold and reject what the validator rejects
field by field. The project has no JSON Schema library, so `schema_errors` below implements
the small part of JSON Schema 2020-12 the generated schema uses.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from infrastream.cli.init_cmd import example_files
from infrastream.manifests import KINDS, load_texts, parse_duration
from infrastream.manifests.fields import Name
from infrastream.manifests.schema import json_schema

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    return schema


def _type_ok(value: Any, expected: str) -> bool:
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    return checks[expected](value)


def _ecma(pattern: str) -> re.Pattern[str]:
    """A JSON Schema pattern as Python understands it (`$` is the end, not before a \\n)."""
    return re.compile(pattern.replace("$", r"\Z"))


def schema_errors(value: Any, schema: dict[str, Any], root: dict[str, Any],
                  path: str = "") -> list[str]:
    """Why `value` does not satisfy `schema` (the subset of 2020-12 pydantic generates)."""
    schema = _resolve(schema, root)
    here = path or "(root)"
    if "anyOf" in schema:
        branches = [schema_errors(value, s, root, path) for s in schema["anyOf"]]
        return [] if any(not b for b in branches) else [f"{here}: no anyOf branch matches"]
    if "oneOf" in schema:
        valid = sum(not schema_errors(value, s, root, path) for s in schema["oneOf"])
        return [] if valid == 1 else [f"{here}: {valid} oneOf branches match"]
    if "const" in schema and value != schema["const"]:
        return [f"{here}: not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{here}: not one of {schema['enum']}"]
    if "type" in schema and not _type_ok(value, schema["type"]):
        return [f"{here}: not of type {schema['type']}"]
    errors: list[str] = []
    if isinstance(value, str):
        if "pattern" in schema and not _ecma(schema["pattern"]).search(value):
            errors.append(f"{here}: does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e9):
            errors.append(f"{here}: wrong length")
    if _type_ok(value, "number"):
        if value < schema.get("minimum", -1e300) or value > schema.get("maximum", 1e300):
            errors.append(f"{here}: out of range")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{here}: too few items")
        for index, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), root, f"{path}[{index}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        errors += [f"{here}: missing {key}" for key in schema.get("required", [])
                   if key not in value]
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{here}: unknown field {key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(item, schema["additionalProperties"], root,
                                        f"{path}.{key}")
    return errors


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema object with `properties`, anywhere in the schema."""
    if isinstance(node, dict):
        if "properties" in node:
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_has_a_2020_12_schema_with_the_manifest_fields(kind: str) -> None:
    schema = json.loads(json.dumps(json_schema(kind)))  # plain JSON, nothing else
    assert schema["$schema"] == DIALECT
    assert schema["title"] == f"{kind} (lowops.manifests.v1)"
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec"}
    assert {"apiVersion", "kind", "metadata"} <= set(schema["required"])
    assert schema["properties"]["apiVersion"]["const"] == "lowops.manifests.v1"
    assert schema["properties"]["kind"]["const"] == kind


def test_the_release_track_schema_names_the_three_lanes_in_camel_case() -> None:
    schema = json_schema("ReleaseTrack")
    spec = _resolve(schema["properties"]["spec"], schema)
    assert {"preReleaseStages", "releaseStages", "hotfixStages", "policy",
            "preReleaseRestore", "releaseOn", "mergeWindow", "approvalReminders"} == set(
        spec["properties"]
    )
    stage = schema["$defs"]["Stage"]
    assert stage["required"] == ["environments"]
    assert set(stage["properties"]) == {"name", "environments", "checks", "approvals"}


def test_no_field_name_in_the_schema_is_snake_case() -> None:
    names = {key for obj in _objects(json_schema()) for key in obj["properties"]}
    assert "healthCheck" in names and "expiresAfter" in names
    assert [name for name in names if "_" in name] == []


def test_every_object_in_the_schema_refuses_unknown_fields() -> None:
    objects = list(_objects(json_schema()))
    assert len(objects) > 10
    for obj in objects:
        assert obj.get("additionalProperties") is False, obj.get("title")


def test_the_combined_schema_selects_the_kind_by_its_kind_field() -> None:
    schema = json_schema()
    assert schema["$schema"] == DIALECT
    assert schema["discriminator"]["propertyName"] == "kind"
    assert set(schema["discriminator"]["mapping"]) == set(KINDS)
    assert len(schema["oneOf"]) == len(KINDS)


def test_an_unknown_kind_has_no_schema() -> None:
    with pytest.raises(KeyError):
        json_schema("Nope")


def test_the_scaffold_writes_the_current_schema() -> None:
    written = json.loads(example_files()["schema.json"])
    assert written == json.loads(json.dumps(json_schema()))


def test_the_scaffold_manifests_satisfy_the_schema() -> None:
    schema = json_schema()
    documents = [
        (path, document)
        for path, content in example_files().items()
        if path.endswith(".yaml")
        for document in yaml.safe_load_all(content)
    ]
    assert {d["kind"] for _, d in documents} >= {"ReleaseTrack", "ApplicationSet", "Application",
                                                 "Environment"}
    for path, document in documents:
        assert schema_errors(document, schema, schema) == [], path


VALID_TRACK = textwrap.dedent("""\
    apiVersion: lowops.manifests.v1
    kind: ReleaseTrack
    metadata:
      name: shop-track
    spec:
      releaseStages:
        - environments: [development]
          checks:
            - {type: soak, duration: 10m}
        - environments: [production]
          approvals:
            - {role: qa, count: 2, expiresAfter: 1h}
    """)


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        pytest.param("releaseStages:", "releaseStage:", "unknown-field",
                     id="an unknown field"),
        pytest.param("  name: shop-track\n", "  labels: {}\n", "missing-field",
                     id="a missing name"),
        pytest.param("count: 2", "count: two", "wrong-type", id="a count that is text"),
        pytest.param("count: 2", "count: 0", "invalid-count", id="a zero count"),
        pytest.param("count: 2", "count: 101", "invalid-count", id="a count above 100"),
        pytest.param("count: 2", "count: '2'", "wrong-type", id="a count in quotes"),
        pytest.param("expiresAfter: 1h", "expiresAfter: 99999999999999999999h",
                     "invalid-duration", id="an expiry of 10^20 hours"),
        pytest.param("name: shop-track", "name: Shop_Track", "invalid-name",
                     id="a name with capitals"),
        pytest.param("duration: 10m", "duration: 10 min", "invalid-duration",
                     id="a duration in words"),
        pytest.param("duration: 10m", "duration: 0s", "invalid-duration",
                     id="a zero duration"),
        pytest.param("type: soak", "type: smoke", "unknown-type", id="an unknown check type"),
        pytest.param("[production]", "[]", "empty-stage", id="an empty stage"),
        pytest.param("kind: ReleaseTrack", "kind: ReleaseTrak", "unknown-kind",
                     id="an unknown kind"),
    ],
)
def test_what_the_validator_rejects_field_by_field_the_schema_rejects_too(
    old: str, new: str, code: str
) -> None:
    schema = json_schema()
    assert schema_errors(yaml.safe_load(VALID_TRACK), schema, schema) == []
    assert load_texts([("x.yaml", VALID_TRACK)]).ok
    text = VALID_TRACK.replace(old, new)
    assert code in {d.code for d in load_texts([("x.yaml", text)]).diagnostics}
    assert schema_errors(yaml.safe_load(text), schema, schema) != []


_name_adapter: TypeAdapter[str] = TypeAdapter(Name)
ENVIRONMENT_SCHEMA = json_schema("Environment")
TRACK_SCHEMA = json_schema("ReleaseTrack")


def _validator_accepts_name(value: str) -> bool:
    try:
        _name_adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def _validator_accepts_duration(value: str) -> bool:
    try:
        parse_duration(value)
    except ValueError:
        return False
    return True


@given(st.one_of(st.text(alphabet="abz09-_A.\n ", max_size=66), st.just("a" * 64),
                 st.just("a" * 63), st.just("dev\n")))
def test_the_schema_accepts_exactly_the_names_the_validator_accepts(value: str) -> None:
    schema = _resolve(ENVIRONMENT_SCHEMA["properties"]["metadata"],
                      ENVIRONMENT_SCHEMA)["properties"]["name"]
    assert (not schema_errors(value, schema, {})) == _validator_accepts_name(value)


def _longer_than_365d(value: str) -> bool:
    match = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", value)
    units = (86400, 3600, 60, 1)
    return bool(match) and sum(int(g) * u for g, u in zip(match.groups(), units, strict=True)
                               if g) > 365 * 86400


@given(st.one_of(st.text(alphabet="0123dhms \n", max_size=10),
                 st.sampled_from(["", "0s", "00m0s", "0d5s", "1h30m", "2d", "10m\n", "m",
                                  "365d", "0000365d", "366d", "333d3333h", "8760h", "8761h",
                                  "99999999999999999999h", "31536000s", "131536000s"])))
def test_the_schema_accepts_the_durations_the_validator_accepts_and_states_the_maximum(
    value: str,
) -> None:
    """A pattern cannot add the parts up: beyond the digits the maximum has, the schema
    leaves the sum to its description, and only durations longer than 365d differ."""
    schema = TRACK_SCHEMA["$defs"]["SoakCheck"]["properties"]["duration"]
    assert "at most `365d`" in schema["description"]
    schema_accepts = not schema_errors(value, schema, TRACK_SCHEMA)
    if _validator_accepts_duration(value):
        assert schema_accepts
    elif schema_accepts:
        assert _longer_than_365d(value)
