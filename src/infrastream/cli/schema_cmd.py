"""`infrastream schema`: the JSON Schema of the manifests, for editors and CI linters."""

from __future__ import annotations

import json

import typer

from infrastream.manifests import KINDS
from infrastream.manifests.diagnostics import did_you_mean
from infrastream.manifests.schema import json_schema

from .output import CliError


def schema(
    kind: str | None = typer.Option(None, "--kind", help="Only this kind (e.g. ReleaseTrack)."),
) -> None:
    """Print the JSON Schema of the manifests (all kinds, or one with --kind)."""
    if kind is not None and kind not in KINDS:
        raise CliError(f"unknown kind `{kind}`; {did_you_mean(kind, KINDS)}", exit_code=2)
    typer.echo(json.dumps(json_schema(kind), indent=2))
