"""`infrastream plan`: the lanes, stages, gates and applications of each track, as a tree."""

from __future__ import annotations

from typing import Any

import typer
from rich.tree import Tree

from infrastream.manifests.plan import plan as build_plan

from .output import CliError, Output, OutputOption, console, emit
from .validate_cmd import load, print_diagnostics

_LANE_TITLES = {"preRelease": "pre-release lane", "release": "release lane",
                "hotfix": "hotfix lane"}


def plan(
    path: list[str] = typer.Argument(..., help="Files or directories of manifests; - is stdin."),
    track: str | None = typer.Option(None, "--track", help="Show only this ReleaseTrack."),
    output: Output = OutputOption,
) -> None:
    """Show, per ReleaseTrack, the lanes → stages → environments with checks and approvals,
    and the ApplicationSets and Applications that travel it."""
    result = load(path)
    if not result.ok:
        print_diagnostics(result)
        raise CliError("the manifests are invalid; fix the errors above (see `validate`)")
    if track is not None and track not in result.bundle.tracks:
        known = ", ".join(sorted(result.bundle.tracks)) or "none"
        raise CliError(f"no ReleaseTrack named `{track}` (tracks: {known})", exit_code=2)
    plans = build_plan(result.bundle, track)
    if output is not Output.TABLE:
        emit(plans, output)
        return
    for item in plans:
        console.print(render_tree(item))


def render_tree(item: dict[str, Any]) -> Tree:
    root = Tree(f"[bold]ReleaseTrack {item['track']}[/]")
    for lane in item["lanes"]:
        lane_node = root.add(f"[cyan]{_LANE_TITLES[lane['lane']]}[/] ({lane['lane']}Stages)")
        for number, stage in enumerate(lane["stages"], 1):
            envs = ", ".join(
                f"{e['name']} [dim]({e['tier']}, {e['target']}"
                f"{'' if e['declared'] else ', undeclared'})[/]"
                for e in stage["environments"]
            )
            stage_node = lane_node.add(f"stage {number}: {envs}")
            for rule in stage["approvals"]:
                extra = f", expires after {rule['expiresAfter']}" if "expiresAfter" in rule else ""
                stage_node.add(f"[magenta]approval[/] {rule['role']} × {rule['count']}{extra}")
            for check in stage["checks"]:
                details = ", ".join(f"{k}={v}" for k, v in check.items() if k != "type")
                stage_node.add(f"[green]check[/] {check['type']}"
                               + (f" ({details})" if details else ""))
    for app_set in item["applicationSets"]:
        set_node = root.add(f"[bold]ApplicationSet {app_set['name']}[/]")
        for app in app_set["applications"]:
            set_node.add(f"Application {app['name']} [dim]{app['image']}[/]")
    return root
