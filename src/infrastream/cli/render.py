"""Small rendering helpers shared by the client commands: tables and short timestamps.

Kept apart from `output.py` (formats and errors) so each client command stays a thin
parse → request → render function.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from .output import console

STATE_STYLES = {
    "succeeded": "green", "healthy": "green", "passed": "green", "completed": "green",
    "active": "cyan", "verifying": "cyan", "deploying": "cyan", "running": "cyan",
    "queued": "cyan", "awaiting-approval": "yellow", "pending": "dim",
    "not-deployed": "dim", "failed": "red", "rejected": "red", "unhealthy": "red",
}


def when(value: Any) -> str:
    """An ISO timestamp as `YYYY-MM-DD HH:MM:SS` (UTC), or `-`."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def state(value: Any) -> Text:
    text = str(value) if value not in (None, "") else "-"
    return Text(text, style=STATE_STYLES.get(text, ""))


def cell(value: Any) -> Text:
    if isinstance(value, Text):
        return value
    return Text("-" if value is None or value == "" else str(value))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
          title: str | None = None) -> Table:
    """A borderless table; only the last column wraps, the others stay one line each."""
    grid = Table(title=title, title_justify="left", header_style="bold", box=None,
                 pad_edge=False)
    for number, header in enumerate(headers, 1):
        grid.add_column(header, no_wrap=number < len(headers), overflow="fold")
    for row in rows:
        grid.add_row(*(cell(v) for v in row))
    return grid


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
                empty: str = "nothing to show") -> None:
    materialized = list(rows)
    if not materialized:
        console.print(empty, style="dim", markup=False)
        return
    console.print(table(headers, materialized), soft_wrap=False)
