"""Fixtures for the command-line tests: the scaffolded example, and two ways to run the CLI
(in this process through `main()`, and as a real `infrastream` process)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from infrastream.cli.init_cmd import example_files, write_example
from infrastream.cli.main import main


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def scaffold(tmp_path: Path) -> Path:
    """A fresh copy of the `infrastream init` example repository."""
    directory = tmp_path / "demo"
    write_example(directory)
    return directory


@pytest.fixture(scope="session")
def example_count() -> int:
    """How many manifests the example holds (its YAML documents)."""
    return sum(
        1
        for path, content in example_files().items()
        if path.endswith((".yaml", ".yml"))
        for document in yaml.safe_load_all(content)
        if document is not None
    )


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run `infrastream ARGS…` in this process; returns the exit status and the output."""

    def run(*args: str | Path) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def plain_env(**extra: str) -> dict[str, str]:
    """The environment of a child CLI process: no forced colours, UTF-8, fixed width."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE",
                        "PY_COLORS", "COLUMNS", "LINES"}}
    env.update({"NO_COLOR": "1", "PYTHONIOENCODING": "utf-8", "COLUMNS": "100"})
    env.update(extra)
    return env


@pytest.fixture
def process(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `infrastream ARGS…` as a child process (cwd: the test's tmp_path)."""

    def run(*args: str | Path, stdin: str | bytes | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "infrastream.cli.main", *map(str, args)]
        data = stdin.encode() if isinstance(stdin, str) else stdin
        completed = subprocess.run(command, input=data, capture_output=True,
                                   cwd=cwd or tmp_path, env=plain_env(), timeout=60,
                                   check=False)
        return subprocess.CompletedProcess(
            completed.args, completed.returncode,
            completed.stdout.decode("utf-8", "replace"),
            completed.stderr.decode("utf-8", "replace"),
        )

    return run
