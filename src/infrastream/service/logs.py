"""Structured logs: one event per line, JSON when stderr is not a terminal (or when asked).

Everything goes through the standard `logging` root handler with structlog's formatter, so
uvicorn's own logs, the existing `logging` calls and the structlog events share one format.
The request id of the HTTP request being served (`REQUEST_ID`) is added to every event
logged while serving it. Events carry ids (release, stage, environment, attempt), never a
secret value: callers log names and ids only.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import IO, Any

import structlog

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def _request_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    rid = REQUEST_ID.get()
    if rid is not None and "request_id" not in event:
        event["request_id"] = rid
    return event


def configure(log_format: str | None = None, level: int = logging.INFO,
              stream: IO[str] | None = None) -> None:
    """`json`, `console`, or None: JSON unless stderr is a terminal."""
    out = stream if stream is not None else sys.stderr
    json = log_format == "json" or (log_format is None and not out.isatty())
    shared: list[Any] = [structlog.contextvars.merge_contextvars, _request_id,
                         structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                         structlog.processors.TimeStamper(fmt="iso", utc=True)]
    renderer: Any = (structlog.processors.JSONRenderer() if json
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger, cache_logger_on_first_use=False)
    handler = logging.StreamHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # not two lines per /readyz
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
