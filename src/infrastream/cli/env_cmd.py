"""`infrastream env list` and `infrastream status`: what runs where, per environment (the
release whose deployment last succeeded there, its versions, since when)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import typer

from .client import ServerOption, TokenOption, connect
from .output import CliError, Output, OutputOption, console, emit
from .render import print_table, when

env_app = typer.Typer(help="Environments and what runs in them.", no_args_is_help=True)


def _versions(item: dict[str, Any]) -> str:
    return ", ".join(f"{app}={version}" for app, version in sorted(item["versions"].items()))


def _health(item: dict[str, Any]) -> str:
    """The live health the engine stored, with the restarts of any application."""
    health = item.get("health")
    if not health:
        return "-"
    restarts = ", ".join(f"{app} restarted {n}×" for app, n in sorted(health["restarts"].items()))
    return str(health["state"]) + (f" ({restarts})" if restarts else "")


def show_environments(output: Output, server: str | None, token: str | None) -> None:
    overview = connect(server, token).get("/environments")
    if output is not Output.TABLE:
        emit(overview, output)
        return
    print_table(
        ["ENVIRONMENT", "RELEASE", "HEALTH", "VERSIONS", "SINCE"],
        [[e["environment"], e["release"] + (" (deploying)" if e.get("deploying") else ""),
          _health(e), _versions(e), when(e.get("since"))] for e in overview],
        empty="nothing is deployed yet")


@env_app.command("list")
def list_environments(
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Per environment: the release running there, its versions, and since when."""
    show_environments(output, server, token)


@env_app.command("teardown")
def teardown(
    environment: str = typer.Argument(..., metavar="ENV"),
    reason: str = typer.Option(..., "--reason", metavar="TEXT",
                               help="Why (required; audited)."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Stop everything the target runs in ENV (platform role): local processes, the
    Kubernetes objects it owns, or the GitOps tree (a commit removing it)."""
    result = connect(server, token).post(
        f"/environments/{quote(environment, safe='')}/teardowns", {"reason": reason})
    if output is not Output.TABLE:
        emit(result, output)
        return
    ran = result.get("release") or "nothing"
    console.print(f"tore down {result['environment']} ({result['target']} target; it ran "
                  f"{ran})", markup=False)


@env_app.command("bind")
def bind(
    environment: str = typer.Argument(..., metavar="ENV"),
    node: str = typer.Option(..., "--node", metavar="NODE",
                             help="The node (server name) to run ENV from now on."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Move the local environment ENV to NODE when the node it is bound to is dead (platform
    role; refused while that node is alive; audited)."""
    result = connect(server, token).request(
        "PUT", f"/environments/{quote(environment, safe='')}/binding", body={"node": node})
    if output is not Output.TABLE:
        emit(result, output)
        return
    console.print(f"{result['environment']} now runs on node {result['node']} (was "
                  f"{result.get('previous') or 'unbound'})", markup=False)


def status(
    drift: bool = typer.Option(False, "--drift", help="Compare with what the targets report "
                               "and list every difference (exit 1 when any environment "
                               "drifted)."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """What runs where: per environment the release, its versions and since when."""
    if not drift:
        show_environments(output, server, token)
        return
    report = connect(server, token).get("/environments/drift")
    if output is not Output.TABLE:
        emit(report, output)
    else:
        print_table(["ENVIRONMENT", "RELEASE", "STATE", "DIFFERENCES"],
                    [[r["environment"], r["release"], r["state"],
                      "\n".join(r["differences"]) or "-"] for r in report],
                    empty="nothing deployed yet")
    drifted = [r["environment"] for r in report if r["state"] != "in-sync"]
    if drifted:
        raise CliError("drift in " + ", ".join(drifted))
