"""`infrastream audit`: read the audit trail and verify its hash chain (for auditors)."""

from __future__ import annotations

import json
from typing import Any

import typer

from .client import ApiClient, ServerOption, TokenOption, connect, connect_unhurried
from .output import CliError, Output, OutputOption, console, emit, err_console, real
from .render import print_table, when

CHANGE_WIDTH = 72
audit_app = typer.Typer(help="Read and verify the audit trail.", no_args_is_help=True)


def _change(entry: dict[str, Any]) -> str:
    """The entry's `after` as `key=value` pairs, cut to one or two lines (-o shows all)."""
    after = entry.get("after")
    if isinstance(after, dict):
        text = " ".join(f"{key}={_scalar(value)}" for key, value in after.items())
    else:
        text = "" if after is None else _scalar(after)
    return text if len(text) <= CHANGE_WIDTH else text[:CHANGE_WIDTH - 1] + "…"


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


@audit_app.command("list")
def list_entries(
    limit: int = typer.Option(100, "--limit", "-n", min=1, max=1000,
                              help="At most this many entries (newest first)."),
    object_type: str | None = typer.Option(
        None, "--object-type", metavar="TYPE",
        help="Only entries about this type: release, user, application, or a manifest kind."),
    object_id: str | None = typer.Option(
        None, "--object-id", metavar="ID", help="Only entries about this object (e.g. shop/v1)."),
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """List audit entries, newest first: who did what to which object, and when."""
    entries = connect(server, token).get(
        "/audit", {"limit": limit, "objectType": object_type, "objectId": object_id})
    if output is not Output.TABLE:
        emit(entries, output)
        return
    print_table(
        ["SEQ", "AT", "ACTOR", "ACTION", "OBJECT", "CHANGE"],
        [[e["seq"], when(e.get("at")), e.get("actor"), e.get("action"),
          f"{e.get('objectType')}/{e.get('objectId')}", _change(e)] for e in entries],
        empty="no audit entries")


@audit_app.command("verify")
def verify(
    output: Output = OutputOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Verify the hash chain of the whole audit trail. Exit status 1 when it is broken.

    Waits as long as the verification runs; on a terminal it draws its progress."""
    client = connect_unhurried(server, token)
    if output is Output.TABLE and err_console.is_terminal:
        verdict = _with_progress(client)
    else:
        verdict = client.get("/audit/verify")
    if output is not Output.TABLE:
        emit(verdict, output)
    elif verdict.get("ok"):
        console.print(f"audit trail intact: {verdict.get('entries')} entries and "
                      f"{verdict.get('checkpoints', 0)} signed checkpoints verified",
                      style="green", markup=False)
    if not verdict.get("ok"):
        raise CliError(f"the audit trail is broken at entry {verdict.get('brokenAt')}: "
                       f"{verdict.get('reason')}")


@audit_app.command("export")
def export(
    since: str | None = typer.Option(None, "--since", metavar="TIME",
                                     help="ISO time, inclusive (e.g. 2026-11-01T00:00Z)."),
    until: str | None = typer.Option(None, "--until", metavar="TIME",
                                     help="ISO time, exclusive."),
    output: str = typer.Option("jsonl", "--output", "-o", help="Only jsonl is offered."),
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Export entries and signed checkpoints as JSON lines (one object per line)."""
    if output != "jsonl":
        raise CliError("audit export writes jsonl (-o jsonl)", exit_code=2)
    typer.echo(connect(server, token).text("/audit/export", {"since": since, "until": until}),
               nl=False)


@audit_app.command("public-key")
def public_key(
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Print the server's Ed25519 public key (PEM): what verifies checkpoints and packs."""
    typer.echo(connect(server, token).text("/audit/public-key"), nl=False)


def _with_progress(client: ApiClient) -> Any:
    """GET /audit/verify on a thread while a Rich bar follows /audit/verify/progress."""
    import threading

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["verdict"] = client.get("/audit/verify")
        except CliError as exc:
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    poller = ApiClient(client.server, client.token)
    with Progress("verifying the audit trail", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=real(err_console), transient=True) as bar:
        task = bar.add_task("verify", total=None)
        while worker.is_alive():
            worker.join(0.5)
            if not worker.is_alive():
                break
            try:
                seen = poller.get("/audit/verify/progress")
            except CliError:
                continue  # the bar waits; the verification itself decides the outcome
            if seen.get("running"):
                bar.update(task, completed=seen.get("done", 0), total=seen.get("total") or None)
    if "error" in result:
        raise result["error"]
    return result["verdict"]
