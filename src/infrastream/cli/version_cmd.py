"""`infrastream version`: record the build CI just produced for an application, and list
what is recorded. A release freezes the latest recorded version of every application."""

from __future__ import annotations

import typer

from .client import ServerOption, TokenOption, connect
from .output import CliError, Output, OutputOption, console, emit
from .render import print_table, when

version_app = typer.Typer(help="Record and list application versions (builds).",
                          no_args_is_help=True)


@version_app.command("record")
def record(
    app: str = typer.Argument(..., help="Application name."),
    image: str = typer.Option(..., "--image", metavar="REF",
                              help="Image reference: repository:tag and/or @sha256:digest."),
    commit: str | None = typer.Option(None, "--commit", metavar="SHA",
                                      help="Source commit the image was built from."),
    pull_request: int | None = typer.Option(
        None, "--pull-request", metavar="N", min=1,
        help="A build of pull request N (its head --commit): validated by the pre-release "
             "gate, never the latest version of a release."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Record a built version of an application (immutable once recorded)."""
    client = connect(server, token)
    if pull_request is not None:
        if commit is None:
            raise CliError("a pull-request build needs the head commit it was built from "
                           "(--commit SHA)", exit_code=2)
        recorded = client.post(f"/applications/{app}/pull-request-builds", {
            "image": image, "commit": commit, "pullRequest": pull_request})
    else:
        recorded = client.post(f"/applications/{app}/versions",
                               {"image": image, "commit": commit})
    if output is not Output.TABLE:
        emit(recorded, output)
        return
    channel = f" for pull request {pull_request}" if pull_request is not None else ""
    console.print(f"recorded {recorded['application']} {recorded['version']} "
                  f"({recorded['image']}){channel}", markup=False)


@version_app.command("list")
def list_versions(
    app: str = typer.Argument(..., help="Application name."),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="At most this many."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """List the recorded versions of an application, newest first."""
    versions = connect(server, token).get(f"/applications/{app}/versions", {"limit": limit})
    if output is not Output.TABLE:
        emit(versions, output)
        return
    print_table(
        ["VERSION", "IMAGE", "COMMIT", "RECORDED", "BY"],
        [[v["version"], v["image"], v.get("commit"), when(v.get("recordedAt")),
          v.get("recordedBy")] for v in versions],
        empty=f"no version of {app} recorded")
