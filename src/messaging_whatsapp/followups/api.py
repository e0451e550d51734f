"""The followups routes under /api/v1: thin over the service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["followups"])
