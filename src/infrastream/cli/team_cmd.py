"""`infrastream team`: teams own manifests together (`metadata.team`). Admins create them
with their Git host handles and manage members; the server enforces who may change what."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import typer

from .client import ServerOption, TokenOption, connect
from .output import Output, OutputOption, console, emit

team_app = typer.Typer(help="Teams that own manifests.", no_args_is_help=True)


def _show(team: dict[str, Any], output: Output) -> None:
    if output is not Output.TABLE:
        emit(team, output)
        return
    handles = ", ".join(f"{h} {v}" for h, v in sorted(team.get("handles", {}).items()))
    console.print(f"team {team['name']}: members "
                  f"{', '.join(team.get('members', [])) or '-'}; handles {handles or '-'}",
                  markup=False)


@team_app.command("create")
def create(name: str = typer.Argument(...),
           description: str = typer.Option("", "--description"),
           github: str | None = typer.Option(None, "--github", metavar="@ORG/TEAM"),
           gitlab: str | None = typer.Option(None, "--gitlab", metavar="@GROUP"),
           output: Output = OutputOption, server: str | None = ServerOption,
           token: str | None = TokenOption) -> None:
    """Create a team (admin), with the handles that name it on the Git hosts."""
    handles = {k: v for k, v in {"github": github, "gitlab": gitlab}.items() if v}
    _show(connect(server, token).post("/teams", {"name": name, "description": description,
                                                 "handles": handles}), output)


@team_app.command("add-member")
def add_member(team: str = typer.Argument(...), user: str = typer.Argument(...),
               output: Output = OutputOption, server: str | None = ServerOption,
               token: str | None = TokenOption) -> None:
    """Add a user to a team (admin)."""
    _show(connect(server, token).request(
        "PUT", f"/teams/{quote(team, safe='')}/members/{quote(user, safe='')}"), output)


@team_app.command("remove-member")
def remove_member(team: str = typer.Argument(...), user: str = typer.Argument(...),
                  output: Output = OutputOption, server: str | None = ServerOption,
                  token: str | None = TokenOption) -> None:
    """Remove a user from a team (admin)."""
    _show(connect(server, token).request(
        "DELETE", f"/teams/{quote(team, safe='')}/members/{quote(user, safe='')}"), output)


@team_app.command("list")
def list_teams(output: Output = OutputOption, server: str | None = ServerOption,
               token: str | None = TokenOption) -> None:
    """List teams with their members and handles."""
    found = connect(server, token).get("/teams")
    if output is not Output.TABLE:
        emit(found, output)
        return
    for team in found:
        _show(team, output)
    if not found:
        console.print("no teams", markup=False)
