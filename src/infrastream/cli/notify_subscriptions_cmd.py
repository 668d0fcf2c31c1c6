"""`infrastream notifications subscribe | subscriptions | unsubscribe`: which channel hears
the events that concern a role, a team, a person or everyone (admin or platform; the server
checks that the channel, role, team, user and track exist)."""

from __future__ import annotations

import typer

from .client import ServerOption, TokenOption, connect
from .output import CliError, Output, OutputOption, console, emit
from .render import print_table, when

EVENT_KINDS = ("approval.waiting, approval.reminder, approval.escalated, release.failed, "
               "release.rejected, production.deployed, hotfix.started, freeze.overridden")


def subscribe(
    channel: str = typer.Argument(..., help="The notification channel to deliver on."),
    role: str | None = typer.Option(None, "--role", metavar="ROLE",
                                    help="Events that ask this role to act."),
    team: str | None = typer.Option(None, "--team", metavar="TEAM",
                                    help="Events of releases of this team's sets."),
    user: str | None = typer.Option(None, "--user", metavar="USER",
                                    help="Events this person is told about."),
    everyone: bool = typer.Option(False, "--everyone", help="Every event."),
    track: str | None = typer.Option(None, "--track", metavar="TRACK",
                                     show_default="every track",
                                     help="Only events of this ReleaseTrack."),
    events: str = typer.Option("", "--events", metavar="KIND,KIND",
                               show_default="every kind",
                               help=f"Only these kinds: {EVENT_KINDS}."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Subscribe a channel to the events that concern a role, a team, a person or everyone."""
    chosen = [(name, value) for name, value in
              (("role", role), ("team", team), ("user", user),
               ("everyone", "" if everyone else None)) if value is not None]
    if len(chosen) != 1:
        raise CliError("name exactly one of --role, --team, --user and --everyone")
    selector, value = chosen[0]
    created = connect(server, token).post("/notification-subscriptions", {
        "channel": channel, "selector": selector, "value": value, "track": track,
        "events": [e.strip() for e in events.split(",") if e.strip()]})
    if output is not Output.TABLE:
        emit(created, output)
        return
    console.print(f"subscription {created['id']}: {channel} hears {_what(created)}",
                  markup=False)


def _what(item: dict[str, object]) -> str:
    kinds = item.get("events") or []
    who = "everyone" if item["selector"] == "everyone" else f"{item['selector']} {item['value']}"
    what = ", ".join(str(k) for k in kinds) if isinstance(kinds, list) and kinds else \
        "every event"
    return f"{what} for {who} on " + (f"track {item['track']}" if item.get("track")
                                       else "every track")


def list_subscriptions(
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """List the subscriptions: which channel hears what."""
    found = connect(server, token).get("/notification-subscriptions")
    if output is not Output.TABLE:
        emit(found, output)
        return
    print_table(
        ["ID", "CHANNEL", "TRACK", "FOR", "EVENTS", "CREATED", "BY"],
        [[str(s["id"]), s["channel"], s.get("track") or "*",
          "everyone" if s["selector"] == "everyone" else f"{s['selector']} {s['value']}",
          ", ".join(s.get("events") or []) or "*", when(s.get("createdAt")),
          s.get("createdBy")] for s in found],
        empty="no subscriptions")


def unsubscribe(
    subscription_id: int = typer.Argument(..., metavar="ID", min=1,
                                          help="The subscription (see `subscriptions`)."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Remove a subscription."""
    removed = connect(server, token).request("DELETE",
                                             f"/notification-subscriptions/{subscription_id}")
    if output is not Output.TABLE:
        emit(removed, output)
        return
    console.print(f"removed subscription {removed['id']} ({removed['channel']} no longer hears "
                  f"{_what(removed)})", markup=False)


def register(group: typer.Typer) -> None:
    group.command("subscribe")(subscribe)
    group.command("subscriptions")(list_subscriptions)
    group.command("unsubscribe")(unsubscribe)
