"""Typed accessors for untrusted webhook payloads, shared by every provider.

Every read of a payload goes through these, so a malformed body raises PayloadError naming the path
(``data.key.id``) instead of escaping as KeyError/TypeError. ``source`` is the provider's name as it
opens each message ("Meta" gives ``Meta payload: entry[0].id is missing or empty``).
"""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime
from typing import Any

import orjson

from messaging_whatsapp.providers.base import PayloadError, WebhookRequest

JsonObject = dict[str, Any]


def fail(source: str, message: str) -> PayloadError:
    """A PayloadError reading ``<source> payload: <message>``."""
    return PayloadError(f"{source} payload: {message}")


def as_object(source: str, value: object, path: str) -> JsonObject:
    """``value`` when it is a JSON object, else PayloadError."""
    if not isinstance(value, dict):
        raise fail(source, f"{path} must be an object, got {type(value).__name__}")
    return value


def as_list(source: str, value: object, path: str) -> list[Any]:
    """``value`` when it is a JSON array, else PayloadError."""
    if not isinstance(value, list):
        raise fail(source, f"{path} must be a list, got {type(value).__name__}")
    return value


def req_object(source: str, parent: JsonObject, key: str, path: str) -> JsonObject:
    """The object at ``key``; PayloadError when it is absent or not an object."""
    if key not in parent:
        raise fail(source, f"{path}.{key} is missing")
    return as_object(source, parent[key], f"{path}.{key}")


def opt_object(source: str, parent: JsonObject, key: str, path: str) -> JsonObject | None:
    """The object at ``key``, None when it is absent or null."""
    value = parent.get(key)
    return None if value is None else as_object(source, value, f"{path}.{key}")


def opt_list(source: str, parent: JsonObject, key: str, path: str) -> list[Any]:
    """The list at ``key``, empty when it is absent or null."""
    value = parent.get(key)
    return [] if value is None else as_list(source, value, f"{path}.{key}")


def opt_str(source: str, parent: JsonObject, key: str, path: str) -> str | None:
    """The string at ``key``, None when it is absent or null."""
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(source, f"{path}.{key} must be a string, got {type(value).__name__}")
    return value


def req_str(source: str, parent: JsonObject, key: str, path: str) -> str:
    """The non-empty string at ``key``; PayloadError when it is absent, null or empty."""
    value = opt_str(source, parent, key, path)
    if not value:
        raise fail(source, f"{path}.{key} is missing or empty")
    return value


def opt_bool(source: str, parent: JsonObject, key: str, path: str) -> bool | None:
    """The boolean at ``key``, None when it is absent or null."""
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise fail(source, f"{path}.{key} must be a boolean, got {type(value).__name__}")
    return value


def opt_number(source: str, parent: JsonObject, key: str, path: str) -> float | None:
    """The number at ``key`` as a float, None when it is absent or null (a boolean is refused)."""
    value = parent.get(key)
    if value is None:
        return None
    # bool is an int subclass; a boolean coordinate is a malformed payload, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(source, f"{path}.{key} must be a number, got {type(value).__name__}")
    return float(value)


def integer(value: object) -> int | None:
    """``value`` as an int when it is an integer (never a bool) or a string of ASCII digits, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    return None


def from_seconds(source: str, seconds: float, path: str) -> datetime:
    """The UTC time of unix ``seconds``; PayloadError when it is out of range."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise fail(source, f"{path} is out of range: {seconds!r}") from exc


def rfc3339(source: str, parent: JsonObject, key: str, path: str) -> datetime:
    """The RFC 3339 time at ``key`` (a naive time is read as UTC); PayloadError when absent or invalid."""
    value = req_str(source, parent, key, path)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise fail(source, f"{path}.{key} must be an RFC 3339 time, got {value!r}") from exc
    # Go always writes an offset; a naive time would be a foreign producer, read it as UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _loads(text: str | bytes) -> object:
    """Parse JSON with orjson (the hot path); what it refuses, the standard library reads or
    explains: integers over 64 bits, NaN, nesting deeper than 1024."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def load_object(source: str, text: str | bytes, what: str) -> JsonObject:
    """The JSON object encoded in ``text``; PayloadError naming ``what`` when it is not one."""
    try:
        payload = _loads(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise fail(source, f"{what} is not valid JSON ({exc})") from exc
    return as_object(source, payload, what)


def body_json(request: WebhookRequest) -> object:
    """The request's body parsed as JSON, once for all its readers; ValueError when it is not JSON."""
    if not request.parsed_body:
        request.parsed_body.append(_loads(request.body))
    return request.parsed_body[0]


def body_object(source: str, request: WebhookRequest) -> JsonObject:
    """The request's body as a JSON object; PayloadError when it is not one."""
    try:
        payload = body_json(request)
    except (ValueError, RecursionError) as exc:
        raise fail(source, f"body is not valid JSON ({exc})") from exc
    return as_object(source, payload, "body")


def body_json_or_none(request: WebhookRequest) -> object:
    """The request's body parsed as JSON, or None when it is not valid JSON."""
    try:
        return body_json(request)
    except (ValueError, RecursionError):
        return None


def body_str(request: WebhookRequest, key: str) -> str | None:
    """The string at ``key`` of the request's JSON object body, or None when there is none."""
    parsed = body_json_or_none(request)
    value = parsed.get(key) if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None


def json_or_none(text: str | bytes) -> object:
    """The JSON value encoded in ``text``, or None when it is not valid JSON."""
    try:
        return _loads(text)
    except (ValueError, RecursionError):
        return None


def json_str(text: str | bytes, key: str) -> str | None:
    """The string at ``key`` of the JSON object in ``text``, or None when there is none."""
    parsed = json_or_none(text)
    value = parsed.get(key) if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None


def secret_matches(given: str | None, expected: str | None) -> bool:
    """Constant-time equality that never accepts an empty secret on either side."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
