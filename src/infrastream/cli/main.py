"""The `infrastream` entry point, kept light: `--version` answers without importing anything
else, and every other command loads only the modules it needs (see `commands`)."""

from __future__ import annotations

import sys

from infrastream import __version__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        print(f"infrastream {__version__}")
        return 0
    from .app import run

    return run(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
