"""The CLI's connection to the Infrastream REST API (the CLI is a client, like kubectl).

Every command but `init`, `validate`, `plan`, `schema` and `serve` talks to a server through
`ApiClient`. Where the server and the token come from, in order: the `--server`/`--token`
options, the INFRASTREAM_URL/INFRASTREAM_TOKEN variables, then the file `infrastream login`
writes ($INFRASTREAM_CONFIG or ~/.config/infrastream/config.json, mode 0600). Every failure
(unreachable server, refused request, RFC 9457 problem) becomes one `CliError` line.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import typer

from .output import CliError, say

if TYPE_CHECKING:  # httpx is imported when a request is made (`load_httpx`)
    import ssl

    import httpx

    from infrastream.manifests.diagnostics import Diagnostic

DEFAULT_SERVER = "http://127.0.0.1:8420"
ENV_SERVER = "INFRASTREAM_URL"
ENV_TOKEN = "INFRASTREAM_TOKEN"
ENV_CONFIG = "INFRASTREAM_CONFIG"
TIMEOUT = 30.0

ServerOption = typer.Option(
    None, "--server", metavar="URL", show_default=False,
    help=f"Infrastream server URL [default: ${ENV_SERVER}, the login config, "
    f"or {DEFAULT_SERVER}].")
TokenOption = typer.Option(
    None, "--token", metavar="TOKEN", show_default=False,
    help=f"API token [default: ${ENV_TOKEN} or the login config].")


def config_path() -> Path:
    """Where `infrastream login` keeps the server and token."""
    configured = os.environ.get(ENV_CONFIG)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".config" / "infrastream" / "config.json"


def read_config() -> dict[str, str]:
    path = config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the login config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"the login config {path} is not a JSON object; log in again")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def write_config(server: str, token: str) -> Path:
    """Write the login config readable by its owner only (it holds a token)."""
    path = config_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"server": server, "token": token}, handle, indent=2)
            handle.write("\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        raise CliError(f"cannot write the login config {path}: {exc.strerror or exc}") from None
    return path


def resolve(server: str | None, token: str | None) -> tuple[str, str | None]:
    """The server URL and token: option, then environment, then login config."""
    config: dict[str, str] | None = None

    def from_config(key: str) -> str | None:
        nonlocal config
        if config is None:
            config = read_config()
        return config.get(key) or None

    url = server or os.environ.get(ENV_SERVER) or from_config("server") or DEFAULT_SERVER
    secret = token or os.environ.get(ENV_TOKEN) or from_config("token")
    return url.rstrip("/"), secret


def connect(server: str | None, token: str | None) -> ApiClient:
    """A client for the resolved server and token; a missing token is an error."""
    url, secret = resolve(server, token)
    if not secret:
        raise CliError("no API token: run `infrastream login --server URL --token TOKEN`, "
                       f"set {ENV_TOKEN} or pass --token")
    return ApiClient(url, secret)


def connect_unhurried(server: str | None, token: str | None) -> ApiClient:
    """`connect`, for a request that takes as long as the work it asks for (no timeout)."""
    client = connect(server, token)
    client.timeout = None
    return client


class ApiClient:
    """Calls /api/v1 and returns the decoded JSON, or raises CliError with one line."""

    def __init__(self, server: str, token: str | None, *,
                 timeout: float | None = TIMEOUT) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body=body)

    def text(self, path: str, params: dict[str, Any] | None = None) -> str:
        """GET a non-JSON resource (PEM, NDJSON, Markdown) as text."""
        return str(self.request("GET", path, params=params, raw=True))

    def watch(self, path: str, tag: str | None, wait: float) -> tuple[Any | None, str | None]:
        """GET `path` as one who follows it: with the entity tag of what was seen last, the
        server holds the request until the resource differs from it, for up to `wait`
        seconds (`If-None-Match` + `Prefer: wait`). (The new body, its tag), or (None, the
        same tag) when nothing changed meanwhile. The tag is None when the server sends
        none (one that does not hold reads: poll it instead)."""
        extra = {} if tag is None else {"If-None-Match": tag, "Prefer": f"wait={wait:g}"}
        response = self._send("GET", path, headers=extra, held=wait if tag else 0.0)
        if response.status_code == 304:
            return None, response.headers.get("etag") or tag
        return self._decode(response), response.headers.get("etag")

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None, raw: bool = False) -> Any:
        response = self._send(method, path, params=params, body=body)
        if raw and response.is_success:
            return response.text
        return self._decode(response)

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
              held: float = 0.0) -> Any:
        """One request, its `httpx.Response`; `held`: seconds the server may hold it (added
        to the timeout)."""
        headers = {"Accept": "application/json, application/problem+json", **(headers or {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        timeout = None if self.timeout is None else self.timeout + held
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        url = f"{self.server}/api/v1{path}"
        httpx = load_httpx()
        try:
            with httpx.Client(verify=cast(Any, _verify(url)), timeout=timeout) as http:
                response = http.request(method, url, params=clean, json=body, headers=headers)
        except httpx.ConnectError:
            raise CliError(f"cannot reach the Infrastream server at {self.server}: "
                           "is `infrastream serve` running?") from None
        except httpx.TimeoutException:
            raise CliError(f"the Infrastream server at {self.server} did not answer within "
                           f"{timeout or 0:g}s") from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            raise CliError(f"`{self.server}` is not a valid server URL "
                           "(e.g. http://127.0.0.1:8420)") from None
        except httpx.HTTPError as exc:
            raise CliError(f"request to {self.server} failed: {exc}") from None
        return response

    def _decode(self, response: httpx.Response) -> Any:
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success:
            if data is None and response.content:
                raise CliError(f"{self.server} answered {response.status_code} without JSON: "
                               "is it an Infrastream server?")
            return data
        raise problem_error(response.status_code, response.reason_phrase, data)


UNUSED_BY_THE_CLIENT = ("httpx._main", "h2")
"""What `import httpx` would load that no request of the CLI uses: httpx's own command line
(`httpx._main`, which imports click, pygments and most of rich) and HTTP/2 (`h2`, which
httpcore imports when it is installed; the client speaks HTTP/1.1, httpx's default). Together
about 40% of what importing httpx and httpcore costs."""


def load_httpx() -> ModuleType:
    """httpx and httpcore, without the parts the client never uses (`UNUSED_BY_THE_CLIENT`).

    A `None` entry in `sys.modules` makes an import of that name fail with ImportError, which
    httpx and httpcore catch (they put a stub in place: httpx's `main` prints that the CLI
    extras are missing, httpcore's HTTP/2 connection refuses to start). The entries are
    removed again afterwards, so the process may still import those modules itself. Nothing
    changes when httpx is already loaded (e.g. in a process that also runs the server).
    """
    with _LOADING:  # (`audit verify` makes requests from two threads)
        if "httpx" in sys.modules:
            import httpx

            return httpx
        blocked = [name for name in UNUSED_BY_THE_CLIENT if name not in sys.modules]
        for name in blocked:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            import httpcore  # noqa: F401  (what httpx's transport imports, h2 blocked)
            import httpx
        finally:
            for name in blocked:
                if sys.modules.get(name, "") is None:
                    sys.modules.pop(name, None)
        return httpx


_LOADING = threading.Lock()


def _verify(url: str) -> ssl.SSLContext | None:
    """TLS settings: for https, httpx's (the CA bundle, or $SSL_CERT_FILE/$SSL_CERT_DIR;
    loading it takes 17 ms); for http, no SSL context at all.

    `None` is not in httpx's signature but passes through it unchanged to httpcore, which
    makes an SSL context only for a TLS connection, and then its verifying default (so a
    plain-http client that is somehow sent to https still verifies; `False` would not).
    """
    return _tls_context() if url[:8].lower() == "https://" else None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    context: ssl.SSLContext = load_httpx().create_ssl_context()
    return context


def problem_error(status: int, reason: str, problem: Any) -> CliError:
    """An RFC 9457 problem as a CliError; diagnostics it carries are printed first."""
    if not isinstance(problem, dict):
        return CliError(f"the server answered {status} {reason}")
    print_diagnostics(problem.get("diagnostics"))
    detail = problem.get("detail")
    message = detail if isinstance(detail, str) and detail else problem.get("title")
    if not isinstance(message, str) or not message:
        message = f"the server answered {status} {reason}"
    if status == 401:
        message += " (log in with `infrastream login` or set INFRASTREAM_TOKEN)"
    return CliError(message)


def print_diagnostics(items: Any) -> None:
    """Render the server's diagnostics as `source:line:col: error[code] message` lines."""
    if not isinstance(items, list):
        return
    for item in items:
        diagnostic = to_diagnostic(item)
        if diagnostic is None:
            continue
        style = "red" if diagnostic.is_error else "yellow"
        say(diagnostic.render(), style=style, err=True)


def to_diagnostic(item: Any) -> Diagnostic | None:
    from infrastream.manifests.diagnostics import Diagnostic, Severity

    if not isinstance(item, dict):
        return None
    try:
        return Diagnostic(source=str(item["source"]), line=int(item["line"]),
                          column=int(item["column"]),
                          severity=Severity(item.get("severity", "error")),
                          code=str(item["code"]), message=str(item["message"]),
                          hint=str(item.get("hint") or ""))
    except (KeyError, TypeError, ValueError):
        return None
