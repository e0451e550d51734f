"""App factories for `uvicorn --factory` with several worker processes."""

from __future__ import annotations

import logging
import sys

from fastapi import FastAPI

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.config import Settings, get_settings


def _configure_logging(settings: Settings) -> None:
    """Each spawned worker process logs as `serve` does (the parent's set-up is not inherited): to
    stderr at LOG_LEVEL, httpx's request lines (URLs with webhook secrets) left out."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


def api_app() -> FastAPI:
    """The REST API alone."""
    settings = get_settings()
    _configure_logging(settings)
    return create_app(settings, Role.API)


def webhook_app() -> FastAPI:
    """The webhook receiver alone."""
    settings = get_settings()
    _configure_logging(settings)
    return create_app(settings, Role.WEBHOOK)
