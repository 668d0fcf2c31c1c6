"""`infrastream release evidence` and `infrastream evidence verify`: the evidence pack of a
release, and checking one offline with nothing but the exported public key."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from infrastream.domain.evidence import verify_pack

from .client import ServerOption, TokenOption, connect
from .output import CliError, console

evidence_app = typer.Typer(help="Verify evidence packs offline.", no_args_is_help=True)


def release_evidence(
    ref: str = typer.Argument(..., metavar="SET/NAME", help="The release, e.g. shop/v3."),
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE",
                                help="Where to write the JSON pack (FILE.md gets Markdown)."),
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Write the signed evidence pack of a release: contents and digest, stages, checks,
    every approval and rejection, the audit entries and the signature."""
    from .release_cmd import release_path

    client = connect(server, token)
    path = release_path(ref) + "/evidence"
    pack = client.get(path)
    markdown = client.text(path, {"format": "markdown"})
    output.write_text(json.dumps(pack, indent=2, sort_keys=True) + "\n")
    readable = output.with_suffix(".md")
    readable.write_text(markdown)
    console.print(f"evidence of {ref} written to {output} (readable: {readable})",
                  markup=False)


@evidence_app.command("verify")
def verify(
    pack: Path = typer.Argument(..., metavar="FILE", help="An evidence pack (JSON)."),
    public_key: Path = typer.Option(..., "--public-key", metavar="PEM",
                                    help="The key from `infrastream audit public-key`."),
) -> None:
    """Verify an evidence pack offline: signature, audit entry hashes and release digest."""
    try:
        data = json.loads(pack.read_text())
        key = public_key.read_bytes()
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read: {exc}", exit_code=2) from None
    verdict = verify_pack(data, key)
    if not verdict.ok:
        raise CliError(f"{pack} does NOT verify: {verdict.reason}")
    console.print(f"{pack} verifies: signed by the given key, entries and digest intact",
                  style="green", markup=False)
