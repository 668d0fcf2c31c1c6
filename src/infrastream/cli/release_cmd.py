"""`infrastream release`: cut releases, follow them stage by stage, request promotions and
sign them off. Every decision (who may, whether gates are met) is the server's; this module
sends the request and shows the answer.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer

from .client import ApiClient, ServerOption, TokenOption, connect
from .output import CliError, Output, OutputOption, console, emit, err_console
from .release_view import outcome, render_status
from .render import print_table, when

release_app = typer.Typer(help="Cut, follow, promote, approve and reject releases.",
                          no_args_is_help=True)
POLL_SECONDS = 1.0
HELD_SECONDS = 30
"""The longest one read of `release status --wait` is held by the server."""


def release_path(ref: str) -> str:
    """The API path of a `SET/NAME` release reference."""
    app_set, slash, name = ref.partition("/")
    if not slash or not app_set or not name or "/" in name:
        raise CliError(f"`{ref}` is not a release reference: use SET/NAME, e.g. shop/v3",
                       exit_code=2)
    return f"/releases/{quote(app_set, safe='')}/{quote(name, safe='')}"


RefArgument = typer.Argument(..., metavar="SET/NAME", help="The release, e.g. shop/v3.")


@release_app.command("create")
def create(
    app_set: str = typer.Argument(..., metavar="SET", help="The ApplicationSet to release."),
    name: str | None = typer.Option(None, "--name", metavar="V",
                                    help="Release name [default: the next vN]."),
    override: str | None = typer.Option(
        None, "--override-forward-port", metavar="REASON",
        help="Cut it although it would roll back a hotfix in production (recorded)."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Cut a release: freeze the latest recorded version of every application of the set.
    It deploys to the first stage of its track at once."""
    created = connect(server, token).post("/releases", {"applicationSet": app_set,
                                                        "name": name,
                                                        "forwardPortOverride": override})
    if output is not Output.TABLE:
        emit(created, output)
        return
    versions = ", ".join(f"{app}={v.get('version')}"
                         for app, v in sorted(created.get("versions", {}).items()))
    console.print(f"release {created['release']} created ({versions})\n"
                  f"digest {created.get('digest')}", markup=False)
    err_console.print(f"follow it: infrastream release status {created['release']} --wait",
                      style="dim", markup=False)


@release_app.command("list")
def list_releases(
    app_set: str | None = typer.Option(None, "--set", metavar="SET",
                                       help="Only releases of this ApplicationSet."),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="At most this many."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """List releases, newest first."""
    items = connect(server, token).get("/releases", {"applicationSet": app_set,
                                                     "limit": limit})
    if output is not Output.TABLE:
        emit(items, output)
        return
    print_table(
        ["RELEASE", "LANE", "STATE", "CREATED", "BY", "DIGEST"],
        [[r["release"], r.get("lane"), r.get("state"), when(r.get("createdAt")),
          r.get("createdBy"), str(r.get("digest", ""))[:19]] for r in items],
        empty="no releases")


@release_app.command("status")
def status(
    ref: str = RefArgument,
    wait: bool = typer.Option(
        False, "--wait", help="Follow the release until it completes, a stage fails or is "
        "rejected, or the last requested stage succeeds (exit 1 on failure or timeout)."),
    timeout: int = typer.Option(120, "--timeout", min=1, metavar="SECONDS",
                                help="With --wait: give up after this many seconds."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Show a release per stage: environments, checks, approvals and what it waits for."""
    path = release_path(ref)
    client = connect(server, token)
    current = _wait(client, path, timeout) if wait else client.get(path)
    if output is not Output.TABLE:
        emit(current, output)
    else:
        console.print(render_status(current), soft_wrap=False)
    if wait:
        done, failure = outcome(current)
        if failure:
            raise CliError(failure)
        if not done:
            raise CliError(f"timed out after {timeout}s waiting for {current['release']}: "
                           f"{current.get('summary')}")


def _wait(client: ApiClient, path: str, timeout: int) -> dict[str, Any]:
    """Follow the release until it completes, fails or `timeout` passes: each read is held
    by the server until the release changes (`ApiClient.watch`), so the answer comes at
    once; a server that holds no reads is polled every POLL_SECONDS instead."""
    deadline = time.monotonic() + timeout
    first, tag = client.watch(path, None, 0)
    current: dict[str, Any] = first or {}
    with err_console.status(f"{current['release']}: {current.get('summary')}") as spinner:
        while not outcome(current)[0] and (left := deadline - time.monotonic()) > 0:
            if tag is None:
                time.sleep(min(POLL_SECONDS, left))
            moved, tag = client.watch(path, tag, min(HELD_SECONDS, max(1, int(left))))
            if moved is not None:
                current = moved
                spinner.update(f"{current['release']}: {current.get('summary')}")
    return current


@release_app.command("promote")
def promote(
    ref: str = RefArgument,
    override_forward_port: str | None = typer.Option(
        None, "--override-forward-port", metavar="REASON",
        help="Enter production although a hotfix there would be rolled back (recorded)."),
    override_freeze: str | None = typer.Option(
        None, "--override-freeze", metavar="REASON",
        help="Promote through a freeze window (needs the window's override role; recorded)."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Request promotion to the next stage (or retry a failed or rejected one). It proceeds
    once the current stage succeeded and the next stage's approvals are given."""
    result = connect(server, token).post(f"{release_path(ref)}/promotions", {
        "forwardPortOverride": override_forward_port, "freezeOverride": override_freeze})
    if output is not Output.TABLE:
        emit(result, output)
        return
    needs = ", ".join(result.get("approvalsRequired", []))
    console.print(f"promotion of {result['release']} to {result['stage']} requested"
                  + (f" (needs {needs})" if needs else ""), markup=False)
    for freeze in result.get("frozen") or []:
        held = "overridden" if result.get("freezeOverride") else "waits"
        err_console.print(f"{freeze}: the promotion {held}", style="yellow", markup=False)


@release_app.command("approve")
def approve(
    ref: str = RefArgument,
    role: str | None = typer.Option(
        None, "--role", metavar="ROLE",
        help="The role you sign as [default: the one rule you can satisfy]."),
    comment: str = typer.Option("", "--comment", metavar="TEXT",
                                help="A note kept with the approval."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Approve the promotion of a release that is waiting for sign-offs."""
    result = connect(server, token).post(f"{release_path(ref)}/approvals",
                                         {"role": role, "comment": comment})
    if output is not Output.TABLE:
        emit(result, output)
        return
    console.print(f"{result.get('approvedBy')} approved the promotion of {result['release']} "
                  f"to {result['stage']} as {result['role']}", markup=False)


@release_app.command("reject")
def reject(
    ref: str = RefArgument,
    reason: str = typer.Option(..., "--reason", metavar="TEXT",
                               help="Why (required; shown to everyone and audited)."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Reject the promotion of a release that is waiting for sign-offs; it stops there."""
    result = connect(server, token).post(f"{release_path(ref)}/rejections",
                                         {"reason": reason})
    if output is not Output.TABLE:
        emit(result, output)
        return
    console.print(f"{result.get('rejectedBy')} rejected the promotion of {result['release']} "
                  f"to {result['stage']}: {result['reason']}", markup=False)


@release_app.command("abandon")
def abandon(
    ref: str = RefArgument,
    reason: str = typer.Option(..., "--reason", metavar="TEXT",
                               help="Why (required; shown to everyone and audited)."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Stop a release for good: it stops waiting, leaves every queue and can never be
    promoted again (a deployment already running finishes)."""
    result = connect(server, token).post(f"{release_path(ref)}/abandon", {"reason": reason})
    if output is not Output.TABLE:
        emit(result, output)
        return
    console.print(f"{result['release']} abandoned by {result['abandoned']['by']}: "
                  f"{result['abandoned']['reason']}", markup=False)


@release_app.command("evidence")
def evidence(
    ref: str = RefArgument,
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE",
                                help="Where to write the JSON pack (FILE.md gets Markdown)."),
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Write the signed evidence pack of a release (JSON, plus a Markdown rendering)."""
    from .evidence_cmd import release_evidence

    release_evidence(ref, output, server, token)
