"""YAML text → plain Python data, remembering where every value came from.

We build the plain data ourselves from the parser's event stream instead of using PyYAML's
composer and constructor, for two reasons: duplicate keys become diagnostics instead of being
silently overwritten, and a validation error on any field path can be traced back to the
exact line and column of the offending key or value.

Speed matters (a repository holds thousands of manifests), so valid input pays nothing for
positions: no node tree is kept. Building straight from the C parser's events skips the
composer's per-node work (node objects, marks, resolver calls) and leaves nothing behind for
the garbage collector to traverse again and again. Only when a problem has to be located are
the documents of its source composed into PyYAML's node trees (marks on every scalar, mapping
and sequence), once, from the text kept for that purpose, and reduced to the positions.

The data is what composing and building node by node gives: anchors and aliases expand to
the anchored value (an alias shares the anchored value, and repeats the problems found in
it), and the same inputs are reported: custom tags, merge keys, duplicate and non-scalar
keys, and YAML errors with the composer's messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode

from .diagnostics import Diagnostic, Severity

try:  # the C loader is much faster; fall back to the pure-Python one where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_constructor = yaml.constructor.SafeConstructor()
_DECIMAL = re.compile(r"[1-9][0-9]*|0")


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


class _Stream:
    """The text of one source, and where its values are, worked out when first asked for.

    The documents are composed into PyYAML's node trees (which carry the marks) and reduced
    to `_Tree`s: the line and column of every node and key, in a few small containers that
    neither take much memory nor give the garbage collector much to traverse.
    """

    __slots__ = ("_trees", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._trees: list[_Tree | None] | None = None

    def tree(self, index: int) -> _Tree:
        if self._trees is None:  # the first position asked for: every document, once
            trees: list[_Tree | None] = []
            loader = _Loader(self.text)
            try:
                while loader.check_node():
                    node = loader.get_node()
                    trees.append(None if node is None else _tree(node, {}))
            except yaml.YAMLError:
                pass  # the documents that have data all come before the error
            finally:
                loader.dispose()
            self._trees = trees
        tree = self._trees[index]
        assert tree is not None, "a document without data has no position"
        return tree

    def node(self, index: int) -> Node:
        loader = _Loader(self.text)
        try:
            for _ in range(index + 1):
                loader.check_node()
                node = loader.get_node()
        finally:
            loader.dispose()
        assert node is not None, "a document without data has no node"
        return node


#: Where a node is: [line, column, children] (1-based) for a collection, a tuple for a
#: scalar. A mapping's children are {key text: (key line, key column, value tree)} (the first
#: of repeated keys; keys that are not scalars are never looked up), a sequence's a tuple of
#: trees. Aliases share the anchored tree, so a tree may contain itself.
_Tree = Any


def _tree(node: Node, done: dict[int, _Tree]) -> _Tree:
    tree = done.get(id(node))
    if tree is not None:
        return tree
    mark = node.start_mark
    if isinstance(node, ScalarNode):
        tree = (mark.line + 1, mark.column + 1, None)
        done[id(node)] = tree
        return tree
    tree = [mark.line + 1, mark.column + 1, None]
    done[id(node)] = tree  # before the children: an alias inside the node refers to it
    if isinstance(node, MappingNode):
        children: dict[str, tuple[int, int, _Tree]] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value not in children:
                key_mark = key_node.start_mark
                children[key_node.value] = (key_mark.line + 1, key_mark.column + 1,
                                            _tree(value_node, done))
        tree[2] = children
    else:
        tree[2] = tuple(_tree(item, done) for item in node.value)
    return tree


@dataclass(frozen=True, slots=True)
class RawDocument:
    """One YAML document of a source: its plain data, and the text to locate values in."""

    source: str
    index: int
    data: Any
    stream: _Stream = field(repr=False, compare=False)

    @property
    def node(self) -> Node:
        """The document's node tree, with every value's marks (composed at each call)."""
        return self.stream.node(self.index)

    @property
    def position(self) -> Position:
        tree = self.stream.tree(self.index)
        return Position(tree[0], tree[1])

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> Position:
        """Where the value at `path` is (or its key, with `key=True`).

        Parts of the path that the tree does not contain (the tag of a tagged union, a
        missing field) are skipped, so the answer is the deepest existing ancestor.
        """
        tree = self.stream.tree(self.index)
        key_at: tuple[int, int, _Tree] | None = None
        for part in path:
            children = tree[2]
            if isinstance(children, dict):
                entry = children.get(str(part))
                if entry is not None:
                    key_at, tree = entry, entry[2]
            elif isinstance(children, tuple) and isinstance(part, int):
                if 0 <= part < len(children):
                    key_at, tree = None, children[part]
        if key and key_at is not None:
            return Position(key_at[0], key_at[1])
        return Position(tree[0], tree[1])


def _implicit_resolvers() -> dict[str, tuple[tuple[str, re.Pattern[str]], ...]]:
    """The loader's implicit tags by first character of a plain scalar (`""`: the empty one)."""
    table = _Loader.yaml_implicit_resolvers
    wildcard = table.get(None, [])
    return {key: tuple(value + wildcard) for key, value in table.items() if key is not None}


_RESOLVERS = _implicit_resolvers()
#: Tags whose plain scalars are the same value wherever they appear (NaN is never equal to
#: itself, and merge keys and custom tags are reported where they appear: none of those).
_SHAREABLE = frozenset({_STR, _NULL, _BOOL, _INT, _TIMESTAMP})
_MISSING = object()


class _Anchor:
    """An anchored node: its value once built, and the problems found while building it."""

    __slots__ = ("mark", "problems", "tag", "value")

    def __init__(self, mark: Any, tag: str) -> None:
        self.mark = mark
        self.tag = tag
        self.value: Any = _BUSY
        self.problems: list[Diagnostic] = []


_BUSY = object()  # the value of an anchor whose node is still being built


class _Builder:
    """Builds the data of one source's documents from its parser events.

    Problems go to `sink`, which is swapped for the subtrees whose problems are kept for
    later (anchored nodes, repeated at every alias) or dropped (the values of keys that are
    reported and skipped: a node tree is still read to its end, and its anchors recorded).
    """

    __slots__ = ("anchors", "get_event", "known", "sink", "source")

    def __init__(self, source: str, get_event: Callable[[], Any]) -> None:
        self.source = source
        self.get_event = get_event
        self.anchors: dict[str, _Anchor] = {}
        self.sink: list[Diagnostic] = []
        self.known: dict[str, Any] = {}  # plain scalar text → its value (keys repeat a lot)

    def problem(self, mark: Any, code: str, message: str, hint: str = "") -> None:
        self.sink.append(Diagnostic(self.source, mark.line + 1, mark.column + 1,
                                    Severity.ERROR, code, message, hint))

    # -- scalars --

    def tag(self, event: Any) -> str:
        """The tag of a scalar, explicit or resolved the way the loader resolves it."""
        tag: str | None = event.tag
        if tag is not None and tag != "!":
            return tag
        if event.implicit[0]:
            value = event.value
            for candidate, pattern in _RESOLVERS.get(value[:1], ()):
                if pattern.match(value):
                    return candidate
        return _STR

    def scalar(self, event: Any) -> Any:
        if event.tag is None and event.implicit[0]:
            value = self.known.get(event.value, _MISSING)
            if value is not _MISSING:
                return value
            tag = self.tag(event)
            value = self.construct(tag, event)
            if tag in _SHAREABLE:
                self.known[event.value] = value
            return value
        return self.construct(self.tag(event), event)

    def construct(self, tag: str, event: Any) -> Any:
        value = event.value
        if tag in (_STR, _TIMESTAMP):
            return value  # a timestamp keeps its text; models parse dates and times themselves
        if tag == _NULL:
            return None
        if tag == _INT and _DECIMAL.fullmatch(value):
            return int(value)
        if tag == _BOOL:
            result = _constructor.bool_values.get(value.lower())
            if result is not None:
                return result
        elif tag in (_INT, _FLOAT):
            node = ScalarNode(tag, value, event.start_mark, event.end_mark)
            try:
                if tag == _INT:
                    return _constructor.construct_yaml_int(node)
                return _constructor.construct_yaml_float(node)
            except (ValueError, IndexError):  # explicitly tagged text that is no number
                pass
        else:
            self.problem(event.start_mark, "unsupported-yaml",
                         f"custom tag `{tag}` is not supported",
                         "remove the tag; manifests use plain YAML values")
            return value
        self.problem(event.start_mark, "invalid-value",
                     f"`{value}` is not a valid !!{tag.rsplit(':', 1)[-1]}",
                     "fix the value, or remove the tag")
        return value

    # -- nodes --

    def value(self, event: Any) -> Any:
        """The value of the node that starts with `event`."""
        kind = event.__class__
        if event.anchor is None:
            if kind is ScalarEvent:
                return self.scalar(event)
            if kind is MappingStartEvent:
                return self.mapping()
            if kind is SequenceStartEvent:
                return self.sequence()
        return self.node(event)[0]

    def node(self, event: Any) -> tuple[Any, Any, str]:
        """(value, mark, tag) of the node that starts with `event`: aliases and anchors too."""
        kind = event.__class__
        if kind is AliasEvent:
            anchor = self.anchors.get(event.anchor)
            if anchor is None:
                raise yaml.composer.ComposerError(None, None, "found undefined alias",
                                                  event.start_mark)
            if anchor.value is _BUSY:
                self.problem(event.start_mark, "unsupported-yaml",
                             f"alias `*{event.anchor}` is inside the node it refers to",
                             "recursive data cannot be a manifest; write the values out")
                return None, event.start_mark, _NULL
            self.sink.extend(anchor.problems)
            return anchor.value, anchor.mark, anchor.tag
        name = event.anchor
        mark = event.start_mark
        tag = self.node_tag(event)
        if name is None:
            return self.plain(event, tag), mark, tag
        first = self.anchors.get(name)
        if first is not None:
            raise yaml.composer.ComposerError("found duplicate anchor; first occurrence",
                                              first.mark, "second occurrence", mark)
        anchor = _Anchor(mark, tag)
        if kind is not ScalarEvent:  # a collection's anchor is usable inside it
            self.anchors[name] = anchor
        outer, self.sink = self.sink, anchor.problems
        value = self.plain(event, tag)
        self.sink = outer
        anchor.value = value
        self.anchors[name] = anchor
        outer.extend(anchor.problems)
        return value, mark, tag

    def plain(self, event: Any, tag: str) -> Any:
        kind = event.__class__
        if kind is ScalarEvent:
            return self.construct(tag, event)
        if kind is MappingStartEvent:
            return self.mapping()
        return self.sequence()

    def skip(self, event: Any) -> None:
        """Read the node that starts with `event` to its end, dropping its problems."""
        outer, self.sink = self.sink, []
        self.node(event)
        self.sink = outer

    def sequence(self) -> list[Any]:
        items: list[Any] = []
        append = items.append
        get_event = self.get_event
        while True:
            event = get_event()
            kind = event.__class__
            if kind is ScalarEvent and event.anchor is None:
                append(self.scalar(event))
            elif kind is SequenceEndEvent:
                return items
            else:
                append(self.value(event))

    def mapping(self) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        seen: dict[Any, Any] = {}
        get_event = self.get_event
        while True:
            event = get_event()
            kind = event.__class__
            if kind is MappingEndEvent:
                return result
            if kind is ScalarEvent and event.anchor is None:
                mark = event.start_mark
                key = _MISSING
                if event.tag is None and event.implicit[0]:
                    key = self.known.get(event.value, _MISSING)
                if key is _MISSING:
                    tag = self.tag(event)
                    if tag == _MERGE:
                        self.merge_key(mark)
                        continue
                    key = self.scalar(event)
            else:
                if self.node_tag(event) == _MERGE:
                    self.skip(event)
                    self.merge_key(self.node_mark(event))
                    continue
                key, mark, _tag = self.node(event)
                if isinstance(key, list | dict):
                    self.problem(mark, "wrong-type", "a mapping key must be a plain scalar")
                    self.skip(get_event())
                    continue
            if key in seen:
                first = seen[key]
                self.problem(mark, "duplicate-key", f"duplicate key `{key}`",
                             f"first defined at line {first.line + 1}; remove one of them")
                self.skip(get_event())
                continue
            seen[key] = mark
            event = get_event()
            if event.__class__ is ScalarEvent and event.anchor is None:
                result[key] = self.scalar(event)
            else:
                result[key] = self.value(event)

    def merge_key(self, mark: Any) -> None:
        self.problem(mark, "unsupported-yaml", "merge keys (`<<`) are not supported",
                     "write the fields out; anchors and aliases are fine")
        self.skip(self.get_event())

    def node_tag(self, event: Any) -> str:
        """The tag of the node that starts with `event`, without reading it."""
        kind = event.__class__
        if kind is AliasEvent:
            anchor = self.anchors.get(event.anchor)
            return anchor.tag if anchor is not None and anchor.value is not _BUSY else ""
        if kind is ScalarEvent:
            return self.tag(event)
        explicit: str | None = event.tag
        if explicit is None or explicit == "!":
            return _MAP if kind is MappingStartEvent else _SEQ
        return explicit

    def node_mark(self, event: Any) -> Any:
        kind = event.__class__
        if kind is AliasEvent:
            return self.anchors[event.anchor].mark
        return event.start_mark


def parse_documents(source: str, text: str) -> tuple[list[RawDocument], list[Diagnostic]]:
    """Parse every document of a YAML text. Never raises for bad input."""
    documents: list[RawDocument] = []
    problems: list[Diagnostic] = []
    stream = _Stream(text)
    loader = _Loader(text)
    builder = _Builder(source, loader.get_event)
    get_event = loader.get_event
    index = 0
    try:
        get_event()  # the start of the stream
        while get_event().__class__ is not StreamEndEvent:  # the start of a document
            builder.sink = []
            data = builder.value(get_event())
            get_event()  # the end of the document
            problems.extend(builder.sink)
            builder.anchors = {}
            if data is not None:
                documents.append(RawDocument(source, index, data, stream))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        problems.append(
            Diagnostic(source, line, column, Severity.ERROR, "yaml-syntax", message,
                       "check indentation, quoting and `:` separators near this position")
        )
    except yaml.YAMLError as exc:  # reader errors: control characters and similar
        line, column = _reader_position(exc, text)
        problems.append(
            Diagnostic(source, line, column, Severity.ERROR, "yaml-syntax",
                       str(exc).splitlines()[0], "the file contains characters YAML does not allow")
        )
    finally:
        loader.dispose()
    return documents, problems


def _reader_position(exc: yaml.YAMLError, text: str) -> tuple[int, int]:
    """Line and column of a reader error (its `position` is a character offset)."""
    position = getattr(exc, "position", None)
    if not isinstance(position, int):
        return 1, 1
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def decode(source: str, raw: bytes) -> tuple[str | None, list[Diagnostic]]:
    """Bytes of a manifest file → text, or a `not-utf8` diagnostic."""
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    try:
        return raw[bom:].decode("utf-8"), []
    except UnicodeDecodeError as exc:
        start = exc.start + bom  # an offset into `raw`, byte-order mark included
        before = raw[bom:start]
        line = before.count(b"\n") + 1
        column = start - bom - (before.rfind(b"\n") + 1) + 1
        return None, [
            Diagnostic(source, line, column, Severity.ERROR, "not-utf8",
                       f"byte 0x{raw[start]:02x} is not valid UTF-8", "save the file as UTF-8")
        ]


__all__ = ["Position", "RawDocument", "decode", "parse_documents"]
