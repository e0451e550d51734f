"""App factories for `uvicorn --factory` with several worker processes."""

from __future__ import annotations

from fastapi import FastAPI

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.config import get_settings


def api_app() -> FastAPI:
    """The REST API alone."""
    return create_app(get_settings(), Role.API)


def webhook_app() -> FastAPI:
    """The webhook receiver alone."""
    return create_app(get_settings(), Role.WEBHOOK)
