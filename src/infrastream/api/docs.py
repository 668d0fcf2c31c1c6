"""Interactive API documentation at /docs that works without the network.

FastAPI's default page loads Swagger UI from a CDN, which leaves it blank on a machine
without internet access. Here the page is FastAPI's, but its script, stylesheet and icon
are the Swagger UI files vendored in `static/swagger-ui` (see its README), served by us.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "swagger-ui"
PREFIX = "/docs/assets"
SWAGGER_UI_VERSION = "5.35.0"


def mount(app: FastAPI) -> None:
    """Serve the documentation page at /docs and its assets under /docs/assets."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets")

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon-32x32.png")

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
