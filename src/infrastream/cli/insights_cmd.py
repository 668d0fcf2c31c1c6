"""`infrastream insights`: how fast and how safely releases reach production (the server
computes the figures from its records; this prints them)."""

from __future__ import annotations

from typing import Any

import typer

from .client import ServerOption, TokenOption, connect
from .output import Output, OutputOption, console, emit
from .render import print_table

PHASE_TITLES = {"approval": "SIGN-OFF", "queue": "QUEUE", "deploy": "DEPLOY",
                "checks": "CHECKS", "soak": "SOAK"}


def _span(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes
                                                     else f"{secs}s")


def insights(
    days: int = typer.Option(30, "--days", help="The period: these last days."),
    track: str | None = typer.Option(None, "--track", help="Only releases of this track."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Deployment frequency, lead time for changes, change failure rate, time to restore,
    and where each stage's time goes (sign-off, queue, deploy, checks, soak)."""
    found: dict[str, Any] = connect(server, token).get(
        "/insights", {"days": days, "track": track})
    if output is not Output.TABLE:
        emit(found, output)
        return
    frequency = found["deploymentFrequency"]
    print_table(["FIGURE", "VALUE"], [
        ["deployments per day", ", ".join(f"{tier} {rate:g}" for tier, rate in
                                          frequency["perDay"].items()) or "none"],
        ["lead time for changes", found["leadTime"]["text"]],
        ["lead time, 90th percentile", found["leadTimeP90"]["text"]],
        ["change failure rate", _rate(found["changeFailureRate"])],
        ["time to restore", found["timeToRestore"]["text"]],
    ])
    console.print()
    phases = [p["phase"] for p in found["phases"]]
    print_table(["STAGE", "RUNS", *[PHASE_TITLES[p] for p in phases]],
                [[s["stage"], s["runs"], *[_span(s["seconds"][p]) for p in phases]]
                 for s in found["timeByStage"]], empty="no stage ran in the period")


def _rate(figure: dict[str, Any]) -> str:
    value = figure.get("value")
    return figure["text"] if value is None else f"{value:.0%} ({figure['text']})"
