"""`infrastream serve`: start the API and the engine in this process (the server the other
commands talk to). Configuration comes from options or the environment; the work is done by
`infrastream.api.server.run_server`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

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
    node_name: str | None = typer.Option(
        None, "--node-name", envvar="INFRASTREAM_NODE_NAME", metavar="NAME",
        show_default="the host name",
        help="This server's name among the servers of one database: it owns this server's "
        "job leases and runs the `local` environments bound to it."),
    oidc_issuer: str | None = typer.Option(
        None, "--oidc-issuer", envvar="INFRASTREAM_OIDC_ISSUER", metavar="URL",
        help="OpenID provider to sign people in with (its /.well-known/openid-configuration "
        "is read); API-token sign-in stays."),
    oidc_client_id: str = typer.Option(
        "infrastream", "--oidc-client-id", envvar="INFRASTREAM_OIDC_CLIENT_ID",
        help="This server's client id at the provider."),
    oidc_client_secret_file: Path | None = typer.Option(
        None, "--oidc-client-secret-file", metavar="FILE",
        help="File holding the client secret (or set INFRASTREAM_OIDC_CLIENT_SECRET); "
        "never given on the command line."),
    oidc_scopes: str = typer.Option(
        "openid profile email groups", "--oidc-scopes", envvar="INFRASTREAM_OIDC_SCOPES",
        help="Scopes to ask for, space-separated."),
    oidc_groups_claim: str = typer.Option(
        "groups", "--oidc-groups-claim", envvar="INFRASTREAM_OIDC_GROUPS_CLAIM",
        help="ID-token claim that lists the person's groups."),
    oidc_group_role: list[str] = typer.Option(
        [], "--oidc-group-role", metavar="GROUP=ROLE",
        help="Give ROLE to members of GROUP (repeatable), re-evaluated at every sign-in."),
    oidc_cli_client_id: str | None = typer.Option(
        None, "--oidc-cli-client-id", envvar="INFRASTREAM_OIDC_CLI_CLIENT_ID", metavar="ID",
        help="Public client (no secret; device authorization grant) that `infrastream login "
        "--sso` signs people in with; needs --oidc-issuer."),
    oidc_cli_token_lifetime: int = typer.Option(
        8 * 3600, "--oidc-cli-token-lifetime", min=60, max=12 * 3600, metavar="SECONDS",
        help="How long a token from `infrastream login --sso` lasts (at most 12 h)."),
    oidc_session_beyond_expiry: int = typer.Option(
        3600, "--oidc-session-beyond-expiry", min=0, metavar="SECONDS",
        help="How long a portal session may outlive the ID token's expiry."),
    public_url: str | None = typer.Option(
        None, "--public-url", envvar="INFRASTREAM_PUBLIC_URL", metavar="URL",
        show_default="no links",
        help="Where people reach this server, e.g. https://infrastream.example.com: "
        "notifications link into the Portal under it."),
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
    extend: Any = mount_portal
    try:
        if log_format not in (None, "json", "console"):
            raise CliError(f"--log-format is json or console, not {log_format!r}")
        if oidc_cli_client_id and not oidc_issuer:
            raise CliError("--oidc-cli-client-id needs --oidc-issuer")
        if public_url and not public_url.startswith(("http://", "https://")):
            raise CliError(f"--public-url is an http:// or https:// URL, not {public_url!r}")
        if oidc_issuer:
            sso = single_sign_on(
                oidc_issuer, oidc_client_id, _client_secret(oidc_client_secret_file),
                oidc_scopes, oidc_groups_claim, oidc_group_role, oidc_session_beyond_expiry,
                cli_token_lifetime=oidc_cli_token_lifetime)
            extend = partial(_with_sso, sso=sso, cli_client_id=oidc_cli_client_id)
        run_server(directory, database_url, host, port, extend=extend, node=node_name,
                   log_format=log_format, public_url=public_url)
    except SQLAlchemyError as exc:
        raise CliError(f"cannot use the database: {exc.__class__.__name__}: "
                       f"{str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise CliError(f"cannot serve: {exc.strerror or exc}") from None
    except InfrastreamError as exc:  # e.g. an audit signing key other than the database's
        raise CliError(f"cannot serve: {exc.reason}") from None


def _client_secret(path: Path | None) -> str:
    if path is not None:
        try:
            return path.expanduser().read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read the OIDC client secret: {exc.strerror or exc}") from None
    secret = os.environ.get("INFRASTREAM_OIDC_CLIENT_SECRET", "")
    if not secret:
        raise CliError("--oidc-issuer needs the client secret: --oidc-client-secret-file FILE "
                       "or INFRASTREAM_OIDC_CLIENT_SECRET")
    return secret


def _with_sso(app: Any, services: Any, *, sso: Any, cli_client_id: str | None) -> None:
    """Mount the portal with sign-in, and let the API exchange the CLI's ID tokens."""
    from infrastream.api.routes_sso import CliSignIn
    from infrastream.portal import mount_portal

    mount_portal(app, services, sso=sso)
    if cli_client_id:
        provider = sso.provider
        app.state.cli_sign_in = CliSignIn(
            issuer=provider.settings.issuer, client_id=cli_client_id,
            scopes=provider.settings.scopes,
            verifier=provider.verifier_for(cli_client_id, nonce_required=False),
            policy=sso.policy)


def single_sign_on(issuer: str, client_id: str, secret: str, scopes: str, groups_claim: str,
                   group_roles: list[str], beyond_expiry: int, *,
                   cli_token_lifetime: int = 8 * 3600) -> Any:
    from infrastream.domain.sign_in import parse_group_roles
    from infrastream.oidc.client import ClientSettings, Provider
    from infrastream.portal.single_sign_on import SingleSignOn
    from infrastream.service.single_sign_on import SsoPolicy

    settings = ClientSettings(issuer=issuer, client_id=client_id, client_secret=secret,
                              scopes=tuple(scopes.split()), groups_claim=groups_claim)
    return SingleSignOn(Provider(settings), SsoPolicy(
        issuer=issuer, group_roles=parse_group_roles(group_roles),
        beyond_expiry=timedelta(seconds=beyond_expiry),
        cli_token_lifetime=timedelta(seconds=cli_token_lifetime)))
