"""The repository's Dockerfile read as data: its stages and their instructions.

No Docker engine is needed to check what the image would be: the tests read the Dockerfile,
check its instructions and run its two pip steps themselves (`test_wheel_install.py`).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    """One `FROM` of the Dockerfile and the instructions after it, in order."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def one(self, instruction: str) -> str:
        (args,) = self.all(instruction)
        return args

    def run_with(self, word: str) -> str:
        """The one RUN instruction that contains `word`."""
        (command,) = [args for args in self.all("RUN") if word in args]
        return command


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The stages of the Dockerfile, with global `ARG` defaults substituted in `FROM`."""
    arguments: dict[str, str] = {}
    found: list[Stage] = []
    for line in _logical_lines(path.read_text(encoding="utf-8")):
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG" and not found:
            key, _, value = args.partition("=")
            arguments[key.strip()] = value.strip()
        elif instruction == "FROM":
            words = re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], args).split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(words[0], name))
        else:
            found[-1].instructions.append((instruction, args))
    return found


def exec_form(args: str) -> list[str]:
    """`["a", "b"]` (exec form) or `a b` (shell form) as a list of words."""
    if args.startswith("["):
        words: list[str] = json.loads(args)
        return words
    return shlex.split(args)
