"""A plain-HTTP stand-in for the Infrastream API, for CLI tests that need to see exactly what
the CLI asks (its headers) and to answer in ways a real server would not (no entity tag, a
fixed body): a real `ThreadingHTTPServer` on loopback, answering every GET with `answer`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str, dict[str, str], int], tuple[int, Any, dict[str, str]]]
"""(path, the request's headers in lower case, how many requests so far) → (status, the JSON
body or None for none, extra response headers)."""


@contextmanager
def stand_in(answer: Answer) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """The stand-in's base URL, and the headers of every request it received."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.append(headers)
            status, body, extra = answer(self.path, headers, len(seen))
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            if body is not None and "Content-Type" not in extra:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
