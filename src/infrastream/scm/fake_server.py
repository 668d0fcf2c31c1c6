"""A real HTTP server on loopback that a fake Git host is built on.

The GitHub and GitLab fakes answer like their hosts over real sockets, so the providers are
tested through httpx, timeouts, headers and pagination exactly as in production. This base
starts a threaded `http.server` on 127.0.0.1 with a free port, records every request (with
credentials redacted), and has the switches every test of failure handling needs:

    with FakeGitHub() as github:            # started; stopped and closed on exit
        github.go_down()                    # every call answers 503
        github.go_down(refuse=True)         # nothing listens: connection refused
        github.come_back()                  # same port again
        github.rate_limit(retry_after=7)    # the next call answers 429 + Retry-After: 7

Subclasses implement `handle(request) -> Reply`. Nothing here imports test tooling, so a
benchmark can use the fakes as they are.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

REDACTED_HEADERS = ("authorization", "private-token")


@dataclass(frozen=True)
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    """The raw path, percent-encoding kept (GitLab's `group%2Fproject` stays one segment)."""
    query: Mapping[str, tuple[str, ...]]
    headers: Mapping[str, str]
    """Lower-cased names. Credentials are kept only until the request is recorded."""
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    violations: tuple[str, ...] = ()
    """Where the request broke the host's contract (recorded with it)."""
    credential: str | None = None
    """Which credential the request used (recorded with it)."""


@dataclass(frozen=True)
class Recorded:
    """A request and what the fake answered; `violations` say where it broke the contract."""

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]]
    headers: Mapping[str, str]
    body: Any
    status: int
    violations: tuple[str, ...] = ()
    credential: str | None = None
    """Which credential the request used (`token`, `app-jwt`, `installation-token`, …)."""


class FakeHttpApi:
    """Base of the fakes: a loopback HTTP server, its records and its failure switches."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: list[Recorded] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._down = False
        self._down_retry_after: int | None = None
        self._throttles: list[tuple[int, float]] = []

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        with self._lock:
            if self._server is None:
                self._listen()
        return self

    def stop(self) -> None:
        with self._lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- switches ---------------------------------------------------------------------------

    def go_down(self, *, refuse: bool = False, retry_after: int | None = None) -> None:
        """503 for every call (with `Retry-After` if given), or nothing listening at all."""
        if refuse:
            self.stop()
            return
        with self._lock:
            self._down, self._down_retry_after = True, retry_after

    def come_back(self) -> None:
        with self._lock:
            self._down = False
            if self._server is None:
                self._listen()

    def rate_limit(self, *, retry_after: float, count: int = 1, status: int = 429) -> None:
        """The next `count` calls answer `status` (429, or 403 as GitHub's secondary limit)."""
        with self._lock:
            self._throttles.extend([(status, retry_after)] * count)

    # -- records ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._records)

    @property
    def violations(self) -> list[str]:
        """Every contract violation seen so far, as `METHOD path: what`."""
        return [f"{r.method} {r.path}: {v}" for r in self.requests for v in r.violations]

    def clear_requests(self) -> None:
        with self._lock:
            self._records.clear()

    # -- for subclasses ---------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Answer `request` as the host would."""
        raise NotImplementedError

    def throttled_reply(self, status: int, retry_after: float) -> Reply:
        return Reply(status, {"message": "API rate limit exceeded"},
                     {"Retry-After": str(int(retry_after))})

    # -- internals --------------------------------------------------------------------------

    def _serve(self, request: Request) -> Reply:
        with self._lock:
            down, down_retry = self._down, self._down_retry_after
            throttle = self._throttles.pop(0) if self._throttles and not down else None
        if down:
            headers = {"Retry-After": str(down_retry)} if down_retry is not None else {}
            reply = Reply(503, {"message": "Service Unavailable"}, headers)
        elif throttle is not None:
            reply = self.throttled_reply(*throttle)
        else:
            try:
                reply = self.handle(request)
            except Exception as exc:  # a bug in the fake must show as a 500, not a hang
                reply = Reply(500, {"message": f"fake failed: {type(exc).__name__}: {exc}"})
        try:
            body: Any = request.json()
        except ValueError:
            body = request.body.decode("utf-8", "replace")
        headers = {k: ("<redacted>" if k in REDACTED_HEADERS else v)
                   for k, v in request.headers.items()}
        with self._lock:
            self._records.append(Recorded(request.method, request.path, request.query, headers,
                                          body, reply.status, reply.violations,
                                          reply.credential))
        return reply

    def _listen(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _dispatch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                query = {k: tuple(v) for k, v in
                         parse_qs(split.query, keep_blank_values=True).items()}
                request = Request(self.command, split.path, query,
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                reply = fake._serve(request)
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name=f"fake-{self._port}",
                                        daemon=True)
        self._thread.start()
