"""YAML text → plain Python data, remembering where every value came from.

PyYAML's C parser composes a node tree that carries marks (line, column) for every scalar,
mapping and sequence. We build the plain data ourselves from that tree instead of using
PyYAML's constructor, for two reasons: duplicate keys become diagnostics instead of being
silently overwritten, and a validation error on any field path can be traced back to the
exact line and column of the offending key or value. Positions are only looked up when a
problem is reported, so valid input pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .diagnostics import Diagnostic, Severity

try:  # the C loader is much faster; fall back to the pure-Python one where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
    _STR,
}
_constructor = yaml.constructor.SafeConstructor()


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True, slots=True)
class RawDocument:
    """One YAML document of a source: its plain data and the node tree it came from."""

    source: str
    index: int
    data: Any
    node: Node

    @property
    def position(self) -> Position:
        return _position(self.node)

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> Position:
        """Where the value at `path` is (or its key, with `key=True`).

        Parts of the path that the tree does not contain (the tag of a tagged union, a
        missing field) are skipped, so the answer is the deepest existing ancestor.
        """
        node: Node = self.node
        key_node: Node | None = None
        for part in path:
            found = _child(node, part)
            if found is None:
                continue
            key_node, node = found
        if key and key_node is not None:
            return _position(key_node)
        return _position(node)


def _child(node: Node, part: str | int) -> tuple[Node | None, Node] | None:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == str(part):
                return key_node, value_node
    elif isinstance(node, SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            return None, node.value[part]
    return None


def _position(node: Node) -> Position:
    mark = node.start_mark
    return Position(mark.line + 1, mark.column + 1)


class _Problems:
    """Collects the structural problems of one document while its data is built."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Diagnostic] = []

    def add(self, node: Node, code: str, message: str, hint: str = "") -> None:
        pos = _position(node)
        self.items.append(
            Diagnostic(self.source, pos.line, pos.column, Severity.ERROR, code, message, hint)
        )


def _build(node: Node, problems: _Problems) -> Any:
    if isinstance(node, ScalarNode):
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == "tag:yaml.org,2002:timestamp":
            return node.value  # keep the text; models parse dates and times themselves
        if tag in _SCALAR_TAGS:
            return _constructor.construct_object(node, deep=False)
        problems.add(node, "unsupported-yaml", f"custom tag `{tag}` is not supported",
                     "remove the tag; manifests use plain YAML values")
        return node.value
    if isinstance(node, SequenceNode):
        return [_build(item, problems) for item in node.value]
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        seen: dict[Any, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.add(key_node, "unsupported-yaml", "merge keys (`<<`) are not supported",
                             "write the fields out; anchors and aliases are fine")
                continue
            key = _build(key_node, problems)
            if isinstance(key, list | dict):
                problems.add(key_node, "wrong-type", "a mapping key must be a plain scalar")
                continue
            if key in seen:
                first = _position(seen[key])
                problems.add(key_node, "duplicate-key", f"duplicate key `{key}`",
                             f"first defined at line {first.line}; remove one of them")
                continue
            seen[key] = key_node
            result[key] = _build(value_node, problems)
        return result
    raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover


def parse_documents(source: str, text: str) -> tuple[list[RawDocument], list[Diagnostic]]:
    """Parse every document of a YAML text. Never raises for bad input."""
    documents: list[RawDocument] = []
    problems = _Problems(source)
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node guarantees a node
                break
            data = _build(node, problems)
            if data is not None:
                documents.append(RawDocument(source, index, data, node))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        problems.items.append(
            Diagnostic(source, line, column, Severity.ERROR, "yaml-syntax", message,
                       "check indentation, quoting and `:` separators near this position")
        )
    except yaml.YAMLError as exc:  # reader errors: control characters and similar
        line, column = _reader_position(exc)
        problems.items.append(
            Diagnostic(source, line, column, Severity.ERROR, "yaml-syntax",
                       str(exc).splitlines()[0], "the file contains characters YAML does not allow")
        )
    finally:
        loader.dispose()
    return documents, problems.items


def _reader_position(exc: yaml.YAMLError) -> tuple[int, int]:
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        return 1, position + 1
    return 1, 1


def decode(source: str, raw: bytes) -> tuple[str | None, list[Diagnostic]]:
    """Bytes of a manifest file → text, or a `not-utf8` diagnostic."""
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        return None, [
            Diagnostic(source, line, column, Severity.ERROR, "not-utf8",
                       f"byte 0x{raw[exc.start]:02x} is not valid UTF-8", "save the file as UTF-8")
        ]


__all__ = ["Position", "RawDocument", "decode", "parse_documents"]
