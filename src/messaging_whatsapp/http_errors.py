"""How an error leaves over HTTP: its status, and the one JSON body every endpoint answers with.

The API's exception handlers (api/errors.py) and the webhook's plain routes both answer this way.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from messaging_whatsapp import errors

STATUS_BY_ERROR: list[tuple[type[errors.EngineError], int]] = [
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidInput, 422),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.MalformedPayload, 400),
    (errors.PayloadTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.RateLimited, 429),
    (errors.UpstreamError, 502),
]


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> JSONResponse:
    """The uniform error body (`details` add fields next to code and message)."""
    body = {**(details or {}), "code": code, "message": message}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def status_for(error: errors.EngineError) -> int:
    """The HTTP status of a domain error."""
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 400
