"""The loader's data is PyYAML's: the same values for the same text, whatever the cache saw."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastream.manifests.yaml_source import parse_documents

try:
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

#: Texts that look like other types, so that the same text is met plain and quoted.
_TRICKY = ["1", "0x1f", "1_000", "0o17", "+1", "-0", "1.5", ".inf", "yes", "No", "on", "~",
           "null", "", "true", "2026-12-03", "12:30", "a", "<<", "=", "!", "-", "product-01"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**62), 2**62),
                    st.sampled_from(_TRICKY), st.text(max_size=8))
data = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(_TRICKY[:-4]), st.text(max_size=5)), inner,
                    max_size=4)), max_leaves=20)


def _values(text: str) -> list[Any]:
    documents, problems = parse_documents("x.yaml", text)
    assert problems == []
    return [document.data for document in documents]


@settings(max_examples=200, deadline=None)
@given(st.lists(data, min_size=1, max_size=3), st.booleans())
def test_the_data_is_what_pyyaml_loads(documents: list[Any], flow: bool) -> None:
    text = yaml.dump_all(documents, Dumper=_Dumper, default_flow_style=flow)
    expected = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    assert _values(text) == expected


def test_a_plain_scalar_with_the_non_specific_tag_resolves_like_an_untagged_one() -> None:
    text = "a: ! 123\nb: 123\nc: ! yes\nd: '123'\ne: !!str 123\nf: ! \"123\"\ng: ! 123\n"
    assert _values(text) == [yaml.load(text, Loader=_Loader)]
    assert _values(text) == [{"a": 123, "b": 123, "c": True, "d": "123", "e": "123", "f": 123,
                              "g": 123}]


def test_a_text_met_quoted_then_plain_keeps_both_types() -> None:
    assert _values("- '12'\n- 12\n- \"yes\"\n- yes\n") == [["12", 12, "yes", True]]
    assert _values("- 12\n- '12'\n- yes\n- 'yes'\n") == [[12, "12", True, "yes"]]


def test_a_repeated_key_names_the_line_of_the_first() -> None:
    documents, problems = parse_documents("x.yaml", "a: 1\nb: 2\nc: 3\nb: 4\n")
    assert documents[0].data == {"a": 1, "b": 2, "c": 3}
    assert [(p.line, p.column, p.code, p.hint) for p in problems] == [
        (4, 1, "duplicate-key", "first defined at line 2; remove one of them")]
