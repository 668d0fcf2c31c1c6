"""`infrastream serve`: the API and the engine in one process, on the embedded default.

With no configuration it keeps everything in `~/.infrastream` (SQLite, WAL mode); set
`--database-url` (or INFRASTREAM_DATABASE_URL) to use PostgreSQL. The first start creates the
`admin` user and prints its token once (it is also kept in `<data dir>/admin-token`, mode 0600).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from infrastream.service import logs, sources
from infrastream.service.auditing import refusals, signing
from infrastream.service.context import Services, node_name, open_services
from infrastream.service.engine.loop import Engine
from infrastream.service.engine.wakeups import Wakeups
from infrastream.service.identity import BOOTSTRAP_FILE, bootstrap_admin
from infrastream.service.records.leases import Leases

from .app import create_app

CHECKPOINT_SECONDS = 60.0
CHECKPOINT_JOB = "checkpoint"
SOURCE_POLL_SECONDS = 5.0


Extension = Callable[[FastAPI, Services], None]
"""Adds more to the app (the CLI mounts the portal this way: api must not import it)."""


def run_server(data_dir: Path, database_url: str | None, host: str, port: int,
               *, poll: float = 2.0, extend: Extension | None = None,
               node: str | None = None, log_format: str | None = None,
               public_url: str | None = None) -> None:
    logs.configure(log_format or os.environ.get("INFRASTREAM_LOG_FORMAT"))
    services = open_services(data_dir, database_url)
    services.node = node_name(node)
    services.public_url = public_url.rstrip("/") if public_url else None
    stall = os.environ.get("INFRASTREAM_ENGINE_STALL_SECONDS")
    if stall:
        services.heartbeat.stall_after = float(stall)
    token = bootstrap_admin(services)
    if token:
        print(f"admin token (shown once, also in {data_dir / BOOTSTRAP_FILE}): {token}",
              flush=True)
    serve(services, host, port, poll=poll, extend=extend,
          ready=lambda: print(f"infrastream serving on http://{host}:{port} "
                              f"(data: {data_dir})", flush=True))


def serve(services: Services, host: str, port: int, *, poll: float = 2.0,
          ready: Callable[[], None] | None = None, extend: Extension | None = None) -> None:
    """Run the engine and the HTTP server on `services` until SIGTERM or Ctrl-C.

    A server whose audit signing key is not the database's refuses to start (one key per
    database, see `signing.enforce_key`), and so does a server whose node name another live
    server has (`records.nodes`: the name owns the job leases)."""
    signing.enforce_key(services)
    engine = Engine(services, poll=poll)
    engine.node.register()
    wakeups = Wakeups(services, engine.take)
    wakeups.start()
    engine.start()
    stop = threading.Event()
    threading.Thread(target=_checkpoints, args=(services, engine.leases, stop), daemon=True,
                     name="audit-checkpoints").start()
    threading.Thread(target=_source_fetches, args=(services, stop), daemon=True,
                     name="manifest-sources").start()
    app = create_app(services)
    if extend is not None:
        extend(app, services)
    if ready is not None:
        app.router.on_startup.append(ready)
    # uvicorn's own logs (its access log included) go through the root handler of `logs`
    config = uvicorn.Config(app, host=host, port=port, log_level="info", access_log=True,
                            log_config=None)
    server = uvicorn.Server(config)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    try:
        server.run()
    finally:
        stop.set()
        wakeups.stop()
        engine.stop()
        refusals.flush(services, everything=True)  # the counts of open refusal windows
        services.db.dispose()
    sys.stdout.flush()


def _checkpoints(services: Services, leases: Leases, stop: threading.Event,
                 every: float = CHECKPOINT_SECONDS) -> None:
    """Sign the head of the audit chain regularly, so a removed or rewritten tail shows;
    write the counts of refusal windows that closed first, so they are signed too. Each
    server flushes its own refusal counts; one server at a time signs (the lease)."""
    while not stop.wait(every):
        try:
            refusals.flush(services)
            if leases.claim(CHECKPOINT_JOB):
                try:
                    signing.checkpoint(services)
                finally:
                    leases.release(CHECKPOINT_JOB)
        except Exception:  # a failed checkpoint is retried next time; serving goes on
            logging.getLogger("infrastream.audit").exception("audit checkpoint failed")


def _source_fetches(services: Services, stop: threading.Event,
                    every: float = SOURCE_POLL_SECONDS) -> None:
    """Fetch every manifest source whose interval has passed, and apply its new commits."""
    while not stop.wait(every):
        try:
            for name in sources.due(services):
                sources.sync_source(services, name)
        except Exception:  # a failed fetch is recorded on the source; the loop goes on
            logging.getLogger("infrastream.sources").exception("manifest source sync failed")
