"""The README's main job: `./dev.sh demo` runs `infrastream demo` (arguments pass through)."""

from __future__ import annotations

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
