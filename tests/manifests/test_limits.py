"""The limits of a manifest: hostile or absurd input is refused with a located diagnostic.

The loader refuses values nested deeper than 64 levels (`too-deep`), integers beyond 64 bits,
scalars longer than 65,536 characters and documents that hold more than 100,000 values once
aliases are expanded (`too-large`). The models refuse durations longer than 365d
(`invalid-duration`), approval counts above 100 (`invalid-count`) and text where a number or a
boolean belongs (`wrong-type`). Whatever the input, `load_texts` answers with diagnostics and
never raises: the server's apply and `infrastream validate` both call it.
"""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Strict

from infrastream.manifests import CODES, KINDS, Diagnostic, load_texts, parse_duration
from infrastream.manifests.schema import json_schema

README = Path(__file__).resolve().parents[2] / "README.md"


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def diagnose(*texts: str) -> list[Diagnostic]:
    """Validate each text as x.yaml (then y.yaml, …), checking the manifests together."""
    names = ["x.yaml", "y.yaml", "z.yaml"]
    return load_texts(list(zip(names, texts, strict=False))).diagnostics


def located(diagnostics: list[Diagnostic]) -> list[tuple[str, str, int, int]]:
    return [(d.source, d.code, d.line, d.column) for d in diagnostics]


def errors(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.is_error]


ENVIRONMENT = doc("""
    apiVersion: lowops.manifests.v1
    kind: Environment
    metadata:
      name: development
      labels: {value}
    """)

PRODUCT = doc("""
    apiVersion: lowops.manifests.v1
    kind: Environment
    metadata:
      name: development
    ---
    apiVersion: lowops.manifests.v1
    kind: Environment
    metadata:
      name: production
    ---
    apiVersion: lowops.manifests.v1
    kind: ReleaseTrack
    metadata:
      name: shop-track
    spec:
      policy:
        initiatorMayApprove: false
      preReleaseRestore: true
      releaseStages:
        - environments: [development]
          checks:
            - {type: soak, duration: 10m}
            - {type: http, timeout: 30s, expectStatus: 200}
            - {type: integration-tests, timeout: 5m}
        - environments: [production]
          approvals:
            - {role: qa, count: 2, expiresAfter: 24h}
    ---
    apiVersion: lowops.manifests.v1
    kind: ApplicationSet
    metadata:
      name: shop
      parent: {kind: ReleaseTrack, name: shop-track}
    spec:
      description: the shop
    ---
    apiVersion: lowops.manifests.v1
    kind: Application
    metadata:
      name: api
      parent: {kind: ApplicationSet, name: shop}
    spec:
      image: registry.example.com/shop/api
      port: 8080
      replicas: 2
      healthCheck: {path: /healthz, port: 8081, timeout: 60s}
      env:
        - {name: DB_PASSWORD, secret: true}
      integrationTests: {command: [pytest], timeout: 5m}
      run: {command: [python, -m, shop_api], timeout: 1m}
    """)


def where(text: str, needle: str, offset: int = 0) -> tuple[int, int]:
    """1-based line and column of the first `needle` in `text` (plus `offset` columns)."""
    at = text.index(needle)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1 + offset


def test_the_product_used_here_is_valid() -> None:
    assert diagnose(PRODUCT) == []


# -- nesting --

def test_a_manifest_nested_500_levels_deep_is_too_deep_at_the_65th_level() -> None:
    text = ENVIRONMENT.format(value="[" * 500 + "]" * 500)
    # the document is level 1, metadata level 2, the first `[` level 3: the 63rd `[` is 65
    (diagnostic,) = diagnose(text)
    assert located([diagnostic]) == [("x.yaml", "too-deep", *where(text, "[", 62))]
    assert diagnostic.message == ("values are nested deeper than 64 levels; the rest of the "
                                  "file is not read")
    assert "64 levels" in diagnostic.hint


def test_a_block_mapping_nested_600_levels_deep_is_too_deep() -> None:
    text = "".join("  " * level + "a:\n" for level in range(600))
    (diagnostic,) = diagnose(text)  # level k starts at line k, column 2k - 1
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("too-deep", 65, 129)


def test_nesting_deeper_than_the_yaml_parser_allows_is_still_too_deep_once() -> None:
    text = ENVIRONMENT.format(value="{a: " * 5000 + "1" + "}" * 5000)
    assert [d.code for d in diagnose(text)] == ["too-deep"]


def test_nesting_the_yaml_parser_refuses_while_looking_ahead_is_too_deep() -> None:
    text = ENVIRONMENT.format(value="[" * 1200 + "]" * 1200)  # libyaml stops at 1000 levels
    (diagnostic,) = diagnose(text)
    assert diagnostic.code == "too-deep"
    assert diagnostic.line == 5


def test_aliases_that_nest_deeper_than_64_levels_are_too_deep() -> None:
    chain = "".join(f"    a{n}: &a{n} [*a{n - 1}]\n" for n in range(1, 100))
    text = ENVIRONMENT.format(value="{}") + "  annotations:\n    a0: &a0 [x]\n" + chain
    (diagnostic,) = diagnose(text)  # a0 is at level 4: a61, at level 65, is one too many
    assert (diagnostic.code, diagnostic.line) == ("too-deep", text[:text.index("*a60]")]
                                                  .count("\n") + 1)


def test_64_levels_are_allowed() -> None:
    text = ENVIRONMENT.format(value="[" * 62 + "]" * 62)  # levels 3 to 64
    assert [d.code for d in diagnose(text)] == ["wrong-type"]  # labels is not a list


def test_the_documents_before_a_too_deep_one_are_validated_and_later_ones_not_read() -> None:
    before = ENVIRONMENT.format(value="{}").replace("development", "Development")
    deep = ENVIRONMENT.format(value="[" * 100 + "]" * 100)
    after = ENVIRONMENT.format(value="{}").replace("development", "Staging")
    text = before + "---\n" + deep + "---\n" + after
    assert sorted(located(diagnose(text))) == [
        ("x.yaml", "invalid-name", 4, 9),
        ("x.yaml", "too-deep", *where(text, "[", 62)),
    ]


def test_a_too_deep_file_does_not_stop_another_file_from_being_validated() -> None:
    deep = ENVIRONMENT.format(value="[" * 100 + "]" * 100)
    other = ENVIRONMENT.format(value="{}").replace("development", "Staging")
    assert sorted(located(diagnose(deep, other))) == [
        ("x.yaml", "too-deep", *where(deep, "[", 62)),
        ("y.yaml", "invalid-name", 4, 9),
    ]


# -- numbers --

BIG = "9" * 5000


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(BIG, "99999999999999999999…", id="a 5000-digit integer"),
        pytest.param("-" + BIG, "-9999999999999999999…", id="a 5000-digit negative integer"),
        pytest.param("!!int " + BIG, "99999999999999999999…", id="a tagged 5000-digit integer"),
        pytest.param("0x" + "f" * 5000, "0xffffffffffffffffff…", id="a 5000-digit hex integer"),
        pytest.param("1" + "_000" * 2000, "1_000_000_000_000_00…",
                     id="an integer with underscores"),
        pytest.param(str(2**63), str(2**63), id="2 to the 63"),
        pytest.param(str(-(2**63) - 1), str(-(2**63) - 1), id="below -2 to the 63"),
        pytest.param(str(10**30), str(10**30)[:20] + "…", id="10 to the 30"),
    ],
)
def test_an_integer_beyond_64_bits_is_too_large_at_the_value(value: str, shown: str) -> None:
    text = PRODUCT.replace("count: 2", f"count: {value}")
    (diagnostic,) = diagnose(text)
    assert located([diagnostic]) == [("x.yaml", "too-large", *where(text, "count: ", 7))]
    assert diagnostic.message == f"the integer `{shown}` is larger than a manifest can hold"
    assert diagnostic.hint == ("integers in manifests lie between -9223372036854775808 and "
                               "9223372036854775807")


def test_the_largest_64_bit_integer_reaches_the_model() -> None:
    text = PRODUCT.replace("count: 2", f"count: {2**63 - 1}")
    assert [d.code for d in diagnose(text)] == ["invalid-count"]


def test_a_5000_digit_key_is_too_large() -> None:
    text = ENVIRONMENT.format(value="\n    ? " + BIG + "\n    : x")  # a plain key is ≤ 1024
    assert located(diagnose(text)) == [("x.yaml", "too-large", *where(text, "? ", 2))]


def test_a_document_with_a_too_large_value_does_not_hide_the_next_document() -> None:
    text = (ENVIRONMENT.format(value="{a: " + BIG + "}") + "---\n"
            + ENVIRONMENT.format(value="{}").replace("development", "Staging"))
    assert [d.code for d in diagnose(text)] == ["too-large", "invalid-name"]


def test_a_huge_float_is_no_traceback() -> None:
    text = PRODUCT.replace("count: 2", "count: 1.0e+" + BIG)
    assert [d.code for d in diagnose(text)] == ["wrong-type"]


# -- long scalars --

def test_a_scalar_longer_than_65536_characters_is_too_large() -> None:
    text = PRODUCT.replace("description: the shop", "description: " + "x" * 70_000)
    (diagnostic,) = diagnose(text)
    assert located([diagnostic]) == [("x.yaml", "too-large",
                                      *where(text, "description: ", 13))]
    assert diagnostic.message == ("a value of 70000 characters is longer than a manifest can "
                                  "hold")
    assert diagnostic.hint == "a value holds at most 65536 characters"


def test_a_scalar_of_65536_characters_is_allowed() -> None:
    text = PRODUCT.replace("description: the shop", "description: " + "x" * 65_536)
    assert diagnose(text) == []


def test_a_long_key_under_a_repeated_key_is_still_refused() -> None:
    text = ENVIRONMENT.format(value="{}") + "  labels:\n    ? " + "k" * 70_000 + "\n    : v\n"
    assert [d.code for d in diagnose(text)] == ["duplicate-key", "too-large"]


def test_a_long_invalid_value_is_not_echoed_whole() -> None:
    text = ENVIRONMENT.format(value="{}").replace("name: development", "name: " + "A" * 60_000)
    (diagnostic,) = diagnose(text)
    assert diagnostic.code == "invalid-name"
    assert len(diagnostic.message) < 300


# -- aliases --

LAUGHS = "".join(
    f"{chr(98 + level)}: &{chr(98 + level)} [" + ", ".join([f"*{chr(97 + level)}"] * 9) + "]\n"
    for level in range(9)
)


def test_a_billion_laughs_is_too_large_at_once() -> None:
    text = ENVIRONMENT.format(value="{}") + "  annotations:\n    a: &a lol\n" + textwrap.indent(
        LAUGHS, "    ")
    (diagnostic,) = diagnose(text)
    assert diagnostic.code == "too-large"
    assert diagnostic.message == ("the document holds more than 100000 values (an alias counts "
                                  "as the values it repeats); the rest of the file is not read")
    assert diagnostic.hint == ("split it into several manifests, or use fewer aliases of large "
                               "values")


def test_problems_repeated_by_nested_aliases_are_bounded() -> None:
    text = (ENVIRONMENT.format(value="{}") + "  annotations:\n    a: &a [!nope x]\n"
            + textwrap.indent(LAUGHS, "    "))
    assert [d.code for d in diagnose(text)] == ["too-large"]


def test_a_list_of_aliases_to_a_large_stage_is_too_large() -> None:
    rules = "[&r {role: qa}" + ", *r" * 400 + "]"
    stages = "[&s {environments: [development], approvals: " + rules + "}" + ", *s" * 400 + "]"
    text = PRODUCT.replace("releaseStages:", f"hotfixStages: {stages}\n  releaseStages:", 1)
    assert [d.code for d in diagnose(text)] == ["too-large"]


def test_aliases_within_the_limit_are_fine() -> None:
    text = PRODUCT.replace("approvals:\n        - {role: qa, count: 2, expiresAfter: 24h}",
                           "approvals: &rules\n        - {role: qa, count: 2, expiresAfter: 24h}")
    text = text.replace("---\napiVersion: lowops.manifests.v1\nkind: ApplicationSet",
                        "  hotfixStages:\n    - environments: [production]\n"
                        "      approvals: *rules\n---\napiVersion: lowops.manifests.v1\n"
                        "kind: ApplicationSet")
    assert diagnose(text) == []


# -- durations --

DURATION_FIELDS = [
    pytest.param("expiresAfter: 24h", "expiresAfter: ", id="an approval's expiresAfter"),
    pytest.param("duration: 10m", "duration: ", id="a soak duration"),
    pytest.param("timeout: 30s", "timeout: ", id="an http check timeout"),
    pytest.param("timeout: 5m}\n    - environments", "timeout: ",
                 id="an integration-tests check timeout"),
    pytest.param("timeout: 60s", "timeout: ", id="a health check timeout"),
    pytest.param("command: [pytest], timeout: 5m", "command: [pytest], timeout: ",
                 id="an integration-tests command timeout"),
    pytest.param("timeout: 1m", "timeout: ", id="a run command timeout"),
]


@pytest.mark.parametrize(("field", "key"), DURATION_FIELDS)
@pytest.mark.parametrize("value", ["366d", "8761h", "31536001s", "99999999999999999999h",
                                   "364d24h1s", "9" * 5000 + "s"])
def test_a_duration_longer_than_365d_is_an_invalid_duration(field: str, key: str,
                                                            value: str) -> None:
    new = field.replace(field.split("}")[0], key + value)
    text = PRODUCT.replace(field, new, 1)
    assert new in text
    (diagnostic,) = diagnose(text)
    line, column = where(text, new, len(key))
    assert located([diagnostic]) == [("x.yaml", "invalid-duration", line, column)]
    assert "longer than the maximum of 365d" in diagnostic.message
    assert len(diagnostic.message) < 200
    assert diagnostic.hint == "write it like `30s`, `10m`, `1h30m` or `2d`, at most `365d`"


@pytest.mark.parametrize("value", ["365d", "8760h", "525600m", "31536000s", "364d23h59m60s"])
def test_a_duration_of_365d_is_allowed(value: str) -> None:
    assert diagnose(PRODUCT.replace("expiresAfter: 24h", f"expiresAfter: {value}")) == []
    assert parse_duration(value) == 365 * 86400


def test_the_huge_expiry_of_the_report_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than the maximum"):
        parse_duration("99999999999999999999h")


@given(st.one_of(st.from_regex(r"\A(\d{1,30}d)?(\d{1,30}h)?(\d{1,30}m)?(\d{1,30}s)?\Z"),
                 st.text(alphabet="0123456789dhms", max_size=40)))
def test_every_accepted_duration_fits_in_the_engines_date_arithmetic(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert 1 <= seconds <= 365 * 86400
    assert datetime.max.replace(tzinfo=UTC) - timedelta(seconds=seconds) > datetime(
        2026, 1, 1, tzinfo=UTC)
    assert datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds) < datetime.max.replace(
        tzinfo=UTC)


# -- counts --

def test_an_approval_count_of_100_is_allowed() -> None:
    assert diagnose(PRODUCT.replace("count: 2", "count: 100")) == []


@pytest.mark.parametrize("value", ["101", "1000000"])
def test_an_approval_count_above_100_is_an_invalid_count(value: str) -> None:
    text = PRODUCT.replace("count: 2", f"count: {value}")
    (diagnostic,) = diagnose(text)
    assert located([diagnostic]) == [("x.yaml", "invalid-count", *where(text, "count: ", 7))]
    assert diagnostic.message == (f"spec.releaseStages[1].approvals[0].count: an approval count "
                                  f"must be between 1 and 100, got {value}")
    assert diagnostic.hint == "use a count from 1 to 100"


# -- strict types --

@pytest.mark.parametrize(
    ("old", "new", "hint"),
    [
        pytest.param("count: 2", "count: '3'", "write a whole number, without quotes",
                     id="an approval count in quotes"),
        pytest.param("count: 2", "count: 3.0", "write a whole number, without quotes",
                     id="an approval count with a fraction point"),
        pytest.param("port: 8080", 'port: "80"', "write a whole number, without quotes",
                     id="a port in quotes"),
        pytest.param("replicas: 2", 'replicas: "2"', "write a whole number, without quotes",
                     id="replicas in quotes"),
        pytest.param("port: 8081", "port: '8081'", "write a whole number, without quotes",
                     id="a health check port in quotes"),
        pytest.param("expectStatus: 200", "expectStatus: '200'",
                     "write a whole number, without quotes", id="an expected status in quotes"),
        pytest.param("secret: true", 'secret: "true"', "write `true` or `false`, without quotes",
                     id="a secret flag in quotes"),
        pytest.param("initiatorMayApprove: false", "initiatorMayApprove: 0",
                     "write `true` or `false`, without quotes", id="a policy switch as a number"),
        pytest.param("preReleaseRestore: true", "preReleaseRestore: 'no'",
                     "write `true` or `false`, without quotes", id="a restore switch in quotes"),
    ],
)
def test_text_where_a_number_or_a_boolean_belongs_is_a_wrong_type(old: str, new: str,
                                                                   hint: str) -> None:
    text = PRODUCT.replace(old, new, 1)
    (diagnostic,) = diagnose(text)
    key = new.split(":")[0] + ": "
    assert located([diagnostic]) == [("x.yaml", "wrong-type", *where(text, new, len(key)))]
    assert diagnostic.hint == hint


def test_a_quoted_count_says_what_it_got() -> None:
    (diagnostic,) = diagnose(PRODUCT.replace("count: 2", "count: '3'"))
    assert diagnostic.message == ("spec.releaseStages[1].approvals[0].count: input should be a "
                                  "valid integer, got the text `3`")


def _scalar_fields(model: type[BaseModel], seen: set[type]) -> list[tuple[str, Any, list[Any]]]:
    """(model.field, base type, metadata) of every int and bool field reachable from `model`."""
    if model in seen:
        return []
    seen.add(model)
    found: list[tuple[str, Any, list[Any]]] = []
    for name, info in model.model_fields.items():
        stack = [(info.annotation, list(info.metadata))]
        while stack:
            annotation, metadata = stack.pop()
            extra = list(getattr(annotation, "__metadata__", ()))
            base = getattr(annotation, "__origin__", annotation) if extra else annotation
            if base in (int, bool):
                found.append((f"{model.__name__}.{name}", base, metadata + extra))
            elif isinstance(base, type) and issubclass(base, BaseModel):
                found += _scalar_fields(base, seen)
            else:
                stack += [(arg, metadata + extra) for arg in get_args(base)]
    return found


def test_every_integer_and_boolean_field_of_every_kind_is_strict() -> None:
    seen: set[type] = set()
    fields = [f for model in KINDS.values() for f in _scalar_fields(model, seen)]
    names = {name for name, _, _ in fields}
    assert {"ApprovalRule.count", "ApplicationSpec.port", "ApplicationSpec.replicas",
            "HealthCheck.port", "HttpCheck.expect_status", "EnvVar.secret",
            "ApprovalPolicy.initiator_may_approve",
            "ReleaseTrackSpec.pre_release_restore"} <= names
    lax = [name for name, _, metadata in fields
           if not any(isinstance(m, Strict) and m.strict for m in metadata)]
    assert lax == []


# -- the schema states the maxima --

def test_the_schema_states_the_maximum_approval_count() -> None:
    schema = json_schema("ReleaseTrack")
    count = schema["$defs"]["ApprovalRule"]["properties"]["count"]
    assert (count["type"], count["minimum"], count["maximum"]) == ("integer", 1, 100)


def test_the_schema_states_the_maximum_of_every_duration() -> None:
    texts = []
    for kind in ("ReleaseTrack", "Application"):
        schema = json_schema(kind)
        for definition in schema["$defs"].values():
            for name, field in definition.get("properties", {}).items():
                texts += [(name, branch.get("description", ""))
                          for branch in field.get("anyOf", [field])
                          if "d)?" in branch.get("pattern", "")]
    assert {name for name, _ in texts} == {"expiresAfter", "duration", "timeout",
                                           "mergeWindow", "after", "escalateAfter"}
    assert len(texts) == 9
    for name, description in texts:
        assert description.endswith("A duration such as `30s`, `10m`, `1h30m` or `2d`, at "
                                    "most `365d`."), name


# -- the README says it --

def test_the_readme_lists_every_code_and_states_the_limits() -> None:
    text = README.read_text(encoding="utf-8")
    codes = text.split("### Validation codes", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"`([a-z0-9-]+)`", codes)) >= set(CODES)
    for limit in ("64 levels", "65,536 characters", "100,000 values", "64-bit", "`365d`",
                  "100 approvals"):
        assert limit in codes, limit
