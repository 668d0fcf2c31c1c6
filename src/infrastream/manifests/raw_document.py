"""One YAML document as plain data, and where each of its values is in the text.

The loader (`yaml_source`) builds the data straight from the parser's events and keeps no
positions; this module finds them when a diagnostic needs one: the documents of a source are
composed into PyYAML's node trees, once, and reduced to small position trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

try:  # the C loader is much faster; fall back to the pure-Python one where libyaml is missing
    from yaml import CSafeLoader as Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as Loader  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


class Stream:
    """The text of one source, and where its values are, worked out when first asked for.

    The documents are composed into PyYAML's node trees (which carry the marks) and reduced
    to `_Tree`s: the line and column of every node and key, in a few small containers that
    neither take much memory nor give the garbage collector much to traverse.
    """

    __slots__ = ("_trees", "readable", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._trees: list[_Tree | None] | None = None
        self.readable: int | None = None  # documents before the one a limit stopped at

    def tree(self, index: int) -> _Tree:
        if self._trees is None:  # the first position asked for: every document, once
            trees: list[_Tree | None] = []
            loader = Loader(self.text)
            try:
                while (self.readable is None or len(trees) < self.readable) \
                        and loader.check_node():
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
        loader = Loader(self.text)
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
    """One YAML document of a source: its plain data, and the text to locate values in.

    A `refused` document broke a limit (its diagnostic says which): it is not validated,
    and its data is None when the limit stopped the reading inside it."""

    source: str
    index: int
    data: Any
    stream: Stream = field(repr=False, compare=False)
    refused: bool = False

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


__all__ = ["Loader", "Position", "RawDocument", "Stream"]
