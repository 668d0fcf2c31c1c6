"""Every validation rule, one bad manifest each, with the exact code and location it reports.

The bad manifest is `x.yaml`; rules that need other manifests (parents, sets, environments)
read it together with `base.yaml`, a small valid product that on its own produces no
diagnostic at all. Each case asserts the complete list of diagnostics, so a rule that fires
twice, at the wrong place or drags other errors along fails its case.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from infrastream.manifests import CODES, Diagnostic, Severity, load_texts
from infrastream.manifests.yaml_source import decode


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


BASE = doc("""
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
      releaseStages:
        - environments: [development]
        - environments: [production]
    ---
    apiVersion: lowops.manifests.v1
    kind: ApplicationSet
    metadata:
      name: shop
      parent: {kind: ReleaseTrack, name: shop-track}
    ---
    apiVersion: lowops.manifests.v1
    kind: Application
    metadata:
      name: api
      parent: {kind: ApplicationSet, name: shop}
    spec:
      image: registry.example.com/shop/api
    """)

SEED_TRACK = doc("""
    apiVersion: lowops.manifests.v1
    kind: ReleaseTrack
    metadata:
      name: my-product-releasetrack
      # ... parent metadata
    spec:
      # Path for validating individual PRs
      preReleaseStages:
        - environments:
            - development
      # Path for full, versioned releases
      releaseStages:
        - environments:
            - development
        - environments:
            - staging
        - environments:
            - production
      # Accelerated path for emergency fixes
      hotfixStages:
        - environments:
            - staging
        - environments:
            - production
    """)


def diagnose(text: str | bytes, *, with_base: bool = False) -> list[Diagnostic]:
    """Validate `text` as x.yaml, after base.yaml if asked (bytes are decoded first, as the
    CLI does)."""
    problems: list[Diagnostic] = []
    if isinstance(text, bytes):
        decoded, problems = decode("x.yaml", text)
        if decoded is None:
            return problems
        text = decoded
    sources = ([("base.yaml", BASE)] if with_base else []) + [("x.yaml", text)]
    return problems + load_texts(sources).diagnostics


def located(diagnostics: list[Diagnostic]) -> list[tuple[str, str, int, int]]:
    return [(d.source, d.code, d.line, d.column) for d in diagnostics]


# Each case: the bad manifest, whether base.yaml is read with it, the only diagnostic
# expected (code, line, column), its severity, and (optionally) its exact hint.
CASES = [
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Environment
            metadata:
              name: development
                tier: staging
            """),
        False, "yaml-syntax", 5, 9, Severity.ERROR, None,
        id="a key indented under a scalar is a yaml syntax error at that key",
    ),
    pytest.param(
        b"apiVersion: lowops.manifests.v1\nkind: Environment\nmetadata:\n  name: caf\xe9\n",
        False, "not-utf8", 4, 12, Severity.ERROR, "save the file as UTF-8",
        id="a latin-1 byte is reported as not utf8 at its line and column",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Environment
            metadata:
              name: development
              name: staging
            """),
        False, "duplicate-key", 5, 3, Severity.ERROR,
        "first defined at line 4; remove one of them",
        id="a key repeated in one mapping is reported at the second occurrence",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Environment
            metadata:
              name: !env development
            """),
        False, "unsupported-yaml", 4, 9, Severity.ERROR, None,
        id="a custom tag is unsupported yaml at the tagged value",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Environment
            metadata:
              name: development
              labels: &team {team: platform}
              annotations:
                <<: *team
            """),
        False, "unsupported-yaml", 7, 5, Severity.ERROR,
        "write the fields out; anchors and aliases are fine",
        id="a merge key is unsupported yaml at the merge key",
    ),
    pytest.param(
        doc("""
            - apiVersion: lowops.manifests.v1
              kind: Environment
            """),
        False, "not-a-mapping", 1, 1, Severity.ERROR, None,
        id="a document that is a list is not a mapping",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v2
            kind: Environment
            metadata:
              name: development
            """),
        False, "unknown-api-version", 1, 13, Severity.ERROR, "use `lowops.manifests.v1`",
        id="another api version is reported at its value",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Enviroment
            metadata:
              name: development
            """),
        False, "unknown-kind", 2, 7, Severity.ERROR, "did you mean `Environment`?",
        id="a misspelt kind suggests the closest kind",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: shop-track
            spec:
              releaseStage:
                - environments: [development]
            """),
        False, "unknown-field", 6, 3, Severity.ERROR, "did you mean `releaseStages`?",
        id="an unknown field suggests the closest field name",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Application
            metadata:
              name: cart
              parent: {kind: ApplicationSet, name: shop}
            spec:
              port: 8080
            """),
        True, "missing-field", 6, 1, Severity.ERROR, "add `image:`",
        id="a missing required field is reported at the mapping that lacks it",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Environment
            metadata:
              name: development
              labels: [team, platform]
            """),
        False, "wrong-type", 5, 11, Severity.ERROR, "use a mapping of `key: value` lines",
        id="a list where a mapping belongs is a wrong type at the value",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Environment
            metadata:
              name: development
            spec:
              tier: prod
            """),
        False, "invalid-value", 6, 9, Severity.ERROR, None,
        id="a tier that is not one of the allowed values is an invalid value",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Environment
            metadata:
              name: Dev_1
            """),
        False, "invalid-name", 4, 9, Severity.ERROR, None,
        id="a name that is not a dns label is an invalid name",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: shop-track
            spec:
              releaseStages:
                - environments: [development]
                  checks:
                    - type: soak
                      duration: 10 minutes
            """),
        False, "invalid-duration", 10, 21, Severity.ERROR, None,
        id="a soak duration in words is an invalid duration",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: shop-track
            spec:
              releaseStages:
                - environments: [development]
                  approvals:
                    - role: qa
                      count: 0
            """),
        False, "invalid-count", 10, 18, Severity.ERROR, "use a count from 1 to 100",
        id="an approval count of zero is an invalid count",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: shop-track
            spec:
              releaseStages:
                - environments: [development]
                  approvals:
                    - {role: qa, count: -2}
            """),
        False, "invalid-count", 9, 29, Severity.ERROR, "use a count from 1 to 100",
        id="a negative approval count is an invalid count",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: shop-track
            spec:
              releaseStages:
                - environments: [development]
                  checks:
                    - type: smoke
            """),
        False, "unknown-type", 9, 17, Severity.ERROR, "did you mean `soak`?",
        id="an unknown check type suggests the closest check type",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Environment
            metadata:
              name: development
            spec:
              target:
                type: kubernets
            """),
        False, "unknown-type", 7, 11, Severity.ERROR, "did you mean `kubernetes`?",
        id="an unknown target type suggests the closest target type",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: shop-track
            spec:
              releaseStages:
                - environments: [development]
                - environments: []
            """),
        False, "empty-stage", 8, 21, Severity.ERROR, None,
        id="a stage with an empty environment list is an empty stage",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: shop-track
            spec:
              releaseStages: []
            ---
            apiVersion: lowops.manifests.v1
            kind: ApplicationSet
            metadata:
              name: cart
              parent: {kind: ReleaseTrack, name: shop-track}
            ---
            apiVersion: lowops.manifests.v1
            kind: Application
            metadata:
              name: cart-api
              parent: {kind: ApplicationSet, name: cart}
            spec:
              image: registry.example.com/cart/api
            """),
        False, "track-without-stages", 6, 3, Severity.ERROR, None,
        id="a track whose lanes are all empty is a track without stages",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: cart-track
            spec:
              releaseStages:
                - environments: [development]
                - environments: [production, development]
            ---
            apiVersion: lowops.manifests.v1
            kind: ApplicationSet
            metadata:
              name: cart
              parent: {kind: ReleaseTrack, name: cart-track}
            ---
            apiVersion: lowops.manifests.v1
            kind: Application
            metadata:
              name: cart-api
              parent: {kind: ApplicationSet, name: cart}
            spec:
              image: registry.example.com/cart/api
            """),
        True, "duplicate-environment", 8, 34, Severity.ERROR,
        "already in stage 1; a lane visits each environment once",
        id="the same environment twice in one lane is a duplicate environment",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Environment
            metadata:
              name: production
            """),
        True, "duplicate-name", 4, 9, Severity.ERROR, None,
        id="two environments with one name are a duplicate name",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Application
            metadata:
              name: cart
            spec:
              image: registry.example.com/shop/cart
            """),
        True, "missing-parent", 4, 3, Severity.ERROR,
        "add `parent: {kind: ApplicationSet, name: …}` under metadata",
        id="an application without a parent is a missing parent",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Application
            metadata:
              name: cart
              parent:
                kind: ApplicationSet
                name: shopp
            spec:
              image: registry.example.com/shop/cart
            """),
        True, "unknown-parent", 7, 11, Severity.ERROR, "did you mean `shop`?",
        id="a parent name that matches no set is an unknown parent with a suggestion",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Application
            metadata:
              name: cart
              parent:
                kind: ReleaseTrack
                name: shop-track
            spec:
              image: registry.example.com/shop/cart
            """),
        True, "wrong-parent-kind", 6, 11, Severity.ERROR, "use `kind: ApplicationSet`",
        id="an application whose parent is a track has the wrong parent kind",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ApplicationSet
            metadata:
              name: extras
              parent: {kind: ReleaseTrack, name: shop-track}
            """),
        True, "empty-application-set", 4, 9, Severity.WARNING, None,
        id="a set that no application names yet is a warning: it cannot be released",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: cart-track
            spec:
              releaseStages:
                - environments: [development]
                - environments: [qa]
            ---
            apiVersion: lowops.manifests.v1
            kind: ApplicationSet
            metadata:
              name: cart
              parent: {kind: ReleaseTrack, name: cart-track}
            ---
            apiVersion: lowops.manifests.v1
            kind: Application
            metadata:
              name: cart-api
              parent: {kind: ApplicationSet, name: cart}
            spec:
              image: registry.example.com/cart/api
            """),
        True, "undeclared-environment", 8, 22, Severity.WARNING, None,
        id="an environment no manifest declares is only a warning",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: cart-track
            spec:
              releaseStages:
                - environments: [development]
            """),
        True, "unused-track", 4, 9, Severity.WARNING,
        "nothing travels this track until a set names it as parent",
        id="a track that no set names is only a warning",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Application
            metadata: {name: api, parent: {kind: ApplicationSet, name: shop}}
            spec:
              image: registry.example.com/shop/api
              env:
                - {name: LOG_LEVEL, value: info}
                - {name: LOG_LEVEL, value: debug}
            """),
        True, "duplicate-env-var", 7, 5, Severity.ERROR, "keep one of the two declarations",
        id="an environment variable declared twice is reported",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Application
            metadata: {name: api, parent: {kind: ApplicationSet, name: shop}}
            spec:
              image: registry.example.com/shop/api
              env:
                - {name: DB_PASSWORD, secret: true, value: hunter2}
            """),
        True, "secret-with-value", 7, 7, Severity.ERROR, None,
        id="a secret variable with its value in the manifest is refused",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: shop-track
            spec:
              releaseStages:
                - environments: [development]
                - environments: [production]
                  approvals: [{role: qa}]
              approvalReminders:
                after: 4h
                escalateAfter: 24h
            """),
        False, "incomplete-escalation", 11, 5, Severity.ERROR,
        "e.g. `{after: 4h, escalateAfter: 24h, escalateTo: release-manager}`",
        id="an escalation time without a role to escalate to is refused",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: Environment
            metadata:
              name: development
              labels: """) + "[" * 70 + "]" * 70 + "\n",
        False, "too-deep", 5, 73, Severity.ERROR, None,
        id="values nested 72 levels deep are too deep at the 65th level",
    ),
    pytest.param(
        doc("""
            apiVersion: lowops.manifests.v1
            kind: ReleaseTrack
            metadata:
              name: shop-track
            spec:
              releaseStages:
                - environments: [production]
                  approvals:
                    - {role: qa, count: 123456789012345678901234567890}
            """),
        False, "too-large", 9, 29, Severity.ERROR,
        "integers in manifests lie between -9223372036854775808 and 9223372036854775807",
        id="an integer beyond 64 bits is too large at the value",
    ),
]


@pytest.mark.parametrize(("text", "with_base", "code", "line", "column", "severity", "hint"),
                         CASES)
def test_each_rule_reports_its_code_at_the_exact_location(
    text: str | bytes, with_base: bool, code: str, line: int, column: int,
    severity: Severity, hint: str | None,
) -> None:
    diagnostics = diagnose(text, with_base=with_base)
    assert located(diagnostics) == [("x.yaml", code, line, column)], [
        d.render() for d in diagnostics
    ]
    (diagnostic,) = diagnostics
    assert diagnostic.severity is severity
    assert diagnostic.message.strip()
    if hint is not None:
        assert diagnostic.hint == hint


#: The codes the README documents, each of which the table must exercise.
DOCUMENTED_CODES = [
    "yaml-syntax", "not-utf8", "duplicate-key", "unsupported-yaml", "not-a-mapping",
    "unknown-api-version", "unknown-kind", "unknown-field", "missing-field", "wrong-type",
    "invalid-value", "invalid-name", "invalid-duration", "invalid-count", "unknown-type",
    "empty-stage", "track-without-stages", "duplicate-environment", "duplicate-name",
    "missing-parent", "unknown-parent", "wrong-parent-kind", "empty-application-set",
    "undeclared-environment", "unused-track", "duplicate-env-var", "secret-with-value",
    "too-deep", "too-large", "incomplete-escalation",
]


def test_every_documented_rule_has_a_case_and_a_code() -> None:
    covered = {case.values[2] for case in CASES}
    assert covered == set(DOCUMENTED_CODES)
    assert set(DOCUMENTED_CODES) <= set(CODES)


def test_the_base_product_alone_produces_no_diagnostic() -> None:
    result = load_texts([("base.yaml", BASE)])
    assert result.diagnostics == []
    assert result.documents == 5


@pytest.mark.parametrize(("text", "with_base"), [c.values[:2] for c in CASES],
                         ids=[c.id for c in CASES])
def test_every_diagnostic_renders_as_path_line_column_severity_code_message(
    text: str | bytes, with_base: bool
) -> None:
    for diagnostic in diagnose(text, with_base=with_base):
        first, *rest = diagnostic.render().split("\n")
        assert re.fullmatch(r"x\.yaml:\d+:\d+: (error|warning)\[[a-z0-9-]+\] \S.*", first)
        expected = (f"x.yaml:{diagnostic.line}:{diagnostic.column}: "
                    f"{diagnostic.severity.value}[{diagnostic.code}] {diagnostic.message}")
        assert first == expected
        assert rest == ([f"  hint: {diagnostic.hint}"] if diagnostic.hint else [])


def test_an_error_renders_with_the_error_severity_word() -> None:
    (diagnostic,) = diagnose("kind: [\n")
    assert diagnostic.render().startswith("x.yaml:2:1: error[yaml-syntax] ")


def test_the_seed_release_track_example_validates_without_errors() -> None:
    result = load_texts([("track.yaml", SEED_TRACK)])
    assert result.ok
    assert [d for d in result.diagnostics if d.is_error] == []
    track = result.bundle.tracks["my-product-releasetrack"]
    lanes = {lane.value: [s.environments for s in stages] for lane, stages in track.spec.lanes()}
    assert lanes == {
        "preRelease": [["development"]],
        "release": [["development"], ["staging"], ["production"]],
        "hotfix": [["staging"], ["production"]],
    }
    # alone, its environments are undeclared and no set travels it: warnings only
    assert {d.code for d in result.diagnostics} == {"undeclared-environment", "unused-track"}


def test_three_distinct_errors_in_one_document_are_all_reported() -> None:
    text = doc("""
        apiVersion: lowops.manifests.v1
        kind: Environment
        metadata:
          name: Dev_1
        spec:
          tier: prod
          colour: blue
        """)
    assert sorted(located(diagnose(text))) == [
        ("x.yaml", "invalid-name", 4, 9),
        ("x.yaml", "invalid-value", 6, 9),
        ("x.yaml", "unknown-field", 7, 3),
    ]


def test_errors_in_two_files_are_both_reported() -> None:
    first = "apiVersion: lowops.manifests.v1\nkind: Environment\nmetadata:\n  name: Bad\n"
    second = "apiVersion: lowops.manifests.v1\nkind: Enviroment\nmetadata:\n  name: ok\n"
    result = load_texts([("a.yaml", first), ("b.yaml", second)])
    assert sorted(located(result.diagnostics)) == [
        ("a.yaml", "invalid-name", 4, 9),
        ("b.yaml", "unknown-kind", 2, 7),
    ]
    assert not result.ok


def test_a_syntax_error_in_a_later_document_still_validates_the_earlier_ones() -> None:
    text = doc("""
        apiVersion: lowops.manifests.v1
        kind: Environment
        metadata:
          name: Development
        ---
        kind: [
        """)
    assert sorted(located(diagnose(text))) == [
        ("x.yaml", "invalid-name", 4, 9),
        ("x.yaml", "yaml-syntax", 7, 1),
    ]


def test_the_same_name_in_different_kinds_is_fine() -> None:
    text = doc("""
        apiVersion: lowops.manifests.v1
        kind: Environment
        metadata:
          name: shop
        """)
    assert diagnose(text, with_base=True) == []


def test_the_unknown_field_message_names_where_the_field_is() -> None:
    text = doc("""
        apiVersion: lowops.manifests.v1
        kind: ReleaseTrack
        metadata:
          name: shop-track
        spec:
          releaseStages:
            - environments: [development]
              approvals:
                - {role: qa, expiresAfer: 1h}
        """)
    (diagnostic,) = diagnose(text)
    assert diagnostic.code == "unknown-field"
    assert (diagnostic.line, diagnostic.column) == (9, 22)
    assert diagnostic.message == (
        "unknown field `expiresAfer` in spec.releaseStages[0].approvals[0]"
    )
    assert diagnostic.hint == "did you mean `expiresAfter`?"


def test_a_name_with_a_trailing_newline_is_an_invalid_name() -> None:
    text = 'apiVersion: lowops.manifests.v1\nkind: Environment\nmetadata:\n  name: "dev\\n"\n'
    assert located(diagnose(text)) == [("x.yaml", "invalid-name", 4, 9)]


def test_a_duration_with_a_trailing_newline_is_an_invalid_duration() -> None:
    text = doc("""
        apiVersion: lowops.manifests.v1
        kind: ReleaseTrack
        metadata:
          name: shop-track
        spec:
          releaseStages:
            - environments: [development]
              checks:
                - {type: soak, duration: "10m\\n"}
        """)
    errors = [d for d in diagnose(text) if d.is_error]
    assert located(errors) == [("x.yaml", "invalid-duration", 9, 34)]


def test_an_invalid_track_does_not_make_its_sets_report_an_unknown_parent() -> None:
    broken = BASE.replace("- environments: [production]",
                          "- environments: [production]\n      approvals: [{role: qa, count: 0}]")
    result = load_texts([("base.yaml", broken)])
    assert [d.code for d in result.diagnostics] == ["invalid-count"]


def test_an_invalid_application_still_counts_as_a_member_of_its_set() -> None:
    broken = BASE.replace("image: registry.example.com/shop/api", "image: [api]")
    result = load_texts([("base.yaml", broken)])
    assert [d.code for d in result.diagnostics] == ["wrong-type"]


def test_an_invalid_environment_still_counts_as_declared() -> None:
    broken = BASE.replace("name: production", "name: production\nspec: {tier: prod}")
    result = load_texts([("base.yaml", broken)])
    assert [d.code for d in result.diagnostics] == ["invalid-value"]


def test_the_wrong_parent_kind_message_uses_the_right_article() -> None:
    text = doc("""
        apiVersion: lowops.manifests.v1
        kind: Application
        metadata:
          name: cart
          parent: {kind: ReleaseTrack, name: shop-track}
        spec:
          image: registry.example.com/shop/cart
        """)
    (diagnostic,) = diagnose(text, with_base=True)
    assert diagnostic.message == (
        "the parent of Application `cart` must be an ApplicationSet, not `ReleaseTrack`"
    )


def test_a_control_character_is_reported_at_its_line_and_column() -> None:
    text = "apiVersion: lowops.manifests.v1\nkind: Environment\nmetadata:\n  name: a\x07b\n"
    assert located(diagnose(text)) == [("x.yaml", "yaml-syntax", 4, 10)]


def test_a_bad_byte_after_a_byte_order_mark_is_reported_at_its_line_and_column() -> None:
    raw = b"\xef\xbb\xbfapiVersion: lowops.manifests.v1\nkind: Environment\nmetadata:\n"
    raw += b"  name: caf\xe9\n"
    (diagnostic,) = diagnose(raw)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("not-utf8", 4, 12)
    assert diagnostic.message == "byte 0xe9 is not valid UTF-8"


def test_an_input_without_any_manifest_is_an_error(tmp_path) -> None:
    from infrastream.cli.main import main

    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here yet\n")
    assert main(["validate", str(empty)]) == 1
