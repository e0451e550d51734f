"""The HTTP server's guard against slow and greedy clients, for every way the engine serves HTTP.

uvicorn times out only an idle kept-alive connection. A client that connects and says nothing, or
sends its headers or body a few bytes at a time, holds its connection (a file descriptor, a parser
and, once the headers are in, a task) for as long as it likes, and one address may open as many
as it likes: a review held 50 of 50 such connections for more than 90 s. The protocol here is
uvicorn's own (httptools, what uvicorn picks when it is installed, or h11) with three limits:

- a request's line and headers arrive within HTTP_HEADER_TIMEOUT_SECONDS of the connection
  opening, or of the request's first byte on a kept-alive connection (the wait between requests
  stays uvicorn's keep-alive timeout);
- its body arrives whole within HTTP_BODY_TIMEOUT_SECONDS of the headers;
- one address holds at most HTTP_MAX_CONNECTIONS_PER_CLIENT connections to the server process at
  once (the networks in HTTP_CONNECTION_CAP_EXEMPT, loopback by default, are not counted).

Time the server itself stops reading (the app has not taken the body that came, or a pipelined
request waits for the answer before it) is not held against the client. A late request is
answered 408 and a connection over the cap 429, in the engine's error shape, and closed at once.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, cast

import h11
import orjson
import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from messaging_whatsapp import metrics
from messaging_whatsapp.config import Settings, get_settings, networks

Parser = Literal["httptools", "h11"]


def _closing_answer(status: int, reason: str, code: str, message: str, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 answer in the engine's error shape, announcing the close that follows."""
    body = orjson.dumps({"error": {"code": code, "message": message}})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
    )
    return head.encode("ascii") + extra + b"\r\n" + body


REQUEST_TIMEOUT = _closing_answer(
    408, "Request Timeout", "request_timeout", "the request did not arrive in time; send it again"
)
TOO_MANY_CONNECTIONS = _closing_answer(
    429,
    "Too Many Requests",
    "too_many_connections",
    "this address has too many connections open; reuse or close some",
    b"retry-after: 1\r\n",
)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a request's headers and body may take, and how many connections an address holds."""

    header_timeout: float
    body_timeout: float
    # 0: no cap.
    max_per_client: int
    exempt: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        """The limits the settings give."""
        return cls(
            settings.http_header_timeout_seconds,
            settings.http_body_timeout_seconds,
            settings.http_max_connections_per_client,
            networks(settings.http_connection_cap_exempt),
        )

    def counted_address(self, client: tuple[str, int] | None) -> str | None:
        """The address a client's connections are counted under; None when the cap does not apply
        (no cap, an exempt network, a Unix socket)."""
        if not self.max_per_client or client is None:
            return None
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return None
        # A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d: the same client either way.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.exempt):
            return None
        return str(address)


class _Cycle(Protocol):
    """What the guard reads and sets of uvicorn's request-response cycle (both parsers have one)."""

    disconnected: bool
    response_started: bool
    response_complete: bool
    waiting_for_100_continue: bool
    message_event: asyncio.Event


class _Guard:
    """The limits' bookkeeping, mixed in ahead of a uvicorn protocol class (see the subclasses)."""

    # None: read once from the process's settings (see connection_limits).
    limits: ClassVar[ConnectionLimits | None] = None
    # Open connections by client address, for the servers this class serves (see http_protocol).
    open_per_client: ClassVar[dict[str, int]]

    # uvicorn's own attributes (the transport and flow control are set by its connection_made).
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    client: tuple[str, int] | None
    flow: FlowControl

    _active_limits: ConnectionLimits
    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _counted_as: str | None = None
    # Closed, or handed to a WebSocket protocol: the guard's part is over.
    _released: bool = False

    @classmethod
    def connection_limits(cls) -> ConnectionLimits:
        """The class's limits: fixed by http_protocol(), or else read once from get_settings()."""
        if cls.limits is None:
            cls.limits = ConnectionLimits.from_settings(get_settings())
        return cls.limits

    def _current_cycle(self) -> _Cycle | None:
        """The latest request's cycle."""
        raise NotImplementedError

    def _answer_queued(self) -> bool:
        """Whether a request waits for the answer before it (pipelining)."""
        raise NotImplementedError

    def _guard_open(self) -> None:
        """Count the new connection against its address's cap, or refuse it; time its first request."""
        limits = self._active_limits = self.connection_limits()
        address = limits.counted_address(self.client)
        if address is not None:
            held = self.open_per_client.get(address, 0)
            if held >= limits.max_per_client:
                metrics.HTTP_CONNECTIONS_CUT.labels("too_many_connections").inc()
                self.transport.write(TOO_MANY_CONNECTIONS)
                self.transport.close()
                return
            self.open_per_client[address] = held + 1
            self._counted_as = address
        self._time_headers()

    def _guard_release(self) -> None:
        """Stop the timers and give the connection's place back (closed, or now a WebSocket's)."""
        if self._released:
            return
        self._released = True
        self._headers_arrived()
        self._body_arrived()
        address, self._counted_as = self._counted_as, None
        if address is not None:
            left = self.open_per_client[address] - 1
            if left:
                self.open_per_client[address] = left
            else:
                del self.open_per_client[address]

    def _time_headers(self) -> None:
        if self._header_timer is None and not self._released:
            self._header_timer = self.loop.call_later(
                self._active_limits.header_timeout, self._overdue, "header_timeout"
            )

    def _headers_arrived(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _time_body(self) -> None:
        if self._body_timer is None and not self._released:
            self._body_timer = self.loop.call_later(
                self._active_limits.body_timeout, self._overdue, "body_timeout"
            )

    def _body_arrived(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _overdue(self, reason: str) -> None:
        """A timer ran out: answer 408 if nothing else is being answered, and close."""
        waiting_headers = reason == "header_timeout"
        if waiting_headers:
            self._header_timer = None
        else:
            self._body_timer = None
        if self.transport.is_closing():
            return
        cycle = self._current_cycle()
        if self.flow.read_paused or (
            not waiting_headers and cycle is not None and cycle.waiting_for_100_continue
        ):
            # The server stopped reading (the app has not taken the body that came yet, or a
            # pipelined request waits for the answer before it), or the client waits for the
            # 100 Continue uvicorn sends once the app asks for the body: not the client's delay.
            if waiting_headers:
                self._time_headers()
            else:
                self._time_body()
            return
        metrics.HTTP_CONNECTIONS_CUT.labels(reason).inc()
        if waiting_headers:
            # The previous request's answer may still be going out: a 408 would land inside it.
            answer = (cycle is None or cycle.response_complete) and not self._answer_queued()
        else:
            answer = cycle is not None and not cycle.response_started and not self._answer_queued()
            if answer and cycle is not None:
                # As uvicorn does when a client goes: the app's receive() hears a disconnect, and
                # whatever it answers later is dropped instead of following the 408.
                cycle.disconnected = True
                cycle.message_event.set()
        if answer:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()


class _Phase(enum.Enum):
    """Where the httptools parser is in the current request."""

    HEADERS = enum.auto()
    BODY = enum.auto()
    # The request is in; the next has not begun (an idle kept-alive connection).
    BETWEEN = enum.auto()


class GuardedHttpToolsProtocol(_Guard, HttpToolsProtocol):
    """uvicorn's httptools protocol under the limits. Used as it is, each process reads them from
    its settings (the environment): the multi-process `serve --workers` passes it to workers
    spawned afresh, where only a class importable by name arrives."""

    open_per_client: ClassVar[dict[str, int]] = {}
    _phase: _Phase = _Phase.HEADERS

    def _current_cycle(self) -> _Cycle | None:
        return self.cycle

    def _answer_queued(self) -> bool:
        return bool(self.pipeline)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """uvicorn's, then the cap and the first request's header timer."""
        super().connection_made(transport)
        self._guard_open()

    def connection_lost(self, exc: Exception | None) -> None:
        """The guard's part first (timers, the address's count), then uvicorn's."""
        self._guard_release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse, then time only what the data left unfinished: a request that came whole in one
        read (the usual case) costs no timer."""
        super().data_received(data)
        if self._phase is _Phase.HEADERS:
            self._time_headers()
        elif self._phase is _Phase.BODY:
            self._time_body()

    def on_message_begin(self) -> None:
        """A request's first byte."""
        super().on_message_begin()
        self._phase = _Phase.HEADERS

    def on_headers_complete(self) -> None:
        """The headers are in; the body (if any) is next."""
        self._phase = _Phase.BODY
        self._headers_arrived()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The whole request is in."""
        self._phase = _Phase.BETWEEN
        self._body_arrived()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        """A WebSocket protocol takes the connection over (and its connection_lost)."""
        self._guard_release()
        super().handle_websocket_upgrade()


class GuardedH11Protocol(_Guard, H11Protocol):
    """uvicorn's h11 protocol under the limits (see GuardedHttpToolsProtocol)."""

    open_per_client: ClassVar[dict[str, int]] = {}

    def _current_cycle(self) -> _Cycle | None:
        return self.cycle

    def _answer_queued(self) -> bool:
        # h11 reads no further than the request being answered (uvicorn pauses reading instead).
        return False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """uvicorn's, then the cap and the first request's header timer."""
        super().connection_made(transport)
        self._guard_open()

    def connection_lost(self, exc: Exception | None) -> None:
        """The guard's part first (timers, the address's count), then uvicorn's."""
        self._guard_release()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        """uvicorn's event loop over h11, then the timer h11's state of the client's request calls for."""
        super().handle_events()
        if self._released:
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # Between requests, the next one's headers are timed from its first byte (waiting for
            # that byte is the keep-alive timeout's business, or the open connection's timer's).
            if self.conn.trailing_data[0]:
                self._time_headers()
        elif state is h11.SEND_BODY:
            self._headers_arrived()
            self._time_body()
        else:
            self._headers_arrived()
            self._body_arrived()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        """A WebSocket protocol takes the connection over (and its connection_lost)."""
        self._guard_release()
        super().handle_websocket_upgrade(event)


def http_protocol(settings: Settings, parser: Parser = "httptools") -> type[asyncio.Protocol]:
    """uvicorn's `http=` for one server: the parser's guarded protocol with the settings' limits and
    a count of connections of its own (two servers in one process do not share it)."""
    base: type[_Guard] = GuardedH11Protocol if parser == "h11" else GuardedHttpToolsProtocol
    namespace = {"limits": ConnectionLimits.from_settings(settings), "open_per_client": {}}
    return cast(type[asyncio.Protocol], type(base.__name__, (base,), namespace))


def server_config(
    app: Callable[..., Any], settings: Settings, host: str, port: int, **options: Any
) -> uvicorn.Config:
    """A uvicorn configuration serving the ASGI `app` under the settings' limits (`options` as
    uvicorn.Config takes them; `http=` may name another parser's protocol from http_protocol)."""
    options.setdefault("http", http_protocol(settings))
    return uvicorn.Config(app, host=host, port=port, **options)
