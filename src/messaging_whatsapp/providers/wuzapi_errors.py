"""WuzAPI's error answers, classified by what to do about them.

WuzAPI answers 401 to a bad token, 400 to a bad payload, and 500 with ``No session`` (no whatsmeow
client: never connected or killed), ``Error sending message: <whatsmeow error>`` or ``failed to
upload file``. Newer builds lower-case every message, so all matching is case-insensitive.

whatsmeow's send errors tell whether the message may have left: a missing socket or device, a failed
device-list query or encryption happen before the stanza is written (safe to retry); a timeout waiting
for the server's ack, a cancelled context or a failed write happen after (unknown outcome); an error
ack (``server returned error 479``) means the server received and refused it (not delivered, safe to
retry). An unrecognised send error is treated as an unknown outcome.
"""

from __future__ import annotations

import httpx

from messaging_whatsapp.providers.http import http_error_class, json_body, retry_after
from messaging_whatsapp.providers.outbound import ErrorClass, SendError

_MAX_TITLE = 300

# Error texts (lower-cased) meaning the session cannot send: no whatsmeow client or no socket.
_DISCONNECTED = ("no session", "not connected", "frame socket is closed")
# ... or the device is not paired (whatsmeow ErrNotLoggedIn).
_LOGGED_OUT = ("doesn't contain a device jid", "not logged in")
# Send errors raised after the stanza may have been written.
_MAYBE_SENT = ("timed out waiting for message send response", "context deadline exceeded", "context canceled")
# Send errors raised before the stanza was written (device lists, LIDs, encryption, marshalling).
_BEFORE_SENDING = (
    "failed to get device list",
    "failed to get lid",
    "no lid found",
    "failed to get user info",
    "failed to fetch lid mappings",
    "failed to prefetch sessions",
    "failed to encrypt",
    "no signal session established",
    "failed to marshal",
)


def error_text(response: httpx.Response) -> str:
    """WuzAPI's ``error`` (and ``details``) text, else the start of the raw body."""
    body = json_body(response)
    if isinstance(body, dict):
        parts = [str(body[key]) for key in ("error", "details") if body.get(key)]
        if parts:
            return ": ".join(parts)[:_MAX_TITLE]
    return response.text.strip()[:_MAX_TITLE] or f"HTTP {response.status_code}"


def mentions(text: str, needles: tuple[str, ...]) -> bool:
    """Whether the (lower-cased) text contains any of the needles."""
    return any(needle in text for needle in needles)


def _sending_error(detail: str) -> tuple[ErrorClass, str]:
    """Class of whatsmeow's SendMessage error (the text after "error sending message:")."""
    if mentions(detail, _DISCONNECTED):
        return ErrorClass.PAUSE_CHANNEL, "instance_disconnected"
    if mentions(detail, _LOGGED_OUT):
        return ErrorClass.PAUSE_CHANNEL, "instance_logged_out"
    if mentions(detail, _MAYBE_SENT):
        return ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome"
    if "server returned error" in detail:
        # An error ack: WhatsApp's server took the stanza and refused it, so it was not delivered.
        return ErrorClass.RETRY, "server_rejected"
    if mentions(detail, _BEFORE_SENDING):
        return ErrorClass.RETRY, "send_failed"
    # Includes "failed to send message node: <write error>": part of the frame may have gone out.
    return ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome"


def classify_error(status: int, error: str) -> tuple[ErrorClass, str]:
    """Class and code of a WuzAPI error answer (HTTP status and its ``error`` text)."""
    text = error.strip().lower()
    if status in (401, 403):
        return ErrorClass.PAUSE_CHANNEL, "unauthorized"
    if status == 429:
        return ErrorClass.RETRY, "rate_limited"
    if status == 504:
        # A proxy in front of WuzAPI gave up waiting: the send may be under way behind it.
        return ErrorClass.UNKNOWN_OUTCOME, "gateway_timeout"
    if text.startswith("error sending message"):
        return _sending_error(text.partition(":")[2])
    if mentions(text, _DISCONNECTED):
        return ErrorClass.PAUSE_CHANNEL, "instance_disconnected"
    if mentions(text, _LOGGED_OUT):
        return ErrorClass.PAUSE_CHANNEL, "instance_logged_out"
    if "failed to upload" in text:
        return ErrorClass.RETRY, "media_upload_failed"
    if "could not decode image" in text:
        return ErrorClass.FIX_REQUEST, "media_invalid"
    if status == 400:
        return ErrorClass.FIX_REQUEST, "bad_request"
    return http_error_class(status), f"http_{status}"


def error_for(response: httpx.Response) -> SendError:
    """The classified SendError for a WuzAPI error answer."""
    title = error_text(response)
    error_class, code = classify_error(response.status_code, title)
    return SendError(
        error_class, code, title, retry_after=retry_after(response), http_status=response.status_code
    )
