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
and sequence), once, from the text kept for that purpose, and reduced to the positions
(`raw_document.py`).

The data is what composing and building node by node gives: anchors and aliases expand to
the anchored value (an alias shares the anchored value, and repeats the problems found in
it), and the same inputs are reported: custom tags, merge keys, duplicate and non-scalar
keys, and YAML errors with the composer's messages.

The limits of `limits.py` are enforced here, while the data is built: a scalar too long or an
integer beyond 64 bits refuses its document (the next documents are still read); nesting too
deep or a document too large once its aliases are expanded stops reading the source there, as
a syntax error does, before any recursion or expansion could exhaust the process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
from yaml.nodes import ScalarNode

from .diagnostics import Diagnostic, Severity
from .limits import (
    MAX_DEPTH,
    MAX_INTEGER,
    MAX_SCALAR_LENGTH,
    MAX_VALUES,
    MIN_INTEGER,
    shown,
)
from .raw_document import Loader as _Loader
from .raw_document import Position, RawDocument, Stream

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
_SAFE_DECIMAL_DIGITS = 18  # any decimal integer this long fits in 64 bits
_MAX_INTEGER_DIGITS = len(str(MAX_INTEGER))


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

    __slots__ = ("height", "mark", "problems", "tag", "value", "weight")

    def __init__(self, mark: Any, tag: str) -> None:
        self.mark = mark
        self.tag = tag
        self.value: Any = _BUSY
        self.problems: list[Diagnostic] = []
        self.weight = 0  # the values inside it, which each alias of it repeats
        self.height = 0  # the levels of collections it spans, which each alias adds


_BUSY = object()  # the value of an anchor whose node is still being built


class _Stop(Exception):
    """A limit that stops reading the source where it was found."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _Builder:
    """Builds the data of one source's documents from its parser events.

    Problems go to `sink`, which is swapped for the subtrees whose problems are kept for
    later (anchored nodes, repeated at every alias) or dropped (the values of keys that are
    reported and skipped: a node tree is still read to its end, and its anchors recorded).
    A broken limit goes to `refusals` instead, which no subtree swaps: wherever it is, it
    refuses the document. `depth`, `deepest` (the deepest level reached, aliases expanded)
    and `values` measure the document being built.
    """

    __slots__ = ("anchors", "deepest", "depth", "get_event", "known", "refusals", "sink",
                 "source", "values")

    def __init__(self, source: str, get_event: Callable[[], Any]) -> None:
        self.source = source
        self.get_event = get_event
        self.anchors: dict[str, _Anchor] = {}
        self.sink: list[Diagnostic] = []
        self.refusals: list[Diagnostic] = []
        self.known: dict[str, Any] = {}  # plain scalar text → its value (keys repeat a lot)
        self.depth = self.deepest = self.values = 0

    def start_document(self) -> None:
        self.sink, self.refusals, self.anchors = [], [], {}
        self.depth = self.deepest = self.values = 0

    def diagnostic(self, mark: Any, code: str, message: str, hint: str) -> Diagnostic:
        return Diagnostic(self.source, mark.line + 1, mark.column + 1, Severity.ERROR, code,
                          message, hint)

    def problem(self, mark: Any, code: str, message: str, hint: str = "") -> None:
        self.sink.append(self.diagnostic(mark, code, message, hint))

    # -- limits --

    def reach(self, depth: int, mark: Any) -> None:
        """Note that the document reaches `depth` levels (refused beyond the limit)."""
        if depth > self.deepest:
            if depth > MAX_DEPTH:
                raise _Stop(_too_deep(self.source, mark.line + 1, mark.column + 1))
            self.deepest = depth

    def count(self, values: int, mark: Any) -> None:
        """Add `values` to the document's count (an alias adds those it repeats)."""
        self.values += values
        if self.values > MAX_VALUES:
            raise _Stop(self.diagnostic(
                mark, "too-large",
                f"the document holds more than {MAX_VALUES} values (an alias counts as the "
                "values it repeats); the rest of the file is not read",
                "split it into several manifests, or use fewer aliases of large values"))

    def too_long(self, event: Any) -> None:
        self.refusals.append(self.diagnostic(
            event.start_mark, "too-large",
            f"a value of {len(event.value)} characters is longer than a manifest can hold",
            f"a value holds at most {MAX_SCALAR_LENGTH} characters"))

    def integer(self, event: Any) -> Any:
        """The value of an integer scalar, refused (and kept as text) beyond 64 bits."""
        text: str = event.value
        digits = text.replace("_", "").lstrip("+-")
        if digits.startswith("0") or len(digits.split(":", 1)[0]) <= _MAX_INTEGER_DIGITS:
            # hexadecimal, octal and binary convert at any length (Python limits decimal)
            node = ScalarNode(_INT, text, event.start_mark, event.end_mark)
            try:
                number = _constructor.construct_yaml_int(node)
            except (ValueError, IndexError):  # explicitly tagged text that is no number
                self.problem(event.start_mark, "invalid-value",
                             f"`{shown(text)}` is not a valid !!int", "fix the value, or remove "
                             "the tag")
                return text
            if MIN_INTEGER <= number <= MAX_INTEGER:
                return number
        self.refusals.append(self.diagnostic(
            event.start_mark, "too-large",
            f"the integer `{shown(text, 20)}` is larger than a manifest can hold",
            f"integers in manifests lie between {MIN_INTEGER} and {MAX_INTEGER}"))
        return text

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
        # `implicit[0]`: a plain scalar, untagged or tagged `!` (the parser sets it for those
        # only), whose value its text alone decides: the same text, the same value.
        if event.implicit[0]:
            value = self.known.get(event.value, _MISSING)
            return self.resolve(event) if value is _MISSING else value
        return self.construct(self.tag(event), event)

    def resolve(self, event: Any) -> Any:
        """The value of a plain scalar whose text is not in `known` yet (and then is)."""
        text: str = event.value
        if text[:1] not in _RESOLVERS and len(text) <= MAX_SCALAR_LENGTH:
            self.known[text] = text  # no implicit tag starts so: text
            return text
        tag = self.tag(event)
        refused = len(self.refusals)
        value = self.construct(tag, event)
        if tag in _SHAREABLE and len(self.refusals) == refused:  # a refusal is repeated
            self.known[text] = value
        return value

    def construct(self, tag: str, event: Any) -> Any:
        value = event.value
        if len(value) > MAX_SCALAR_LENGTH:
            self.too_long(event)
            return value
        if tag in (_STR, _TIMESTAMP):
            return value  # a timestamp keeps its text; models parse dates and times themselves
        if tag == _NULL:
            return None
        if tag == _INT:
            if len(value) <= _SAFE_DECIMAL_DIGITS and _DECIMAL.fullmatch(value):
                return int(value)
            return self.integer(event)
        if tag == _BOOL:
            result = _constructor.bool_values.get(value.lower())
            if result is not None:
                return result
        elif tag == _FLOAT:
            node = ScalarNode(tag, value, event.start_mark, event.end_mark)
            try:
                return _constructor.construct_yaml_float(node)
            except (ValueError, IndexError):  # explicitly tagged text that is no number
                pass
        else:
            self.problem(event.start_mark, "unsupported-yaml",
                         f"custom tag `{tag}` is not supported",
                         "remove the tag; manifests use plain YAML values")
            return value
        self.problem(event.start_mark, "invalid-value",
                     f"`{shown(value)}` is not a valid !!{tag.rsplit(':', 1)[-1]}",
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
                return self.mapping(event)
            if kind is SequenceStartEvent:
                return self.sequence(event)
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
            self.count(anchor.weight, event.start_mark)
            self.reach(self.depth + anchor.height, event.start_mark)
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
        before, outer_deepest, self.deepest = self.values, self.deepest, self.depth
        value = self.plain(event, tag)
        anchor.weight, anchor.height = self.values - before, self.deepest - self.depth
        self.deepest = max(outer_deepest, self.deepest)
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
            return self.mapping(event)
        return self.sequence(event)

    def skip(self, event: Any) -> None:
        """Read the node that starts with `event` to its end, dropping its problems."""
        outer, self.sink = self.sink, []
        self.node(event)
        self.sink = outer

    # The two loops below build nearly every value: the common cases (a plain scalar seen
    # before, a collection without anchor) are handled inline, without a method call each.

    def sequence(self, start: Any) -> list[Any]:
        self.depth += 1
        if self.depth > self.deepest:
            self.reach(self.depth, start.start_mark)
        items: list[Any] = []
        append = items.append
        get_event = self.get_event
        known = self.known
        while True:
            event = get_event()
            kind = event.__class__
            if kind is ScalarEvent and event.anchor is None:
                if event.implicit[0]:
                    value = known.get(event.value, _MISSING)
                    append(self.resolve(event) if value is _MISSING else value)
                else:
                    append(self.scalar(event))
            elif kind is SequenceEndEvent:
                self.depth -= 1
                self.values += len(items)
                if self.values > MAX_VALUES:
                    self.count(0, start.start_mark)
                return items
            elif kind is MappingStartEvent and event.anchor is None:
                append(self.mapping(event))
            else:
                append(self.value(event))

    def mapping(self, start: Any) -> dict[Any, Any]:
        self.depth += 1
        if self.depth > self.deepest:
            self.reach(self.depth, start.start_mark)
        result: dict[Any, Any] = {}
        keys: list[Any] = []  # the mark of each key of `result`, in the same order
        add_key = keys.append
        get_event = self.get_event
        known = self.known
        while True:
            event = get_event()
            kind = event.__class__
            if kind is ScalarEvent and event.anchor is None:
                mark = event.start_mark
                key = _MISSING
                if event.implicit[0]:
                    key = known.get(event.value, _MISSING)
                if key is _MISSING:
                    tag = self.tag(event)
                    if tag == _MERGE:
                        self.merge_key(mark)
                        continue
                    key = self.scalar(event)
            elif kind is MappingEndEvent:
                self.depth -= 1
                self.values += len(result)
                if self.values > MAX_VALUES:
                    self.count(0, start.start_mark)
                return result
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
            if key in result:
                first = keys[list(result).index(key)]
                self.problem(mark, "duplicate-key", f"duplicate key `{key}`",
                             f"first defined at line {first.line + 1}; remove one of them")
                self.skip(get_event())
                continue
            add_key(mark)
            event = get_event()
            kind = event.__class__
            if kind is ScalarEvent and event.anchor is None:
                if event.implicit[0]:
                    value = known.get(event.value, _MISSING)
                    result[key] = self.resolve(event) if value is _MISSING else value
                else:
                    result[key] = self.scalar(event)
            elif event.anchor is None and kind is MappingStartEvent:
                result[key] = self.mapping(event)
            elif event.anchor is None and kind is SequenceStartEvent:
                result[key] = self.sequence(event)
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
    stream = Stream(text)
    loader = _Loader(text)
    builder = _Builder(source, loader.get_event)
    get_event = loader.get_event
    index = 0
    try:
        get_event()  # the start of the stream
        while get_event().__class__ is not StreamEndEvent:  # the start of a document
            builder.start_document()
            data = builder.value(get_event())
            get_event()  # the end of the document
            problems.extend(builder.sink)
            problems.extend(builder.refusals)
            if data is not None:
                documents.append(RawDocument(source, index, data, stream,
                                             refused=bool(builder.refusals)))
            index += 1
    except _Stop as stop:
        problems.append(stop.diagnostic)
        documents.append(RawDocument(source, index, None, stream, refused=True))
        stream.readable = index
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        if "maximum nesting depth" in message:  # libyaml's own limit, met while looking ahead
            problems.append(_too_deep(source, line, column))
        else:
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


def _too_deep(source: str, line: int, column: int) -> Diagnostic:
    return Diagnostic(
        source, line, column, Severity.ERROR, "too-deep",
        f"values are nested deeper than {MAX_DEPTH} levels; the rest of the file is not read",
        f"manifests are a few levels deep; a document holds at most {MAX_DEPTH} levels of "
        "mappings and lists")


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
