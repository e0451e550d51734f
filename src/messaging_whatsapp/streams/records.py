"""What both stream backends store alike: entry fields as JSON, and the DLQ record format."""

from __future__ import annotations

import json

from messaging_whatsapp.db import utcnow
from messaging_whatsapp.streams.base import StreamEntry


def encode_fields(fields: dict[str, str]) -> str:
    """Serialize entry fields as JSON (how the table stores them and the DLQ keeps originals)."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def decode_fields(text: str) -> dict[str, str]:
    """Parse fields written by encode_fields."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("stream fields must be a JSON object")
    return {str(key): str(value) for key, value in data.items()}


def dead_letter_fields(
    stream: str, group: str, entry: StreamEntry, error: str, item: str | None = None
) -> dict[str, str]:
    """The DLQ entry recording `entry`, which failed in `group` of `stream` with `error`; with
    `item`, only that item of the entry's batch failed (where it is in the raw request)."""
    record = {
        "stream": stream,
        "group": group,
        "entry_id": entry.id,
        "fields": encode_fields(entry.fields),
        "error": error,
        "deliveries": str(entry.deliveries),
        "failed_at": utcnow().isoformat(),
    }
    if item is not None:
        record["item"] = item
    return record


def dead_letter_origin(fields: dict[str, str]) -> tuple[str, dict[str, str]] | None:
    """The stream and original fields of a DLQ entry, or None when it is not one of ours."""
    try:
        return fields["stream"], decode_fields(fields["fields"])
    except (KeyError, ValueError):
        return None


def require_fields(fields: dict[str, str]) -> None:
    """Reject an entry without fields (Redis cannot store one), so both backends agree."""
    if not fields:
        raise ValueError("a stream entry needs at least one field")
