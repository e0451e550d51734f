"""A small real HTTP/1.1 server for provider fakes, with scripted faults.

Provider adapters are tested over real HTTP: each fake provider is a handler function behind this
server. Faults are scripted ahead of the requests they hit, so a test can say "the next request gets
a 429 with Retry-After", "the next one times out", or "the next one is accepted but its answer is
lost". The server records every request and, separately, those the provider accepted (its handler
ran), which is what "each message accepted at most once" is checked against.
"""

from __future__ import annotations

import asyncio
import enum
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}  # fmt: skip
_MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake provider received it."""

    method: str
    path: str
    query: dict[str, str]
    # Lower-cased header names.
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body parsed as an url-encoded form (last value wins)."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: a JSON body (dict or list), raw bytes, or nothing."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        """Body bytes and headers, with a JSON content type for JSON bodies."""
        headers = dict(self.headers)
        if self.body is None:
            return b"", headers
        if isinstance(self.body, bytes):
            return self.body, headers
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(self.body).encode(), headers


class Fault(enum.Enum):
    """Transport-level misbehaviour for the next request."""

    # The connection is reset before the provider looks at the request: nothing was accepted.
    RESET = "reset"
    # The provider never answers (the client's read timeout fires); nothing was accepted.
    TIMEOUT = "timeout"
    # The provider accepts the request (the handler runs) and the answer is lost on the way back.
    LOST_ANSWER = "lost_answer"


Handler = Callable[[RecordedRequest], Reply]
Scripted = Reply | Fault


class FakeHttpServer:
    """A threaded asyncio HTTP server on a loopback port that answers with `handler`."""

    def __init__(self, handler: Handler, *, hold_seconds: float = 30.0) -> None:
        self.handler = handler
        self.hold_seconds = hold_seconds
        self.requests: list[RecordedRequest] = []
        self.accepted: list[RecordedRequest] = []
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    def script(self, *steps: Scripted) -> None:
        """Queue answers or faults for the next requests, in order, before the handler is used."""
        with self._lock:
            self._script.extend(steps)

    def __enter__(self) -> FakeHttpServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    def _next_step(self) -> Scripted | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                if not await self._answer(request, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()

    async def _answer(self, request: RecordedRequest, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must not be reused."""
        with self._lock:
            self.requests.append(request)
        step = self._next_step()
        if step is Fault.RESET:
            writer.transport.abort()
            return False
        if step is Fault.TIMEOUT:
            await asyncio.sleep(self.hold_seconds)
            writer.transport.abort()
            return False
        if isinstance(step, Reply):
            reply = step
        else:
            reply = self.handler(request)
            if reply.status < 300:
                with self._lock:
                    self.accepted.append(request)
        if step is Fault.LOST_ANSWER:
            writer.transport.abort()
            return False
        writer.write(_encode_response(reply))
        await writer.drain()
        return True


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length > _MAX_BODY:
        raise ValueError("body too large")
    body = await reader.readexactly(length) if length else b""
    parts = urlsplit(target)
    return RecordedRequest(method, parts.path, dict(parse_qsl(parts.query)), headers, body)


def _encode_response(reply: Reply) -> bytes:
    body, headers = reply.encode()
    headers["Content-Length"] = str(len(body))
    status_line = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n"
    header_lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (status_line + header_lines + "\r\n").encode("latin-1") + body
