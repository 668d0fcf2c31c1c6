"""`infrastream serve`: start the API and the engine in this process (the server the other
commands talk to). Configuration comes from options or the environment; the work is done by
`infrastream.api.server.run_server`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from .output import CliError

DEFAULT_DATA_DIR = Path("~/.infrastream")


def serve(
    data_dir: Path = typer.Option(
        DEFAULT_DATA_DIR, "--data-dir", envvar="INFRASTREAM_DATA_DIR", metavar="DIR",
        help="Directory for the embedded SQLite database, the admin token "
        "(admin-token) and the targets' state."),
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="INFRASTREAM_DATABASE_URL", metavar="URL",
        show_default="embedded SQLite in the data directory",
        help="SQLAlchemy database URL, e.g. postgresql://user@host/db for several "
        "machines."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8420, "--port", min=1, max=65535, help="TCP port to listen on."),
    log_format: str | None = typer.Option(
        None, "--log-format", envvar="INFRASTREAM_LOG_FORMAT", metavar="json|console",
        show_default="json unless stderr is a terminal",
        help="Log lines as JSON objects or for people."),
) -> None:
    """Run the Infrastream server: REST API under /api/v1 (OpenAPI at /openapi.json) and the
    engine that deploys and promotes releases.

    The first start creates the `admin` user and prints its token once; it is also kept in
    DIR/admin-token (mode 0600). Stop with Ctrl-C or SIGTERM.
    """
    from sqlalchemy.exc import SQLAlchemyError  # heavy: only when serving

    from infrastream.api.server import run_server
    from infrastream.domain.errors import InfrastreamError
    from infrastream.portal import mount_portal

    directory = data_dir.expanduser().resolve()
    try:
        if log_format not in (None, "json", "console"):
            raise CliError(f"--log-format is json or console, not {log_format!r}")
        run_server(directory, database_url, host, port, extend=mount_portal,
                   log_format=log_format)
    except SQLAlchemyError as exc:
        raise CliError(f"cannot use the database: {exc.__class__.__name__}: "
                       f"{str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise CliError(f"cannot serve: {exc.strerror or exc}") from None
    except InfrastreamError as exc:  # e.g. an audit signing key other than the database's
        raise CliError(f"cannot serve: {exc.reason}") from None
