"""The `infrastream` Typer app: its commands load lazily (`commands`), errors become one line
and an exit code."""

from __future__ import annotations

import typer

from infrastream import __version__

from .commands import LazyGroup
from .output import CliError, say

app = typer.Typer(
    cls=LazyGroup,
    name="infrastream",
    help="Infrastream: immutable releases, staged promotion, sign-offs and an audit trail.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"infrastream {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Infrastream: immutable releases, staged promotion, sign-offs and an audit trail."""


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; never lets a traceback reach the user.

    Click's standalone mode reports usage errors (exit 2) and Ctrl-C itself; our own
    failures arrive as CliError and become one red line and their exit code.
    """
    try:
        app(args=argv, prog_name="infrastream", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except CliError as exc:
        say(f"error: {exc}", style="red", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0

