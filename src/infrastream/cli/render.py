"""Small rendering helpers shared by the client commands: tables and short timestamps.

Kept apart from `output.py` (formats and errors) so each client command stays a thin
parse → request → render function. Rich is imported by the first table, not with this
module (`-o json` and a failing request never need it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .output import console, say

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

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
    from rich.text import Text

    text = str(value) if value not in (None, "") else "-"
    return Text(text, style=STATE_STYLES.get(text, ""))


def cell(value: Any) -> Text:
    from rich.text import Text

    if isinstance(value, Text):
        return value
    return Text("-" if value is None or value == "" else str(value))


# Columns that hold prose (sentences) wrap between words; every other column holds
# identifiers (names, digests, timestamps, sequence numbers) and is never wrapped or cut.
PROSE_HEADERS = frozenset({"SUMMARY", "REASON", "DIFFERENCES", "MESSAGE", "DETAIL",
                           "DESCRIPTION", "STATUS", "APPROVERS"})
_GAP = 2  # Rich's default padding (one cell either side) between borderless columns


def _longest_word(text: Text) -> int:
    from rich.cells import cell_len

    return max((cell_len(word) for word in text.plain.split()), default=1)


def _natural(text: Text) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.plain.splitlines()), default=1)


def column_widths(headers: Sequence[str], rows: Sequence[Sequence[Text]],
                  available: int) -> list[int]:
    """Content widths that fit `available` by wrapping only prose columns, and only between
    words; identifier columns keep their whole width (the table is then wider than
    `available` rather than cutting a value)."""
    from rich.cells import cell_len

    natural = [max([cell_len(h)] + [_natural(row[i]) for row in rows])
               for i, h in enumerate(headers)]
    prose = [i == len(headers) - 1 or h in PROSE_HEADERS for i, h in enumerate(headers)]
    floor = [max([cell_len(h)] + [_longest_word(row[i]) for row in rows]) if prose[i]
             else natural[i] for i, h in enumerate(headers)]
    widths = list(natural)
    budget = available - _GAP * (len(headers) - 1)
    # Shrink the widest prose column first, never below its longest word.
    while sum(widths) > budget:
        candidates = [i for i in range(len(widths)) if prose[i] and widths[i] > floor[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
          title: str | None = None, available: int | None = None) -> Table:
    """A borderless table sized for the terminal: prose columns wrap between words,
    identifier columns are never wrapped, folded or cut."""
    from rich.table import Table

    cells = [[cell(v) for v in row] for row in rows]
    widths = column_widths(headers, cells, available or console.width)
    grid = Table(title=title, title_justify="left", header_style="bold", box=None,
                 pad_edge=False)
    for header, width in zip(headers, widths, strict=True):
        grid.add_column(header, width=width, overflow="fold")
    for row in cells:
        grid.add_row(*row)
    return grid


def table_width(grid: Table) -> int:
    """The width `grid` needs (its columns' fixed widths and the gaps between them)."""
    widths = [column.width or 0 for column in grid.columns]
    return sum(widths) + _GAP * (len(widths) - 1)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
                empty: str = "nothing to show") -> None:
    materialized = list(rows)
    if not materialized:
        say(empty, style="dim")
        return
    grid = table(headers, materialized)
    needed = table_width(grid)
    if needed <= console.width:
        console.print(grid, soft_wrap=False)
        return
    # The identifiers alone are wider than the terminal: print the table at the width it
    # needs (the terminal wraps the lines) rather than cut a digest or a name in two.
    from rich.console import Console

    wide = Console(file=console.file, width=needed, highlight=False, emoji=False,
                   color_system="auto" if console.color_system else None,
                   force_terminal=console.is_terminal)
    wide.print(grid, soft_wrap=False)
