"""`infrastream secret`: set secret variables per environment and application. Values are
read from stdin (never from the command line, where shells and `ps` would keep them) and
are never shown again."""

from __future__ import annotations

import sys
from urllib.parse import quote

import typer

from .client import ServerOption, TokenOption, connect
from .output import CliError, Output, OutputOption, console, emit
from .render import print_table, when

secret_app = typer.Typer(help="Secret variables (values are write-only).", no_args_is_help=True)


@secret_app.command("set")
def set_secret(
    environment: str = typer.Argument(..., metavar="ENV"),
    app: str = typer.Argument(..., metavar="APP"),
    name: str = typer.Argument(..., metavar="NAME"),
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Set APP's secret variable NAME in ENV to the value read from stdin."""
    if sys.stdin.isatty():
        value = typer.prompt(f"value of {name}", hide_input=True)
    else:
        value = sys.stdin.read().rstrip("\n")
    if not value:
        raise CliError("no value on stdin", exit_code=2)
    path = "/secrets/" + "/".join(quote(p, safe="") for p in (environment, app, name))
    result = connect(server, token).request("PUT", path, body={"value": value})
    console.print(f"secret {result['name']} of {result['application']} in "
                  f"{result['environment']} set", markup=False)


@secret_app.command("list")
def list_secrets(
    environment: str | None = typer.Option(None, "--env", metavar="ENV"),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """List secret variables that have a value (names only)."""
    items = connect(server, token).get("/secrets", {"environment": environment})
    if output is not Output.TABLE:
        emit(items, output)
        return
    print_table(["ENVIRONMENT", "APPLICATION", "NAME", "UPDATED", "BY"],
                [[s["environment"], s["application"], s["name"], when(s["updatedAt"]),
                  s["updatedBy"]] for s in items], empty="no secrets")
