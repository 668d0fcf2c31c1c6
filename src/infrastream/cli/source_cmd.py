"""`infrastream source` and `infrastream codeowners`: Git repositories as the source of truth
for manifests. The server clones, fetches, validates and applies; this module asks it and
prints the answer (the diagnostics of an invalid commit as `validate` prints them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer
from rich.table import Table

from .client import ServerOption, TokenOption, connect, print_diagnostics
from .output import CliError, Output, OutputOption, console, emit, err_console
from .render import print_table, when

source_app = typer.Typer(help="Manifests from Git: add, list, inspect and sync sources.",
                         no_args_is_help=True)


def _path(name: str) -> str:
    return f"/sources/{quote(name, safe='')}"


def _show(source: dict[str, Any], output: Output) -> None:
    if output is not Output.TABLE:
        emit(source, output)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in (("source", source["name"]), ("state", source["state"]),
                         ("repository", source["repository"]), ("branch", source["branch"]),
                         ("path", source["path"] or "/"),
                         ("applied", source.get("appliedCommit") or "-"),
                         ("synced", when(source.get("syncedAt"))),
                         ("message", source.get("message", ""))):
        grid.add_row(label, str(value))
    console.print(grid)
    print_diagnostics(source.get("diagnostics"))


@source_app.command("add")
def add(
    name: str = typer.Argument(..., help="Name of the source (lowercase letters, digits, -)."),
    repository: str = typer.Option(..., "--repository", metavar="URL",
                                   help="Clone URL or path (file://, https, ssh)."),
    branch: str = typer.Option("main", "--branch", help="The branch that is the truth."),
    path: str = typer.Option("", "--path", help="Directory of the manifests in the repo."),
    scm: str | None = typer.Option(None, "--scm", metavar="CONNECTION",
                                   help="SCM connection whose token fetches the repository."),
    interval: int = typer.Option(60, "--interval", help="Seconds between fetches."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Add a manifest source (platform): the server fetches it and applies every commit."""
    _show(connect(server, token).post("/sources", {
        "name": name, "repository": repository, "branch": branch, "path": path, "scm": scm,
        "interval": interval}), output)


@source_app.command("list")
def list_sources(output: Output = OutputOption, server: str | None = ServerOption,
                 token: str | None = TokenOption) -> None:
    """List the manifest sources and what each applied last."""
    found = connect(server, token).get("/sources")
    if output is not Output.TABLE:
        emit(found, output)
        return
    print_table(["SOURCE", "STATE", "BRANCH", "PATH", "APPLIED", "SYNCED", "REPOSITORY"],
                [[s["name"], s["state"], s["branch"], s["path"] or "/",
                  (s.get("appliedCommit") or "-")[:12], when(s.get("syncedAt")),
                  s["repository"]] for s in found], empty="no manifest sources")


@source_app.command("status")
def status(name: str = typer.Argument(...), output: Output = OutputOption,
           server: str | None = ServerOption, token: str | None = TokenOption) -> None:
    """One source: its state, the commit applied, and every diagnostic of a bad commit."""
    _show(connect(server, token).get(_path(name)), output)


@source_app.command("sync")
def sync(name: str = typer.Argument(...), output: Output = OutputOption,
         server: str | None = ServerOption, token: str | None = TokenOption) -> None:
    """Fetch and apply the source's branch now (platform)."""
    result = connect(server, token).post(f"{_path(name)}/sync")
    _show(result, output)
    if result.get("state") == "error":
        raise CliError(f"source {name}: {result.get('message')}")


@source_app.command("checks")
def checks(name: str = typer.Argument(...), output: Output = OutputOption,
           server: str | None = ServerOption, token: str | None = TokenOption) -> None:
    """The source's manifest pull-request checks: verdict and who must approve."""
    found = connect(server, token).get(f"{_path(name)}/checks")
    if output is not Output.TABLE:
        emit(found, output)
        return
    print_table(["PR", "COMMIT", "STATE", "VERDICT", "NEEDS", "MESSAGE"],
                [[f"#{c['number']}", c["sha"][:12], c["state"], c.get("verdict") or "-",
                  ", ".join(c.get("reviewers") or []) or "-", c["message"]] for c in found],
                empty="no pull request has been checked")


def codeowners(
    source: str = typer.Argument(..., help="The manifest source whose repository it is for."),
    host: str = typer.Option("github", "--host", help="github or gitlab."),
    owner: list[str] = typer.Option([], "--owner", metavar="ROLE=@HANDLE",
                                    help="Who reviews a role's kinds when no team does "
                                    "(repeat), e.g. platform=@acme/platform."),
    out: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Print a CODEOWNERS file for the source's repository from the ownership rules."""
    params = {"host": host, "owner": owner}
    text = connect(server, token).text(f"{_path(source)}/codeowners", params)
    if out is None:
        console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
    else:
        out.write_text(text)
        err_console.print(f"wrote {out}", markup=False)
