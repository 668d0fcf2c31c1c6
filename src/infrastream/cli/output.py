"""Rendering command results: Rich for people, `-o json|yaml` for machines."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOption = typer.Option(
    Output.TABLE, "--output", "-o", help="Output format: table (for people), json or yaml."
)


def emit(data: Any, output: Output) -> None:
    """Print `data` as JSON or YAML (plain stdout, no styling)."""
    if output is Output.JSON:
        typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    else:
        import yaml  # only for -o yaml: most commands never need the YAML library

        typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


class CliError(Exception):
    """A failure to report as one line on stderr with a non-zero exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
