"""Evolution API's error answers, classified by what to do about them.

Errors are ``{status, error, response: {message}}`` where ``message`` is a string or a list; a
number that is not on WhatsApp is a 400 whose list holds ``{jid, exists: false, number}``; an
unknown instance is a 404 (checked before the key), a wrong key a 401; a session that dropped shows
as Baileys' "Connection Closed" (500 when the number check fails, 400 when the send itself fails):
nothing was sent, the channel needs attention.
"""

from __future__ import annotations

import json

import httpx

from messaging_whatsapp.providers.http import http_error_class, json_body, retry_after
from messaging_whatsapp.providers.outbound import ErrorClass, SendError

# Baileys' errors when the WhatsApp session is not usable (Boom messages, lower-cased).
_DISCONNECTED = ("connection closed", "connection terminated", "connection was lost", "connection lost")
_MAX_TITLE = 300


def _messages(body: object) -> list[object]:
    """The items of ``response.message`` (a string or a list), empty when the body has none."""
    response = body.get("response") if isinstance(body, dict) else None
    message = response.get("message") if isinstance(response, dict) else None
    if message is None:
        return []
    return message if isinstance(message, list) else [message]


def _title(response: httpx.Response, messages: list[object]) -> str:
    parts = [item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in messages]
    text = "; ".join(parts) or f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return text[:_MAX_TITLE]


def _not_on_whatsapp(messages: list[object]) -> bool:
    return any(isinstance(item, dict) and item.get("exists") is False for item in messages)


def _disconnected(title: str) -> bool:
    lowered = title.lower()
    return any(marker in lowered for marker in _DISCONNECTED)


def _classify(status: int, messages: list[object], title: str) -> tuple[ErrorClass, str]:
    """(class, code) of an error answer: the message's meaning first, then the HTTP status."""
    if _not_on_whatsapp(messages):
        return ErrorClass.INVALID_RECIPIENT, "not_on_whatsapp"
    if _disconnected(title):
        return ErrorClass.PAUSE_CHANNEL, "instance_disconnected"
    if status == 403 and "already in use" in title.lower():
        # /instance/create with a taken name: the request is wrong, the credentials are fine.
        return ErrorClass.FIX_REQUEST, "instance_exists"
    if status == 404:
        return ErrorClass.PAUSE_CHANNEL, "instance_not_found"
    if status == 504:
        # Evolution never answers 504: a proxy in front gave up while Evolution may still be sending.
        return ErrorClass.UNKNOWN_OUTCOME, "gateway_timeout"
    codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 429: "rate_limited"}
    code = codes.get(status, "server_error" if status >= 500 else f"http_{status}")
    return http_error_class(status), code


def error_for(response: httpx.Response) -> SendError:
    """The SendError for a non-2xx Evolution answer."""
    messages = _messages(json_body(response))
    title = _title(response, messages)
    error_class, code = _classify(response.status_code, messages, title)
    wait = retry_after(response) if error_class is ErrorClass.RETRY else None
    return SendError(error_class, code, title, retry_after=wait, http_status=response.status_code)
