"""The `infrastream` entry point: one Typer app, errors as one line and an exit code."""

from __future__ import annotations

import sys

import click
import typer

from infrastream import __version__

from .init_cmd import init
from .output import CliError, err_console
from .plan_cmd import plan
from .schema_cmd import schema
from .validate_cmd import validate

app = typer.Typer(
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


app.command()(validate)
app.command()(plan)
app.command()(schema)
app.command()(init)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; never lets a traceback reach the user."""
    try:
        app(args=argv, prog_name="infrastream", standalone_mode=False)
    except CliError as exc:
        err_console.print(f"error: {exc}", style="red", markup=False)
        return exc.exit_code
    except click.exceptions.Abort:
        err_console.print("aborted", markup=False)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
