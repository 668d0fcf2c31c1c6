"""`infrastream scm`: connect GitHub or GitLab, see what they delivered, require the check.

The API token and the webhook secret are read from stdin (two lines: token, then secret),
never from the command line where shells and `ps` keep them, and are never printed: the
server stores them encrypted and shows only the webhook URL to set on the host.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

import typer

from .client import ServerOption, TokenOption, connect
from .output import CliError, Output, OutputOption, console, emit, err_console
from .render import print_table, when

scm_app = typer.Typer(help="Git host connections (GitHub, GitLab) and the pull-request gate.",
                      no_args_is_help=True)


def _read_credentials(type_name: str, app: bool) -> tuple[str, str]:
    """Token and webhook secret: two lines of stdin, or hidden prompts on a terminal."""
    if sys.stdin.isatty():
        token = "" if app else typer.prompt(f"{type_name} API token", hide_input=True)
        secret = typer.prompt("webhook secret", hide_input=True)
        return token.strip(), secret.strip()
    lines = sys.stdin.read().splitlines()
    if len(lines) < 2 or not lines[1].strip():
        raise CliError("give the API token and the webhook secret on stdin, one per line "
                       "(the token line may be empty for a GitHub App)", exit_code=2)
    return lines[0].strip(), lines[1].strip()


@scm_app.command("add")
def add(
    type_name: str = typer.Argument(..., metavar="github|gitlab"),
    name: str = typer.Argument(..., metavar="NAME",
                               help="How Applications name it in `source.scm`."),
    url: str | None = typer.Option(None, "--url", metavar="URL", help=(
        "API root: https://HOST/api/v3 for GitHub Enterprise, https://HOST for GitLab "
        "[default: github.com, gitlab.com].")),
    public_url: str | None = typer.Option(None, "--public-url", metavar="URL", help=(
        "Where people open this Infrastream (statuses link to its Portal) "
        "[default: the server URL the CLI uses].")),
    context: str | None = typer.Option(None, "--context", metavar="NAME",
                                       help="Status context [default: infrastream/pre-release]."),
    app_id: int | None = typer.Option(None, "--app-id", metavar="ID",
                                      help="GitHub App id: report check runs as the App."),
    private_key_file: Path | None = typer.Option(None, "--private-key-file", metavar="PEM",
                                                 help="The GitHub App's private key."),
    installation_id: int | None = typer.Option(None, "--installation-id", metavar="ID"),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Connect a GitHub or GitLab account; the API token and the webhook secret are read
    from stdin, one per line."""
    private_key = None
    if private_key_file is not None:
        try:
            private_key = private_key_file.read_text()
        except OSError as exc:
            raise CliError(f"cannot read {private_key_file}: {exc.strerror or exc}") from None
    api_token, secret = _read_credentials(type_name, app_id is not None)
    created = connect(server, token).post("/scm/connections", {
        "type": type_name, "name": name, "token": api_token or None, "webhookSecret": secret,
        "baseUrl": url, "publicUrl": public_url, "context": context, "appId": app_id,
        "privateKey": private_key, "installationId": installation_id})
    if output is not Output.TABLE:
        emit(created, output)
        return
    console.print(f"connected {created['type']} as {created['name']} ({created['baseUrl']})",
                  markup=False)
    console.print(f"webhook URL: {created['webhookUrl']}", markup=False)
    err_console.print("set it on the host with the same secret; events: pull requests, "
                      "pushes (and merge groups on GitHub)", style="dim", markup=False)


@scm_app.command("list")
def list_connections(
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """List the connections (never their token or secret)."""
    items = connect(server, token).get("/scm/connections")
    if output is not Output.TABLE:
        emit(items, output)
        return
    print_table(["NAME", "TYPE", "API", "CONTEXT", "WEBHOOK URL", "ADDED", "BY"],
                [[c["name"], c["type"], c["baseUrl"], c["context"], c["webhookUrl"],
                  when(c["createdAt"]), c["createdBy"]] for c in items],
                empty="no SCM connections (add one with `infrastream scm add`)")


@scm_app.command("remove")
def remove(
    name: str = typer.Argument(..., metavar="NAME"),
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Remove a connection: its webhooks are refused from then on."""
    removed = connect(server, token).request("DELETE", f"/scm/connections/{quote(name)}")
    console.print(f"removed {removed['type']} connection {removed['name']}", markup=False)


@scm_app.command("deliveries")
def deliveries(
    connection: str | None = typer.Option(None, "--connection", metavar="NAME"),
    limit: int = typer.Option(20, "--limit", min=1, max=500, help="At most this many of each."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Recent webhook deliveries and commit-status deliveries, with their outcome."""
    found = connect(server, token).get("/scm/deliveries",
                                       {"connection": connection, "limit": limit})
    if output is not Output.TABLE:
        emit(found, output)
        return
    console.print("Webhooks received", style="bold", markup=False)
    print_table(["RECEIVED", "SCM", "EVENT", "DELIVERY", "REPOSITORY", "OUTCOME", "REASON"],
                [[when(w["receivedAt"]), w["connection"], w["event"], w["delivery"],
                  w.get("repository"), w["outcome"], w["reason"]] for w in found["webhooks"]],
                empty="no webhook deliveries")
    console.print("Statuses sent", style="bold", markup=False)
    print_table(["UPDATED", "SCM", "COMMIT", "CONTEXT", "STATE", "OUTCOME", "TRIES",
                 "DESCRIPTION / LAST ERROR"],
                [[when(s["updatedAt"]), s["connection"], s["sha"][:7], s["context"],
                  s["state"], s["outcome"], s["attempts"],
                  s["lastError"] if s["outcome"] != "delivered" and s["lastError"]
                  else s["description"]] for s in found["statuses"]],
                empty="no statuses sent")


@scm_app.command("protect")
def protect(
    repository: str = typer.Argument(..., metavar="REPO", help="owner/name or group/project."),
    branch: str = typer.Option(..., "--branch", metavar="BRANCH",
                               help="Merges into it must pass the pre-release check."),
    connection: str | None = typer.Option(None, "--connection", metavar="NAME", help=(
        "[default: the connection of the Applications that name REPO]")),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Make the pre-release status a required check for BRANCH of REPO, or print exactly
    what a person with the right must set (exit 1)."""
    result = connect(server, token).post("/scm/protect", {
        "repository": repository, "branch": branch, "connection": connection})
    if output is not Output.TABLE:
        emit(result, output)
    else:
        console.print(result["message"], markup=False)
        if result["instructions"]:
            console.print(result["instructions"], markup=False)
    if result["outcome"] == "needs-person":
        raise CliError("the check is not required yet: the token may not change the setting")
