"""`infrastream serve`: the API and the engine in one process, on the embedded default.

With no configuration it keeps everything in `~/.infrastream` (SQLite, WAL mode); set
`--database-url` (or INFRASTREAM_DATABASE_URL) to use PostgreSQL. The first start creates the
`admin` user and prints its token once (it is also kept in `<data dir>/admin-token`, mode 0600).
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import uvicorn

from infrastream.service.context import open_services
from infrastream.service.engine import Engine
from infrastream.service.identity import BOOTSTRAP_FILE, bootstrap_admin

from .app import create_app


def run_server(data_dir: Path, database_url: str | None, host: str, port: int,
               *, poll: float = 2.0) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    services = open_services(data_dir, database_url)
    token = bootstrap_admin(services)
    if token:
        print(f"admin token (shown once, also in {data_dir / BOOTSTRAP_FILE}): {token}",
              flush=True)
    engine = Engine(services, poll=poll)
    engine.start()
    app = create_app(services)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print(f"infrastream serving on http://{host}:{port} (data: {data_dir})", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    try:
        server.run()
    finally:
        engine.stop()
        services.db.dispose()
    sys.stdout.flush()
