"""Rendering pages: the Jinja2 environment, its filters, and the page/redirect responses.

Every response goes through `page` or `redirect`, which also store the session cookie when
it changed, so no handler can forget it. Times are rendered as `<time datetime=…>` in UTC;
`static/portal.js` turns them into the viewer's time zone and keeps the absolute UTC time
on hover.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from infrastream import __version__
from infrastream.domain.insights import human

from .session import Viewer

STATE_TONE = {
    "healthy": "ok", "succeeded": "ok", "passed": "ok", "completed": "ok", "approve": "ok",
    "unchanged": "muted",
    "failed": "bad", "rejected": "bad", "degraded": "bad", "missing": "bad", "reject": "bad",
    "drifted": "bad", "broken": "bad", "unhealthy": "bad", "unknown": "wait", "committed": "ok",
    "awaiting-approval": "wait", "queued": "wait", "ready": "wait", "frozen": "wait",
    "changed": "wait", "added": "wait", "removed": "bad",
    "deploying": "busy", "verifying": "busy", "running": "busy", "active": "busy",
    "pending": "muted", "not-deployed": "muted", "skipped": "muted", "empty": "muted",
}


def _time(value: str | datetime | None, style: str = "") -> Markup:
    if not value:
        return Markup('<span class="muted">—</span>')
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    iso = moment.isoformat().replace("+00:00", "Z")
    absolute = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    shown = moment.strftime("%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{}" title="{}" data-style="{}">{}</time>').format(
        iso, absolute, style, shown)


def _tone(state: str | None) -> str:
    return STATE_TONE.get(state or "", "muted")


def _badge(state: str | None, text: str | None = None) -> Markup:
    label = text if text is not None else (state or "—").replace("-", " ")
    return Markup('<span class="badge {}">{}</span>').format(_tone(state), label)


def _short(digest: str | None, length: int = 12) -> str:
    if not digest:
        return ""
    return digest.split(":", 1)[-1][:length]


def _compact(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


ENVIRONMENT = Environment(
    loader=PackageLoader("infrastream.portal", "templates"),
    autoescape=select_autoescape(("html",), default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
def _duration(seconds: float | None) -> str:
    return human(seconds)


ENVIRONMENT.filters.update(duration=_duration, time=_time, tone=_tone, badge=_badge, short=_short,
                           compact=_compact, plural=_plural)
ENVIRONMENT.globals.update(version=__version__, escape=escape)


def root(request: Request) -> str:
    """The path the portal is mounted at (e.g. `/portal`), without a trailing slash."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def render(request: Request, viewer: Viewer, template: str, **context: Any) -> str:
    portal = request.app.state.portal
    return ENVIRONMENT.get_template(template).render(
        request=request, root=root(request), viewer=viewer, user=viewer.principal,
        csrf=viewer.csrf, demo=portal.demo, path=request.url.path, **context)


SECURITY_HEADERS = {
    # no framing (an approve button must not be clickjacked), no foreign scripts
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page(request: Request, viewer: Viewer, template: str, *, code: int = 200,
         **context: Any) -> Response:
    if "flash" not in context:
        context["flash"] = viewer.take_flash()
    body = render(request, viewer, template, **context)
    return viewer.store(request, HTMLResponse(body, status_code=code,
                                              headers=SECURITY_HEADERS))


def redirect(request: Request, viewer: Viewer, path: str) -> Response:
    """303 See Other to `path` (a portal path like `/releases`), keeping the session."""
    return viewer.store(request, RedirectResponse(root(request) + path, status_code=303,
                                                  headers=SECURITY_HEADERS))
