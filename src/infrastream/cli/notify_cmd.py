"""`infrastream notifications`: channels (Slack, Teams, email, signed webhooks) and what was
delivered to them.

Secrets (a Slack or Teams webhook URL, the SMTP password, the webhook's signing secret) are
read from a file or an environment variable, never from the command line where shells and
`ps` keep them, and are never printed: the server stores them encrypted and shows only the
receiver's host.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import typer

from .client import ServerOption, TokenOption, connect
from .output import CliError, Output, OutputOption, console, emit
from .render import print_table, when

channel_app = typer.Typer(help="Where notifications go: Slack, Teams, email, webhooks.",
                          no_args_is_help=True)
add_app = typer.Typer(help="Add a channel.", no_args_is_help=True)
channel_app.add_typer(add_app, name="add")


def _secret(what: str, file: Path | None, env: str | None, *, required: bool = True) -> str:
    if file is not None and env is not None:
        raise CliError(f"give the {what} by file or by environment variable, not both",
                       exit_code=2)
    if file is not None:
        try:
            value = file.read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror or exc}") from None
    elif env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise CliError(f"the environment variable {env} is not set", exit_code=2)
    elif required:
        raise CliError(f"give the {what} with a --…-file or --…-env option", exit_code=2)
    else:
        return ""
    if required and not value:
        raise CliError(f"the {what} is empty", exit_code=2)
    return value


def _added(created: dict[str, object], output: Output) -> None:
    if output is not Output.TABLE:
        emit(created, output)
        return
    console.print(f"added {created['kind']} channel {created['name']} "
                  f"({_shown(created)})", markup=False)


def _webhook_channel(kind: str, name: str, url_file: Path | None, url_env: str | None,
                     output: Output, server: str | None, token: str | None) -> None:
    url = _secret("webhook URL", url_file, url_env)
    _added(connect(server, token).post("/notification-channels", {
        "kind": kind, "name": name, "webhookUrl": url}), output)


UrlFile = typer.Option(None, "--webhook-url-file", metavar="FILE",
                       help="A file holding the incoming webhook URL (a secret).")
UrlEnv = typer.Option(None, "--webhook-url-env", metavar="VAR",
                      help="An environment variable holding the webhook URL.")


@add_app.command("slack")
def add_slack(name: str = typer.Argument(..., metavar="NAME"),
              webhook_url_file: Path | None = UrlFile, webhook_url_env: str | None = UrlEnv,
              output: Output = OutputOption, server: str | None = ServerOption,
              token: str | None = TokenOption) -> None:
    """A Slack channel, through its incoming webhook."""
    _webhook_channel("slack", name, webhook_url_file, webhook_url_env, output, server, token)


@add_app.command("teams")
def add_teams(name: str = typer.Argument(..., metavar="NAME"),
              webhook_url_file: Path | None = UrlFile, webhook_url_env: str | None = UrlEnv,
              output: Output = OutputOption, server: str | None = ServerOption,
              token: str | None = TokenOption) -> None:
    """A Microsoft Teams channel, through a Workflows webhook."""
    _webhook_channel("teams", name, webhook_url_file, webhook_url_env, output, server, token)


@add_app.command("email")
def add_email(
    name: str = typer.Argument(..., metavar="NAME"),
    smtp_host: str = typer.Option(..., "--smtp-host", metavar="HOST"),
    smtp_port: int = typer.Option(25, "--smtp-port", metavar="PORT"),
    sender: str = typer.Option(..., "--from", metavar="ADDR"),
    to: list[str] = typer.Option([], "--to", metavar="ADDR",
                                 help="Also mail every notification here (repeatable)."),
    username: str | None = typer.Option(None, "--username", metavar="USER"),
    password_env: str | None = typer.Option(None, "--password-env", metavar="VAR",
                                            help="An environment variable holding the "
                                                 "SMTP password."),
    starttls: bool = typer.Option(False, "--starttls", help="Upgrade with STARTTLS."),
    output: Output = OutputOption, server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Email over SMTP, to the notification's recipients and the --to addresses."""
    password = _secret("SMTP password", None, password_env, required=False)
    _added(connect(server, token).post("/notification-channels", {
        "kind": "email", "name": name, "smtpHost": smtp_host, "smtpPort": smtp_port,
        "from": sender, "to": to or None, "username": username, "password": password or None,
        "starttls": starttls}), output)


@add_app.command("webhook")
def add_webhook(
    name: str = typer.Argument(..., metavar="NAME"),
    url: str = typer.Option(..., "--url", metavar="URL", help="Where to POST."),
    secret_file: Path | None = typer.Option(None, "--secret-file", metavar="FILE",
                                            help="A file holding the signing secret."),
    secret_env: str | None = typer.Option(None, "--secret-env", metavar="VAR"),
    output: Output = OutputOption, server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """A signed webhook (CloudEvents headers, Standard Webhooks signature)."""
    secret = _secret("signing secret", secret_file, secret_env)
    _added(connect(server, token).post("/notification-channels", {
        "kind": "webhook", "name": name, "url": url, "secret": secret}), output)


def _shown(channel: dict[str, object]) -> str:
    public = channel.get("public") or {}
    assert isinstance(public, dict)
    parts = [str(public.get("host") or "")]
    if public.get("from"):
        parts.append(f"from {public['from']}")
    if public.get("to"):
        parts.append("to " + ", ".join(str(a) for a in public["to"]))
    return ", ".join(p for p in parts if p)


@channel_app.command("list")
def list_channels(output: Output = OutputOption, server: str | None = ServerOption,
                  token: str | None = TokenOption) -> None:
    """The channels (never their webhook URL, password or secret)."""
    items = connect(server, token).get("/notification-channels")
    if output is not Output.TABLE:
        emit(items, output)
        return
    print_table(["NAME", "KIND", "RECEIVER", "ADDED", "BY"],
                [[c["name"], c["kind"], _shown(c), when(c["createdAt"]), c["createdBy"]]
                 for c in items],
                empty="no notification channels (add one with "
                      "`infrastream notifications channel add`)")


@channel_app.command("get")
def get_channel(name: str = typer.Argument(..., metavar="NAME"),
                output: Output = OutputOption, server: str | None = ServerOption,
                token: str | None = TokenOption) -> None:
    found = connect(server, token).get(f"/notification-channels/{quote(name)}")
    if output is not Output.TABLE:
        emit(found, output)
        return
    print_table(["NAME", "KIND", "RECEIVER", "ADDED", "BY"],
                [[found["name"], found["kind"], _shown(found), when(found["createdAt"]),
                  found["createdBy"]]])


@channel_app.command("delete")
def delete_channel(name: str = typer.Argument(..., metavar="NAME"),
                   server: str | None = ServerOption, token: str | None = TokenOption) -> None:
    removed = connect(server, token).request("DELETE", f"/notification-channels/{quote(name)}")
    console.print(f"deleted {removed['kind']} channel {removed['name']}", markup=False)


@channel_app.command("test")
def test_channel(name: str = typer.Argument(..., metavar="NAME"),
                 output: Output = OutputOption, server: str | None = ServerOption,
                 token: str | None = TokenOption) -> None:
    """Send a test notification now and print the receiver's answer (exit 1 if refused)."""
    result = connect(server, token).post(f"/notification-channels/{quote(name)}/test")
    if output is not Output.TABLE:
        emit(result, output)
    elif result["delivered"]:
        console.print(f"delivered to {name}: {result['answer']}", markup=False)
    if not result["delivered"]:
        raise CliError(f"not delivered to {name}: {result['answer']}")


def deliveries(
    outcome: str | None = typer.Option(None, "--outcome", metavar="pending|delivered|failed"),
    channel: str | None = typer.Option(None, "--channel", metavar="NAME"),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    output: Output = OutputOption, server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Notifications delivered (or still tried) per channel, newest first."""
    items = connect(server, token).get("/notification-deliveries", {
        "outcome": outcome, "channel": channel, "limit": limit})
    if output is not Output.TABLE:
        emit(items, output)
        return
    print_table(["CREATED", "CHANNEL", "EVENT", "TITLE", "OUTCOME", "TRIES", "LAST ERROR"],
                [[when(d["createdAt"]), d["channel"], d["kind"], d["title"], d["outcome"],
                  d["attempts"], d["lastError"]] for d in items],
                empty="no notification deliveries")


def register(group: typer.Typer) -> None:
    group.add_typer(channel_app, name="channel")
    group.command("deliveries")(deliveries)
