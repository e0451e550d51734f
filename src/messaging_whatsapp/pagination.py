"""Opaque keyset cursors for listings: {"items": [...], "next_cursor": ...}."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from messaging_whatsapp.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    """A page of a listing; pass next_cursor back as ?cursor= for the next one."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(sort_value: datetime | str | None, row_id: str) -> str:
    """Encode the last row's sort key."""
    value = sort_value.isoformat() if isinstance(sort_value, datetime) else sort_value
    raw = json.dumps([value, row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, str]:
    """Decode a cursor into (sort value, id); InvalidInput when it was not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(row_id, str):
            raise ValueError("bad id")
    except (ValueError, TypeError) as exc:
        raise InvalidInput("cursor is not valid", code="invalid_cursor") from exc
    return value, row_id


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """Decode a cursor whose sort value is a timestamp."""
    value, row_id = decode_cursor(cursor)
    try:
        return datetime.fromisoformat(value), row_id
    except (TypeError, ValueError) as exc:
        raise InvalidInput("cursor is not valid", code="invalid_cursor") from exc
