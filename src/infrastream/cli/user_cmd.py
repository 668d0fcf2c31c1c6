"""`infrastream user`: create users with roles (printing their API token once), list,
disable and enable them. Who may do so is decided by the server (the `admin` role)."""

from __future__ import annotations

from urllib.parse import quote

import typer

from .client import ServerOption, TokenOption, connect
from .output import CliError, Output, OutputOption, console, emit, err_console
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
    email: str | None = typer.Option(None, "--email", metavar="ADDRESS",
                                     help="Where notifications mail them."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Create a user and print their API token (shown once; only its hash is stored)."""
    body: dict[str, object] = {"name": name, "roles": roles}
    if email:
        body["email"] = email
    created = connect(server, token).post("/users", body)
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


@user_app.command("get")
def get(
    name: str = typer.Argument(..., help="The user to show."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Show a user: roles, email address, who created them, whether they are disabled."""
    user = connect(server, token).get(f"/users/{quote(name, safe='')}")
    if output is not Output.TABLE:
        emit(user, output)
        return
    print_table(["NAME", "ROLES", "EMAIL", "CREATED", "BY", "DISABLED"],
                [[user["name"], ", ".join(user["roles"]), user.get("email") or "-",
                  when(user.get("createdAt")), user.get("createdBy"),
                  "yes" if user.get("disabled") else "no"]])


@user_app.command("set-email")
def set_email(
    name: str = typer.Argument(..., help="The user."),
    email: str | None = typer.Argument(None, metavar="ADDRESS",
                                       help="The address notifications mail them at."),
    clear: bool = typer.Option(False, "--clear", help="Remove the address instead."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Set (or `--clear`) the email address notifications mail a user at."""
    if clear == (email is not None):
        raise CliError("give an ADDRESS or --clear")
    user = connect(server, token).request("PUT", f"/users/{quote(name, safe='')}/email",
                                          body={"email": None if clear else email})
    if output is not Output.TABLE:
        emit(user, output)
        return
    console.print(f"{user['name']}: " + (f"email {user['email']}" if user.get("email")
                                         else "no email address"), markup=False)


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
