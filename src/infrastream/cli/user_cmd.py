"""`infrastream user`: create users with roles (printing their API token once), list,
disable and enable them. Who may do so is decided by the server (the `admin` role)."""

from __future__ import annotations

from urllib.parse import quote

import typer

from .client import ServerOption, TokenOption, connect
from .output import Output, OutputOption, console, emit, err_console
from .render import print_table, when

user_app = typer.Typer(help="Manage users and their roles (tokens: `infrastream token`).",
                       no_args_is_help=True)


@user_app.command("create")
def create(
    name: str = typer.Argument(..., help="User name (lowercase letters, digits and `-`)."),
    roles: list[str] = typer.Option(
        ..., "--role", "-r", metavar="ROLE",
        help="A role to grant (repeat for several): developer, release-manager, platform, "
        "qa, product, security, incident-commander, admin."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Create a user and print their API token (shown once; only its hash is stored)."""
    created = connect(server, token).post("/users", {"name": name, "roles": roles})
    if output is not Output.TABLE:
        emit(created, output)
        return
    err_console.print(f"created user {created['name']} with roles "
                      f"{', '.join(created['roles'])}; their API token (shown once):",
                      markup=False)
    console.print(created["token"], markup=False)


@user_app.command("list")
def list_users(
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """List users with their roles."""
    users = connect(server, token).get("/users")
    if output is not Output.TABLE:
        emit(users, output)
        return
    print_table(
        ["NAME", "ROLES", "CREATED", "BY", "DISABLED"],
        [[u["name"], ", ".join(u["roles"]), when(u.get("createdAt")), u.get("createdBy"),
          "yes" if u.get("disabled") else "no"] for u in users],
        empty="no users")


@user_app.command("disable")
def disable(
    name: str = typer.Argument(..., help="The user to disable."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Disable a user: every token of theirs and every Portal session stops working at once."""
    user = connect(server, token).post(f"/users/{quote(name, safe='')}/disable")
    if output is not Output.TABLE:
        emit(user, output)
        return
    console.print(f"disabled user {user['name']}: their tokens and sessions no longer work",
                  markup=False)


@user_app.command("enable")
def enable(
    name: str = typer.Argument(..., help="The user to enable again."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Enable a disabled user again (their tokens that are neither revoked nor expired work)."""
    user = connect(server, token).post(f"/users/{quote(name, safe='')}/enable")
    if output is not Output.TABLE:
        emit(user, output)
        return
    console.print(f"enabled user {user['name']}", markup=False)


@user_app.command("end-sessions")
def end_sessions(
    name: str = typer.Argument(..., help="The user whose sign-in sessions to end."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """End every sign-in session of a user (portal and `login --sso`) at once; their
    automation tokens keep working (revoke those with `token revoke`)."""
    ended = connect(server, token).post(f"/users/{quote(name, safe='')}/end-sessions")
    if output is not Output.TABLE:
        emit(ended, output)
        return
    console.print(f"ended {ended['ended']} session(s) of {ended['user']}", markup=False)
