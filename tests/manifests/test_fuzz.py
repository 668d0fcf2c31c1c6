"""Property: whatever is done to valid manifests, validation answers with diagnostics.

The scaffold's manifests (`infrastream init`) are mutated at random, in their data (a key
deleted or renamed, a value replaced by another type or random text, a list or mapping
emptied) and in their text (a line duplicated, which repeats a key; random characters or
bytes inserted; the text truncated; a line re-indented). `load_texts` must never raise, and
every diagnostic must be located inside the text and carry a known code and a message.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infrastream.cli.init_cmd import example_files
from infrastream.manifests import CODES, Diagnostic, Severity, load_texts
from infrastream.manifests.plan import plan
from infrastream.manifests.yaml_source import decode

EXAMPLES: dict[str, str] = {
    path: content.decode()
    for path, content in sorted(example_files().items())
    if path.startswith("manifests/") and path.endswith(".yaml")
}

try:  # the C loader and dumper keep the examples fast
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12),
    st.sampled_from(["", "0", "0s", "-1", "Dev", "ReleaseTrack", "a" * 64, "yes", "~", "{}"]),
)
values = st.one_of(
    scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=6), scalars,
                                                            max_size=3),
)


def test_the_examples_are_valid_before_they_are_mutated() -> None:
    assert {"manifests/track.yaml", "manifests/environments.yaml"} <= set(EXAMPLES)
    result = load_texts(EXAMPLES.items())
    assert result.ok and result.diagnostics == []


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `data` (mapping keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _mutate_data(draw: st.DrawFn, text: str) -> str:
    documents = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    index = draw(st.integers(0, len(documents) - 1))
    paths = _paths(documents[index])
    path = draw(st.sampled_from(paths))
    parent: Any = documents[index]
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    operation = draw(st.sampled_from(["delete", "replace", "rename", "empty"]))
    if operation == "delete":
        del parent[last]
    elif operation == "replace":
        parent[last] = draw(values)
    elif operation == "rename" and isinstance(parent, dict):
        new_key = draw(st.one_of(st.text(max_size=12), st.integers(), st.booleans()))
        parent[new_key] = parent.pop(last)
    else:
        parent[last] = type(parent[last])() if isinstance(parent[last], list | dict) else None
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=draw(st.booleans()),
                         allow_unicode=True)


def _mutate_text(draw: st.DrawFn, text: str) -> str:
    lines = text.splitlines(keepends=True)
    operation = draw(st.sampled_from(["duplicate", "insert", "truncate", "indent", "delete"]))
    line = draw(st.integers(0, len(lines) - 1))
    if operation == "duplicate":  # a repeated mapping key (or list item)
        lines.insert(line, lines[line])
    elif operation == "insert":
        at = draw(st.integers(0, len(text)))
        junk = draw(st.text(min_size=1, max_size=8) | st.sampled_from(
            ["\t", ":", "- ", "{", "[", "&a", "*a", "!t", "<<: x", "---\n", "\x00", "\x07",
             "\ufeff", "'", '"', "#", "\r", "\u2028"]))
        return text[:at] + junk + text[at:]
    elif operation == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    elif operation == "indent":
        shift = draw(st.integers(-4, 4))
        stripped = lines[line].lstrip(" ")
        indent = max(0, len(lines[line]) - len(stripped) + shift)
        lines[line] = " " * indent + stripped
    else:
        del lines[line]
    return "".join(lines)


def _laughs(levels: int) -> str:
    """A flow mapping whose `levels` anchors each repeat the previous one 9 times."""
    parts = ["a0: &a0 lol"] + [
        f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, levels + 1)
    ]
    return "{" + ", ".join(parts) + "}"


#: Values an attacker or a broken generator writes, and the code each must give.
hostile = st.one_of(
    st.integers(65, 3000).map(lambda n: ("[" * n + "]" * n, "too-deep")),
    st.integers(65, 3000).map(lambda n: ("{a: " * n + "1" + "}" * n, "too-deep")),
    st.tuples(st.sampled_from(["", "-", "+", "!!int "]), st.integers(20, 6000)).map(
        lambda t: (t[0] + "9" * t[1], "too-large")),
    st.integers(17, 5000).map(lambda n: ("0x" + "f" * n, "too-large")),
    st.integers(65_537, 70_000).map(lambda n: ("x" * n, "too-large")),
    st.integers(6, 9).map(lambda n: (_laughs(n), "too-large")),
)


@FUZZ
@given(st.data())
def test_a_hostile_value_anywhere_is_reported_with_its_code(data: st.DataObject) -> None:
    texts = dict(EXAMPLES)
    target = data.draw(st.sampled_from(sorted(texts)))
    lines = texts[target].splitlines(keepends=True)
    slots = [i for i, line in enumerate(lines)  # `key: value` lines, the value a plain one
             if re.fullmatch(r"\s*(- )?[A-Za-z]+: [^#\s{\[&*!|>][^#]*", line.rstrip("\n"))]
    at = data.draw(st.sampled_from(slots))
    value, code = data.draw(hostile)
    key = lines[at].split(": ", 1)[0]
    lines[at] = f"{key}: {value}\n"
    texts[target] = "".join(lines)
    result = load_texts(texts.items())
    _assert_well_formed(result.diagnostics, texts)
    assert code in {d.code for d in result.diagnostics if d.source == target}
    assert not result.ok


def _assert_well_formed(diagnostics: list[Diagnostic], texts: dict[str, str]) -> None:
    for diagnostic in diagnostics:
        assert diagnostic.source in texts
        assert diagnostic.code in CODES, diagnostic
        assert isinstance(diagnostic.severity, Severity)
        assert diagnostic.message.strip(), diagnostic
        assert diagnostic.line >= 1 and diagnostic.column >= 1, diagnostic
        # within the text (YAML counts \r, \x85, \u2028 and \u2029 as line breaks too;
        # splitlines counts those and more, so this is an upper bound)
        assert diagnostic.line <= len(texts[diagnostic.source].splitlines()) + 1, diagnostic
        assert diagnostic.render().startswith(
            f"{diagnostic.source}:{diagnostic.line}:{diagnostic.column}: "
        )


def _check(texts: dict[str, str]) -> None:
    result = load_texts(texts.items())
    _assert_well_formed(result.diagnostics, texts)
    if result.ok:  # what validates can be planned
        plan(result.bundle)


@FUZZ
@given(st.data())
def test_mutating_the_data_of_a_manifest_never_breaks_validation(data: st.DataObject) -> None:
    texts = dict(EXAMPLES)
    target = data.draw(st.sampled_from(sorted(texts)))
    for _ in range(data.draw(st.integers(1, 3))):
        texts[target] = _mutate_data(data.draw, texts[target])
    _check(texts)


@FUZZ
@given(st.data())
def test_mutating_the_text_of_a_manifest_never_breaks_validation(data: st.DataObject) -> None:
    texts = dict(EXAMPLES)
    target = data.draw(st.sampled_from(sorted(texts)))
    for _ in range(data.draw(st.integers(1, 3))):
        if texts[target]:
            texts[target] = _mutate_text(data.draw, texts[target])
    _check(texts)


@FUZZ
@given(st.data())
def test_random_bytes_in_a_manifest_are_decoded_or_reported(data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(sorted(EXAMPLES)))
    raw = EXAMPLES[target].encode()
    at = data.draw(st.integers(0, len(raw)))
    raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=6)) + raw[at:]
    text, problems = decode(target, raw)
    if text is None:
        (problem,) = problems
        assert problem.code == "not-utf8" and problem.source == target
        _assert_well_formed(problems, {target: raw.decode("latin-1")})
        # line and column point at the first byte that is not UTF-8
        line_start = sum(len(line) for line in raw.split(b"\n")[: problem.line - 1])
        offset = line_start + problem.line - 1 + problem.column - 1
        with pytest.raises(UnicodeDecodeError) as error:
            raw.decode("utf-8")
        assert error.value.start == offset
        return
    assert problems == []
    _check({**EXAMPLES, target: text})
