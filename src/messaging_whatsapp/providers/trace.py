"""What a send looked like on the wire, for the campaign logs (seed 002: duration, HTTP status, and
for failures the request and the answer), with credentials removed and sizes bounded.

The sender opens a trace around one provider call (`tracing`); the provider clients' response hook
(providers/http.py) files the last answer into it. A context variable carries it, so concurrent
sends over one shared client never see each other's answers, and no provider module changes.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx

# Keys whose values are credentials, wherever they appear (headers, JSON bodies, forms).
SECRET_KEY = re.compile(
    r"token|secret|passw|apikey|api[-_]key|authorization|signature|credential|^auth|^hash$", re.IGNORECASE
)
REDACTED = "[redacted]"
# One logged value at most this long; a whole request or answer at most MAX_CHARS as JSON.
MAX_VALUE_CHARS = 1000
MAX_CHARS = 4000
# Headers worth keeping in a log (the rest is transport noise).
KEPT_HEADERS = frozenset({"content-type", "retry-after", "authorization", "apikey", "token", "x-api-key"})

_current: contextvars.ContextVar[SendTrace | None] = contextvars.ContextVar("send_trace", default=None)


@dataclass
class SendTrace:
    """One provider call: how long it took and the last answer it got."""

    duration_ms: int | None = None
    response: httpx.Response | None = None

    @property
    def http_status(self) -> int | None:
        """The answer's HTTP status, when an answer came."""
        return self.response.status_code if self.response is not None else None

    def request_data(self) -> dict[str, Any] | None:
        """The request as sent, credentials removed, bounded in size."""
        if self.response is None:
            return None
        request = self.response.request
        return bounded(
            {
                "method": request.method,
                "url": str(request.url.copy_with(query=None)),
                "headers": _headers(request.headers),
                "body": _body(request.headers.get("content-type", ""), _content(request)),
            }
        )

    def response_data(self) -> dict[str, Any] | None:
        """The answer as received, credentials removed, bounded in size."""
        if self.response is None:
            return None
        response = self.response
        try:
            content = response.content
        except httpx.ResponseNotRead:
            content = b""
        return bounded(
            {
                "status": response.status_code,
                "headers": _headers(response.headers),
                "body": _body(response.headers.get("content-type", ""), content),
            }
        )


@contextlib.contextmanager
def tracing() -> Iterator[SendTrace]:
    """Open a trace for the provider call made inside the block; it times the block."""
    trace = SendTrace()
    token = _current.set(trace)
    started = time.perf_counter()
    try:
        yield trace
    finally:
        trace.duration_ms = round((time.perf_counter() - started) * 1000)
        _current.reset(token)


async def record_response(response: httpx.Response) -> None:
    """The provider clients' response hook: the answer goes to the open trace, if any."""
    trace = _current.get()
    if trace is not None:
        trace.response = response


def redact(value: Any) -> Any:
    """The value with every credential-named key's value replaced, and long strings cut."""
    if isinstance(value, dict):
        return {
            str(key): REDACTED if SECRET_KEY.search(str(key)) else redact(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value[:50]]
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + "…"
    return value


def bounded(data: dict[str, Any]) -> dict[str, Any]:
    """Redacted, and cut to MAX_CHARS of JSON when larger (a log row must stay small)."""
    clean = redact(data)
    text = json.dumps(clean, ensure_ascii=False, default=str)
    if len(text) <= MAX_CHARS:
        return dict(clean)
    return {"truncated": True, "json": text[:MAX_CHARS]}


def _headers(headers: httpx.Headers) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() in KEPT_HEADERS}


def _content(request: httpx.Request) -> bytes:
    try:
        return request.content
    except httpx.RequestNotRead:
        return b""


def _body(content_type: str, content: bytes) -> Any:
    """JSON or a form as data (so their keys can be redacted), else text."""
    if not content:
        return None
    text = content.decode("utf-8", "replace")
    if "json" in content_type:
        try:
            return json.loads(text)
        except ValueError:
            return text
    if "x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(text, keep_blank_values=True))
    return text
