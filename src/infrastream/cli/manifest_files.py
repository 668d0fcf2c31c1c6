"""Finding manifest files: paths, directories (recursively) and stdin (`-`).

This is the only place manifests are read from disk; the manifests package itself is pure
and is handed (source, text) pairs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from infrastream.manifests import Diagnostic
from infrastream.manifests.yaml_source import decode

SUFFIXES = (".yaml", ".yml")


class InputError(Exception):
    """A path the user gave that cannot be read: a usage error (exit 2)."""


def discover(paths: Iterable[str]) -> list[str]:
    """Every manifest file under the given paths, sorted within each directory; a file named
    twice (`validate manifests manifests/track.yaml`) is read once."""
    found: list[str] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(str(path))

    for raw in paths:
        if raw == "-":
            found.append("-")
            continue
        path = Path(raw)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*")
                if p.suffix in SUFFIXES and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise InputError(f"no .yaml or .yml files under {raw}")
            for file in files:
                add(file)
        elif path.is_file():
            add(path)
        elif path.exists():
            raise InputError(f"{raw} is neither a file nor a directory")
        else:
            raise InputError(f"{raw}: no such file or directory")
    return found


def read_sources(paths: Iterable[str]) -> tuple[list[tuple[str, str]], list[Diagnostic]]:
    """(source, text) pairs for every manifest file, and the files that are not text."""
    sources: list[tuple[str, str]] = []
    problems: list[Diagnostic] = []
    for name in discover(paths):
        if name == "-" and sys.stdin is None:  # started without a standard input at all
            raise InputError("-: there is no standard input to read")
        try:
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            raise InputError(f"{name}: {exc.strerror or exc}") from None
        source = "<stdin>" if name == "-" else name
        text, bad = decode(source, raw)
        problems.extend(bad)
        if text is not None:
            sources.append((source, text))
    return sources, problems
