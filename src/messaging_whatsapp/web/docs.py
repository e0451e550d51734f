"""`/docs` and `/redoc` with their scripts served from the vendored copies: they work offline."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"
VENDOR = f"{STATIC_PREFIX}/vendor"
OPENAPI_URL = "/openapi.json"
TITLE = "messaging-whatsapp"

router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    """The web UI's static files (mounted at STATIC_PREFIX)."""
    return StaticFiles(directory=STATIC_DIR)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    """Swagger UI over the engine's OpenAPI document."""
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - API",
        swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_PREFIX}/favicon.svg",
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    """ReDoc over the engine's OpenAPI document, without Google's fonts."""
    return get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=f"{TITLE} - API",
        redoc_js_url=f"{VENDOR}/redoc.standalone.js",
        redoc_favicon_url=f"{STATIC_PREFIX}/favicon.svg",
        with_google_fonts=False,
    )
