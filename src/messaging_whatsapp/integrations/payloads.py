"""What a receiver gets: the Standard Webhooks body and the headers that sign it.

The body is `{"type", "timestamp", "data"}` (the payload convention of standardwebhooks.com):
`timestamp` is when the event happened (ISO 8601, UTC), `data` the event's payload with its
`event_id` and `tenant_id`. It is fixed when the event arrives, so every attempt sends the same
bytes; the headers are made again at each attempt (`webhook-timestamp` is the attempt's time),
with `webhook-id` the event's id, stable across attempts, for the receiver to drop repeats.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks import Webhook


def delivery_body(
    event_type: str, occurred_at: datetime, event_id: str, tenant_id: str, payload: dict[str, Any]
) -> str:
    """The JSON body for one event (the payload's own keys first, then its ids)."""
    data = {**payload, "event_id": event_id, "tenant_id": tenant_id}
    timestamp = occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return orjson.dumps({"type": event_type, "timestamp": timestamp, "data": data}).decode()


def signed_headers(secret: str, message_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: `webhook-signature` is
    `v1,` + base64(HMAC-SHA256(the secret's bytes, "{id}.{unix seconds}.{body}"))."""
    signature = Webhook(secret).sign(message_id, at, body)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
