"""The `infrastream` entry point: one Typer app, errors as one line and an exit code."""

from __future__ import annotations

import sys

import typer

from infrastream import __version__

from .apply_cmd import apply, describe, get
from .audit_cmd import audit_app
from .demo_cmd import demo
from .env_cmd import env_app, status
from .evidence_cmd import evidence_app
from .init_cmd import init
from .lanes_cmd import hotfix_app, prerelease_app, rollback
from .login_cmd import login, whoami
from .output import CliError, err_console
from .plan_cmd import plan
from .release_cmd import release_app
from .schema_cmd import schema
from .scm_cmd import scm_app
from .secret_cmd import secret_app
from .serve_cmd import serve
from .user_cmd import user_app
from .validate_cmd import validate
from .version_cmd import version_app

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
app.command()(serve)
app.command()(login)
app.command()(whoami)
app.command()(apply)
app.command()(get)
app.command()(describe)
app.command()(status)
app.add_typer(user_app, name="user")
app.add_typer(version_app, name="version")
app.add_typer(release_app, name="release")
app.add_typer(env_app, name="env")
app.add_typer(audit_app, name="audit")
app.add_typer(hotfix_app, name="hotfix")
app.add_typer(prerelease_app, name="prerelease")
app.add_typer(secret_app, name="secret")
app.command()(rollback)
app.command()(demo)
app.add_typer(evidence_app, name="evidence")
app.add_typer(scm_app, name="scm")


def main(argv: list[str] | None = None) -> int:
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
        err_console.print(f"error: {exc}", style="red", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
