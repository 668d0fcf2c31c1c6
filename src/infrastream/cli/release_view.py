"""How `infrastream release status` looks to people, and when `--wait` may stop.

The server computes every state and the one-line "why is it waiting"; this module only lays
them out with Rich (a header, then per stage its environments, checks, approvals and waiting
line) and reads the end condition off the same JSON. Rich is imported by `render_status`
(`--wait -o json` needs only `outcome`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .output import console
from .render import state, table, when

if TYPE_CHECKING:
    from rich.console import RenderableType

_FAILED = ("failed", "rejected")


def outcome(status: dict[str, Any]) -> tuple[bool, str | None]:
    """(done, failure): done when the release completed, a stage failed or was rejected, or
    the last stage someone requested succeeded; failure says why it failed, else None."""
    if status.get("state") == "completed":
        return True, None
    if status.get("state") == "abandoned":
        return True, f"{status['release']}: {status.get('summary')}"
    stages = status.get("stages", [])
    for stage in stages:
        if stage.get("state") in _FAILED:
            why = stage.get("waiting") or stage.get("reason") or stage["state"]
            return True, f"{status['release']}: {stage['name']} {stage['state']}: {why}"
    requested = [s for s in stages if s.get("state") != "pending"]
    return bool(requested) and requested[-1].get("state") == "succeeded", None


def render_status(status: dict[str, Any]) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = [_header(status)]
    total = len(status.get("stages", []))
    for stage in status.get("stages", []):
        parts.append(Text(""))
        parts.append(_stage(stage, total))
    return Group(*parts)


def _header(status: dict[str, Any]) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    # One space between label and value: a sha256 digest (71 characters) fits 80 columns whole.
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    lane = status.get("lane", "release")
    grid.add_row("release", Text.assemble(
        (status["release"], "bold"), f"  ({lane} lane, track {status.get('track')})"))
    if status.get("incident"):
        grid.add_row("incident", str(status["incident"]))
    grid.add_row("digest", str(status.get("digest")))
    grid.add_row("state", state(status.get("state")))
    versions = status.get("versions") or {}
    grid.add_row("versions", ", ".join(f"{app}={v.get('version')}"
                                       for app, v in sorted(versions.items())) or "-")
    grid.add_row("created", f"{when(status.get('createdAt'))} by {status.get('createdBy')}")
    grid.add_row("runs in", ", ".join(status.get("runsIn") or []) or "-")
    for item in status.get("rolledBack") or []:
        grid.add_row(Text("rolled back", style="red"), Text(
            f"{item['environment']} → {item['to']} by {item['by']} at {when(item.get('at'))}"
            + (f": {item['reason']}" if item.get("reason") else ""), style="red"))
    forward_port = status.get("forwardPort") or {}
    for warning in forward_port.get("warnings") or []:
        grid.add_row(Text("forward-port", style="red"), Text(str(warning), style="red"))
    override = forward_port.get("override")
    if override:
        grid.add_row("forward-port", f"overridden by {override.get('by')}: "
                     f"{override.get('reason')}")
    abandoned = status.get("abandoned")
    if abandoned:
        grid.add_row(Text("abandoned", style="red"),
                     f"by {abandoned.get('by')} at {when(abandoned.get('at'))}: "
                     f"{abandoned.get('reason')}")
    grid.add_row("summary", str(status.get("summary", "")))
    return grid


def _stage(stage: dict[str, Any], total: int) -> RenderableType:
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    title = Text.assemble((f"stage {stage['index'] + 1}/{total} ", "bold"),
                          (stage["name"], "bold"), "  ", state(stage["state"]))
    if stage.get("attempt"):
        title.append(f"  (attempt {stage['attempt']})", style="dim")
    if stage.get("requestedBy"):
        requested = (f"requested by {stage['requestedBy']} at "
                     f"{when(stage.get('requestedAt'))}")
        # Too long for one line: the request goes on its own line, never cut mid-timestamp.
        fits = title.cell_len + 2 + len(requested) <= console.width
        title.append(("  " if fits else "\n  ") + requested, style="dim")
    available = console.width - 2  # the stage body is indented by two
    body: list[RenderableType] = [table(
        ["ENVIRONMENT", "STATE", "MESSAGE"],
        [[env["name"], state(env.get("state")), env.get("message")]
         for env in stage.get("environments", [])], available=available)]
    if stage.get("checks"):
        body.append(table(
            ["CHECK", "WHERE", "STATE", "SUMMARY"],
            [[c["type"], f"{c.get('app')}@{c.get('environment')}", state(c.get("state")),
              c.get("summary")] for c in stage["checks"]], available=available))
    if stage.get("approvals"):
        body.append(table(
            ["APPROVAL", "SIGNED", "APPROVERS"],
            [[a["role"], f"{len(a.get('approvers', []))}/{a.get('required')}",
              ", ".join(a.get("approvers", []))] for a in stage["approvals"]],
            available=available))
    if stage.get("waiting"):
        style = "red" if stage["state"] in _FAILED else "yellow"
        body.append(Text(str(stage["waiting"]), style=style))
    return Group(title, Padding(Group(*body), (0, 0, 0, 2), expand=False))
