"""A tiny stand-in for one shop component, run by Infrastream's `local` target.

It listens on $PORT and answers `/healthz` with its component name and the version it was
deployed as, so you can see which release runs where. Standard library only.
"""

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMPONENT = os.environ.get("SHOP_COMPONENT", "shop")
VERSION = os.environ.get("INFRASTREAM_VERSION", "unknown")
RELEASE = os.environ.get("INFRASTREAM_RELEASE", "")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/healthz", "/"):
            body = json.dumps(
                {"component": COMPONENT, "version": VERSION, "release": RELEASE, "ok": True}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{COMPONENT}: {format % args}\n")


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)

    def stop(*_: object) -> None:
        server.server_close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"{COMPONENT} {VERSION} listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
