"""The engine's error hierarchy. Services raise these; the HTTP layer maps each to a status.

    EngineError            code "error"
    ├── NotFound           code "not_found"        (another tenant's id is also NotFound)
    ├── Conflict           code "conflict"
    ├── InvalidInput       code "invalid_input"
    ├── Unauthorized       code "unauthorized"
    ├── Forbidden          code "forbidden"
    ├── MalformedPayload   code "malformed_payload"    (a body we cannot read at all)
    ├── PayloadTooLarge    code "payload_too_large"
    ├── UnsupportedMediaType code "unsupported_media_type"
    ├── RateLimited        code "rate_limited"          (carries retry_after seconds)
    └── UpstreamError      code "upstream_error"        (a provider refused what we asked on the
                                                         tenant's behalf: 502, naming the number)

Subclasses may set a more precise `code` (for example "opted_out" on a Conflict).
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Base of every error a user can cause; its message is safe to show."""

    code = "error"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        # Extra fields for the error body (e.g. a campaign's current status on an illegal transition).
        self.details = details or {}
        if code is not None:
            self.code = code


class NotFound(EngineError):
    """The thing does not exist for this tenant."""

    code = "not_found"


class Conflict(EngineError):
    """The request clashes with the current state (duplicate, illegal transition)."""

    code = "conflict"


class InvalidInput(EngineError):
    """The request is well-formed but its values are not acceptable."""

    code = "invalid_input"


class Unauthorized(EngineError):
    """No valid credentials."""

    code = "unauthorized"


class Forbidden(EngineError):
    """Valid credentials without the right to do this."""

    code = "forbidden"


class MalformedPayload(EngineError):
    """The body cannot be read (truncated JSON, not the provider's shape)."""

    code = "malformed_payload"


class PayloadTooLarge(EngineError):
    """The body is over the configured limit."""

    code = "payload_too_large"


class UnsupportedMediaType(EngineError):
    """The content type is not one this endpoint reads."""

    code = "unsupported_media_type"


class RateLimited(EngineError):
    """Too many requests; try again after `retry_after` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamError(EngineError):
    """A provider call made on the caller's behalf failed (bad token, provider down): not the
    caller's request and not our crash."""

    code = "upstream_error"
