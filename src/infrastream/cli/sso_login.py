"""`infrastream login --sso`: sign a person in with the identity provider the server names.

The server says how (`GET /api/v1/sso/config`: issuer, the CLI's public client id, scopes);
the CLI runs the device authorization grant with the provider (`oidc.device_grant`: the
verification link and code go to stderr, the person approves in any browser), then exchanges
the ID token at the server (`POST /api/v1/sso/token`), which checks it and issues a
short-lived API token. That token is saved where `infrastream login` saves tokens. Only httpx
is loaded: the server, not the CLI, verifies the ID token.
"""

from __future__ import annotations

from .client import ApiClient, write_config
from .output import CliError, console, err_console

ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"


def sso_login(url: str) -> None:
    from infrastream.domain.errors import InfrastreamError
    from infrastream.oidc.device_grant import DeviceGrant

    server = ApiClient(url, None)
    config = server.get("/sso/config")
    try:
        issuer, client_id = str(config["issuer"]), str(config["clientId"])
        scopes = tuple(str(s) for s in config.get("scopes") or ("openid",))
    except (KeyError, TypeError):
        raise CliError(f"{url} answered /sso/config without an issuer and client id: is it "
                       "an Infrastream server?") from None
    grant = DeviceGrant(issuer, client_id, scopes)
    try:
        endpoints = grant.endpoints()
        started = grant.start(endpoints)
        err_console.print(f"To sign in, open {started.verification_uri} and enter the code "
                          f"{started.user_code}", markup=False)
        if started.verification_uri_complete:
            err_console.print(f"(or open {started.verification_uri_complete})", markup=False)
        err_console.print("Waiting for you to approve…", markup=False)
        id_token = grant.wait(endpoints, started)
    except InfrastreamError as failed:
        raise CliError(failed.reason) from None
    issued = server.post("/sso/token", {"subjectToken": id_token,
                                        "subjectTokenType": ID_TOKEN_TYPE,
                                        "nonce": started.nonce})
    path = write_config(url, str(issued["accessToken"]))
    roles = ", ".join(issued.get("roles") or []) or "no roles"
    console.print(f"logged in to {url} as {issued.get('user')} ({roles}) until "
                  f"{issued.get('expiresAt')}; saved to {path}", markup=False)
