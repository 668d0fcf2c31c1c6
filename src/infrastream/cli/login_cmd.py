"""`infrastream login` and `infrastream whoami`: remember a server and token, and show who
they belong to. Login checks the token against the server before saving it, so a typo is
found now rather than at the next command. `login --sso` signs a person in with the company's
identity provider instead (`sso_login`): the token it saves is short-lived; CI keeps using
service-account tokens from `token create`.
"""

from __future__ import annotations

import typer

from .client import ApiClient, ServerOption, TokenOption, connect, resolve, write_config
from .output import CliError, Output, OutputOption, console, emit


def login(
    server: str | None = typer.Option(
        None, "--server", metavar="URL", show_default=False,
        help="Infrastream server URL [default: $INFRASTREAM_URL or http://127.0.0.1:8420]."),
    token: str | None = typer.Option(
        None, "--token", metavar="TOKEN", show_default=False,
        help="API token (prompted for when omitted, so it stays out of the shell history)."),
    sso: bool = typer.Option(
        False, "--sso",
        help="Sign in with the server's identity provider (device authorization: open the "
        "link shown, enter the code) and save a short-lived token."),
) -> None:
    """Check a server URL and API token, then save them for the other commands
    ($INFRASTREAM_CONFIG or ~/.config/infrastream/config.json, mode 0600)."""
    if sso:
        if token is not None:
            raise CliError("--sso signs you in with the identity provider; give no --token")
        from .sso_login import sso_login

        url, _ = resolve(server, None)
        sso_login(url)
        return
    if token is None:
        token = typer.prompt("API token", hide_input=True)
    url, _ = resolve(server, token)
    token = token.strip()
    if not token:
        raise CliError("the API token is empty")
    me = ApiClient(url, token).get("/whoami")
    path = write_config(url, token)
    roles = ", ".join(me.get("roles", [])) or "no roles"
    console.print(f"logged in to {url} as {me.get('name')} ({roles}); saved to {path}",
                  markup=False)


def whoami(
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Show the user the API token belongs to, their roles, and when the token expires."""
    client = connect(server, token)
    me = client.get("/whoami")
    if output is not Output.TABLE:
        emit({**me, "server": client.server}, output)
        return
    roles = ", ".join(me.get("roles", [])) or "no roles"
    expires = me.get("tokenExpiresAt")
    until = f"; token expires at {expires}" if expires else ""
    console.print(f"{me.get('name')} ({roles}) on {client.server}{until}", markup=False)
