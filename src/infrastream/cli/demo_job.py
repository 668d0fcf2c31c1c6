"""The README's main job: scaffold the example product, validate it and show its plan."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from .init_cmd import write_example
from .main import main as cli


def main() -> int:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "shop"
    if not directory.exists():
        write_example(directory)
    print(f"example product in {directory}\n")
    status = cli(["validate", str(directory / "manifests")])
    if status:
        return status
    return cli(["plan", str(directory / "manifests")])


if __name__ == "__main__":
    sys.exit(main())
