"""Rendering command results: Rich for people, `-o json|yaml` for machines.

Rich is loaded on first use (importing it costs about as much as starting Python): `console`
and `err_console` become Rich consoles when something is first printed through them, and
`say` prints a one-line message without Rich where Rich would write the text unchanged (a
stream that is not a terminal). So `-o json`, a failing command and `validate` into a pipe
never import Rich.

Emoji codes are off: a server's or a file's text is printed as it is (with Rich's default,
`apps.yaml:100:5` came out as `apps.yaml💯5`).
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any, cast

import typer

if TYPE_CHECKING:
    from rich.console import Console

CONSOLE_OPTIONS: dict[str, Any] = {"highlight": False, "soft_wrap": True, "emoji": False}
"""How the CLI's consoles print (`print_table`'s wide one: highlight and emoji off too)."""


class _Deferred:
    """A Rich console made on first use: every attribute is the real console's. (Not the
    object itself: what hands a console to Rich, e.g. a progress bar, takes `real()`.)"""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if name in ("_stderr", "_console"):  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self.real(), name)

    def real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, **CONSOLE_OPTIONS)
        return self._console


console = cast("Console", _Deferred(stderr=False))
err_console = cast("Console", _Deferred(stderr=True))


def real(deferred: Console) -> Console:
    """The Rich console behind `console` or `err_console`, to hand to Rich itself."""
    return deferred.real() if isinstance(deferred, _Deferred) else deferred


RICH_TERMINAL_VARIABLES = ("FORCE_COLOR", "TTY_COMPATIBLE")
"""Variables with which Rich treats a stream that is not a terminal as one (styles it)."""
REWRITTEN_BY_RICH = frozenset("\t\a\b\v\f\r")
"""Characters Rich does not write as they are: tabs (expanded) and the control codes it
strips. A message holding one goes through Rich."""


def say(text: str, *, style: str | None = None, err: bool = False) -> None:
    """Print `text` (and a newline) as `console.print(text, style=style, markup=False)`
    would, on stderr with `err`: directly where that prints the text unchanged (a stream
    that is not a terminal, no variable forcing styles, nothing Rich rewrites), else
    through Rich."""
    stream: IO[str] | None = sys.stderr if err else sys.stdout
    if stream is None:  # started without that stream (pythonw): Rich too writes nothing
        return
    if _plain(stream) and REWRITTEN_BY_RICH.isdisjoint(text):
        stream.write(text + "\n")
        stream.flush()
        return
    (err_console if err else console).print(text, style=style, markup=False)


def _plain(stream: IO[str]) -> bool:
    if any(name in os.environ for name in RICH_TERMINAL_VARIABLES):
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # Rich's test: no isatty, or a closed stream
        return True


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOption = typer.Option(
    Output.TABLE, "--output", "-o", help="Output format: table (for people), json or yaml."
)


def emit(data: Any, output: Output) -> None:
    """Print `data` as JSON or YAML (plain stdout, no styling)."""
    if output is Output.JSON:
        typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    else:
        import yaml  # only for -o yaml: most commands never need the YAML library

        typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


class CliError(Exception):
    """A failure to report as one line on stderr with a non-zero exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
