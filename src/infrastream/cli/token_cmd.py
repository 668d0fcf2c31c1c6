"""`infrastream token`: create (for yourself or, as a service account, for another user),
list and revoke API tokens. Only the server decides who may (the `admin` role); a token's
secret is printed once, when it is created, and never again."""

from __future__ import annotations

from urllib.parse import quote

import typer

from .client import ServerOption, TokenOption, connect
from .output import Output, OutputOption, console, emit, err_console
from .render import print_table, when

token_app = typer.Typer(help="Manage API tokens (service accounts for CI included).",
                        no_args_is_help=True)


@token_app.command("create")
def create(
    user: str | None = typer.Option(None, "--user", "-u", metavar="USER",
                                    help="Whose token [default: your own]."),
    name: str | None = typer.Option(None, "--name", metavar="NAME",
                                    help="What the token is for, e.g. `ci`."),
    expires: str | None = typer.Option(None, "--expires", metavar="DURATION",
                                       help="Lifetime such as `90d` (at most 365d) "
                                       "[default: never]."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Create an API token and print it (shown once; only its hash is stored)."""
    body = {k: v for k, v in {"user": user, "name": name, "expires": expires}.items()
            if v is not None}
    created = connect(server, token).post("/tokens", body)
    if output is not Output.TABLE:
        emit(created, output)
        return
    details = created["details"]
    expiry = f", expires {when(details['expiresAt'])}" if details.get("expiresAt") else ""
    err_console.print(f"created token {details['prefix']} for {details['user']}{expiry}; "
                      "the token (shown once):", markup=False)
    console.print(created["token"], markup=False)


@token_app.command("list")
def list_tokens(
    user: str | None = typer.Option(None, "--user", "-u", metavar="USER",
                                    help="Only this user's tokens."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """List tokens: prefix, user, name, created, last used, expiry and state (never the
    secret)."""
    found = connect(server, token).get("/tokens", {"user": user})
    if output is not Output.TABLE:
        emit(found, output)
        return
    print_table(
        ["PREFIX", "USER", "NAME", "CREATED", "LAST USED", "EXPIRES", "STATE"],
        [[t["prefix"], t["user"], t["name"] or t["description"], when(t["createdAt"]),
          when(t.get("lastUsedAt")) if t.get("lastUsedAt") else "never",
          when(t.get("expiresAt")) if t.get("expiresAt") else "never", t["state"]]
         for t in found],
        empty="no tokens")


@token_app.command("revoke")
def revoke(
    prefix: str = typer.Argument(..., help="The token's prefix, as `token list` shows it."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Revoke a token: it lets nobody in from now on (API, CLI and Portal sessions)."""
    revoked = connect(server, token).request("DELETE", f"/tokens/{quote(prefix, safe='')}")
    if output is not Output.TABLE:
        emit(revoked, output)
        return
    console.print(f"revoked token {revoked['prefix']} of {revoked['user']}", markup=False)
