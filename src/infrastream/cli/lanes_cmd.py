"""`infrastream hotfix`, `prerelease` and `rollback`: the emergency lane, pull-request
validation and putting an environment back. Thin: the server decides and records."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import typer

from .client import ServerOption, TokenOption, connect
from .output import CliError, Output, OutputOption, console, emit, err_console
from .render import print_table, when

hotfix_app = typer.Typer(help="Emergency fixes through the track's hotfixStages.",
                         no_args_is_help=True)
prerelease_app = typer.Typer(help="Validate pull-request builds in the pre-release lane.",
                             no_args_is_help=True)


def _pairs(values: list[str]) -> dict[str, str]:
    pairs = {}
    for value in values:
        app, equals, image = value.partition("=")
        if not equals or not app or not image:
            raise CliError(f"`{value}` is not APP=IMAGE_REF", exit_code=2)
        pairs[app] = image
    return pairs


@hotfix_app.command("create")
def create_hotfix(
    app_set: str = typer.Argument(..., metavar="SET", help="The ApplicationSet to fix."),
    apps: list[str] = typer.Option(..., "--app", metavar="APP=IMAGE_REF",
                                   help="An application and its fixed build (repeatable)."),
    incident: str = typer.Option(..., "--incident", metavar="ID",
                                 help="The incident this fixes (required)."),
    name: str | None = typer.Option(None, "--name", metavar="V",
                                    help="Name [default: <production release>-hotfix.N]."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Start a hotfix from the release in production, replacing the named applications."""
    created = connect(server, token).post("/hotfixes", {
        "applicationSet": app_set, "apps": _pairs(apps), "incident": incident, "name": name})
    if output is not Output.TABLE:
        emit(created, output)
        return
    console.print(f"hotfix {created['release']} for incident {created['incident']} created "
                  f"from {created['base']}", markup=False)
    err_console.print(f"follow it: infrastream release status {created['release']} --wait",
                      style="dim", markup=False)


@prerelease_app.command("run")
def run_prerelease(
    app: str = typer.Argument(..., metavar="APP", help="The application the PR changes."),
    image: str = typer.Option(..., "--image", metavar="REF", help="The PR build's image."),
    ref: str = typer.Option(..., "--ref", metavar="PR-OR-BRANCH",
                            help="Pull request or branch, e.g. pull/17."),
    commit: str | None = typer.Option(None, "--commit", metavar="SHA"),
    wait: bool = typer.Option(False, "--wait", help="Wait for the result; exit 1 if failed."),
    timeout: float = typer.Option(600, "--timeout", help="Seconds to wait at most."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Deploy a PR build of one application to the first pre-release environment and run its
    integration tests there, beside the other applications."""
    client = connect(server, token)
    run = client.post("/prereleases", {"application": app, "image": image, "ref": ref,
                                       "commit": commit})
    if wait:
        deadline = time.monotonic() + timeout
        with err_console.status(f"pre-release run {run['id']} of {app} ({ref})…"):
            while run["state"] in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(1.0)
                run = client.get(f"/prereleases/{run['id']}")
    _show(run, output)
    if wait and run["state"] != "passed":
        raise CliError(f"pre-release run {run['id']} {run['state']}: {run['summary']}")


def _show(run: dict[str, Any], output: Output) -> None:
    if output is not Output.TABLE:
        emit(run, output)
        return
    console.print(f"pre-release run {run['id']}: {run['application']} {run['image']} "
                  f"({run['ref']}) in {run['environment']}: {run['state']}", markup=False)
    if run.get("summary"):
        console.print(run["summary"], markup=False)
    if run.get("output"):
        console.print(run["output"], markup=False, style="dim")


@prerelease_app.command("status")
def prerelease_status(
    run_id: int = typer.Argument(..., metavar="ID"),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Show one pre-release run with its test output."""
    _show(connect(server, token).get(f"/prereleases/{run_id}"), output)


@prerelease_app.command("list")
def list_prereleases(
    app: str | None = typer.Option(None, "--app", metavar="APP"),
    pull_request: int | None = typer.Option(
        None, "--pull-request", metavar="N", min=1,
        help="The runs the gate started for pull request N, by head commit."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """List pre-release runs, newest first."""
    if pull_request is not None:
        _list_by_pull_request(connect(server, token).get(
            "/scm/pull-requests", {"number": pull_request, "application": app}), output)
        return
    runs = connect(server, token).get("/prereleases", {"application": app})
    if output is not Output.TABLE:
        emit(runs, output)
        return
    print_table(["ID", "APP", "REF", "IMAGE", "STATE", "CREATED", "SUMMARY"],
                [[r["id"], r["application"], r["ref"], r["image"], r["state"],
                  when(r.get("createdAt")), r.get("summary", "")] for r in runs],
                empty="no pre-release runs")


def _list_by_pull_request(heads: list[dict[str, Any]], output: Output) -> None:
    if output is not Output.TABLE:
        emit(heads, output)
        return
    print_table(["PULL REQUEST", "COMMIT", "HEAD", "APP", "RUN", "STATE", "STATUS"],
                [[f"{h['repository']}#{h['number']}", h["sha"][:7], h["state"], r["app"],
                  r.get("runId") or "-", r.get("runState") or r["state"],
                  (h.get("status") or {}).get("description", "")]
                 for h in heads for r in h["runs"]],
                empty="no pre-release runs for that pull request")


def rollback(
    environment: str = typer.Argument(..., metavar="ENV"),
    to: str | None = typer.Option(None, "--to", metavar="SET/NAME",
                                  help="Release to return to [default: the previous one]."),
    reason: str = typer.Option(..., "--reason", metavar="TEXT",
                               help="Why (required; shown to everyone and audited)."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Redeploy the newest release that succeeded in ENV before the current one and was not
    rolled back from there (or --to a release that ran there)."""
    result = connect(server, token).post(
        f"/environments/{quote(environment, safe='')}/rollbacks", {"to": to, "reason": reason})
    if output is not Output.TABLE:
        emit(result, output)
        return
    console.print(f"rolling {result['environment']} back from {result['from']} to "
                  f"{result['to']}", markup=False)
