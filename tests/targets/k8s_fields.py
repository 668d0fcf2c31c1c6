"""Field ownership for the Kubernetes API emulator: server-side apply's bookkeeping.

A real API server remembers, per field manager, the set of fields it last applied or
updated (`metadata.managedFields`, format FieldsV1) and merges an apply against that
record: fields the manager applies are set, fields it applied before and no longer
applies are removed unless someone else owns them, fields of other managers are left
alone, and a field another manager owns with a different value is a conflict unless the
apply is forced. This module is that bookkeeping on plain JSON values, for the kinds the
emulator serves: maps merge key by key, lists of objects merge by their Kubernetes list
keys (`containers` by `name`, container `ports` by `containerPort`+`protocol`, …) and
every other list is atomic, as the official schemas declare them.

A path is a tuple of FieldsV1 segments: `f:<key>` steps into a map, `k:<json>` selects a
list item by its keys. An item path on its own records that the manager wants the item.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

Path = tuple[str, ...]
MISSING: Any = object()

LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",), "initContainers": ("name",), "env": ("name",),
    "volumes": ("name",), "volumeMounts": ("mountPath",), "imagePullSecrets": ("name",),
    "conditions": ("type",),
}
"""Lists merged item by item, by these keys (`ports` is decided by its items)."""


def _keys_of(name: str, items: list[Any]) -> tuple[str, ...] | None:
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    if name == "ports":
        return ("containerPort", "protocol") if "containerPort" in items[0] else (
            "port", "protocol")
    return LIST_KEYS.get(name)


def _item_segment(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    chosen = {k: item.get(k, "TCP" if k == "protocol" else None) for k in keys}
    return "k:" + json.dumps(chosen, sort_keys=True, separators=(",", ":"))


def paths_of(value: dict[str, Any], prefix: Path = ()) -> list[Path]:
    """Every field `value` sets, in document order: leaves, and the list items it asks for."""
    found: list[Path] = []
    for name, child in value.items():
        path = (*prefix, f"f:{name}")
        keys = _keys_of(name, child) if isinstance(child, list) else None
        if isinstance(child, dict) and child:
            found += paths_of(child, path)
        elif keys is not None:
            for item in child:
                item_path = (*path, _item_segment(item, keys))
                found.append(item_path)
                found += paths_of(item, item_path)
        else:
            found.append(path)
    return found


def applied_paths(obj: dict[str, Any]) -> list[Path]:
    """The fields an applied object sets (identity fields and status excluded)."""
    metadata = obj.get("metadata") or {}
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata",
                                                       "status")}
    owned = {k: metadata[k] for k in ("labels", "annotations") if k in metadata}
    return (paths_of({"metadata": owned}) if owned else []) + paths_of(body)


def _step(container: Any, segment: str) -> Any:
    if segment.startswith("f:"):
        return container.get(segment[2:], MISSING) if isinstance(container, dict) else MISSING
    if not isinstance(container, list):
        return MISSING
    wanted = json.loads(segment[2:])
    for item in container:
        if isinstance(item, dict) and all(
                item.get(k, "TCP" if k == "protocol" else None) == v
                for k, v in wanted.items()):
            return item
    return MISSING


def lookup(obj: Any, path: Path) -> Any:
    for segment in path:
        obj = _step(obj, segment)
        if obj is MISSING:
            return MISSING
    return obj


def assign(obj: dict[str, Any], path: Path, value: Any) -> None:
    """Set the field at `path` to `value`, creating maps and list items on the way."""
    container: Any = obj
    for index, segment in enumerate(path):
        last = index == len(path) - 1
        if segment.startswith("f:"):
            name = segment[2:]
            if last:
                container[name] = copy.deepcopy(value)
                return
            following = path[index + 1]
            default: Any = [] if following.startswith("k:") else {}
            if not isinstance(container.get(name), type(default)):
                container[name] = default
            container = container[name]
        else:
            item = _step(container, segment)
            if item is MISSING:
                item = dict(json.loads(segment[2:]))
                container.append(item)
            if last:
                return
            container = item


def remove(obj: dict[str, Any], path: Path) -> None:
    """Remove the field (or list item) at `path`, and maps or lists it leaves empty."""
    parent = lookup(obj, path[:-1]) if len(path) > 1 else obj
    if parent is MISSING:
        return
    segment = path[-1]
    if segment.startswith("f:") and isinstance(parent, dict):
        parent.pop(segment[2:], None)
    elif isinstance(parent, list):
        item = _step(parent, segment)
        if item is not MISSING:
            parent.remove(item)
    if len(path) > 1 and parent in ({}, []) and path[:-1] != ("f:metadata",):
        remove(obj, path[:-1])


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """The FieldsV1 tree of a set of paths, as `managedFields` stores it."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for segment in path:
            node = node.setdefault(segment, {})
        if path[-1].startswith("k:"):
            node["."] = {}
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    found: set[Path] = set()
    for segment, child in tree.items():
        if segment == ".":
            found.add(prefix)
            continue
        path = (*prefix, segment)
        if child:
            found |= from_fields_v1(child, path)
        else:
            found.add(path)
    return found


def changed_paths(before: dict[str, Any], after: dict[str, Any]) -> set[Path]:
    """Fields an update set or changed (what an Update manager comes to own)."""
    return {p for p in applied_paths(after) if lookup(before, p) != lookup(after, p)}


def describe(path: Path) -> str:
    """`.spec.template.spec.containers[name="api"].image`, as conflicts name fields."""
    text = ""
    for segment in path:
        if segment.startswith("f:"):
            text += "." + segment[2:]
        else:
            keys = json.loads(segment[2:])
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
    return text
