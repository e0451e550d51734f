"""The HTTP server's guard (api/serving.py), over real sockets against a real uvicorn server on both
parsers: headers or a body that stop or dribble are cut after their timeout with a 408, timely
clients (slow ones and kept-alive ones too) are served, and one address's connections over the
cap are refused with a 429 until some close. Timeouts are 1 s here; a cut is only required to come
well before a held connection would (timeout + 5 s), never at a precise moment."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import select
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from messaging_whatsapp.api.app import Role, create_app
from messaging_whatsapp.api.serving import ConnectionLimits, Parser, http_protocol
from messaging_whatsapp.config import Settings
from tests.helpers import ServerThread, engine_settings, free_port

PARSERS: list[Parser] = ["httptools", "h11"]
TIMEOUT = 1.0
# A cut must come before this: far sooner than the 90 s a connection was held before the guard.
CUT_WITHIN = TIMEOUT + 5
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def guarded(**overrides: Any) -> Settings:
    """Settings with 1 s header and body timeouts and no cap unless `overrides` say otherwise."""
    values: dict[str, Any] = {
        "http_header_timeout_seconds": TIMEOUT,
        "http_body_timeout_seconds": TIMEOUT,
        "http_max_connections_per_client": 0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


class EchoApp:
    """A tiny ASGI app: reads the whole body (after `delay` seconds) and answers how many bytes
    came; notes disconnects."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.disconnects = 0

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await asyncio.sleep(self.delay)
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnects += 1
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = json.dumps({"received": size}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def serving(settings: Settings, parser: Parser = "httptools", app: Any = None) -> Iterator[int]:
    """A real uvicorn server under the settings' guard, on the parser's protocol: its port."""
    port = free_port()
    protocol = http_protocol(settings, parser)
    # A long keep-alive, so that only the guard's timers close connections here.
    with ServerThread(app or EchoApp(), port, settings, http=protocol, lifespan="off", timeout_keep_alive=30):
        yield port


def connect(port: int) -> socket.socket:
    """A raw client socket; a read that waits past CUT_WITHIN fails the test."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(CUT_WITHIN)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closing)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One response with a content-length: its status and body; the connection stays open."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection; it sent {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    assert length is not None, head
    while len(body) < int(length.group(1)):
        body += sock.recv(65536)
    return int(head.split()[1]), body


def request(body: bytes = b"", path: str = "/") -> bytes:
    """A whole HTTP/1.1 request (kept alive)."""
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def dribble_until_cut(sock: socket.socket, start: bytes, byte: bytes) -> tuple[bytes, float]:
    """Send `start`, then `byte` every 0.25 s, never finishing, until the server ends the
    connection: what it sent and how long it took. Fails if it is not ended within CUT_WITHIN."""
    began = time.monotonic()
    sock.sendall(start)
    while time.monotonic() - began < CUT_WITHIN:
        readable, _, _ = select.select([sock], [], [], 0.25)
        if readable:
            return read_until_closed(sock), time.monotonic() - began
        try:
            sock.sendall(byte)
        except (BrokenPipeError, ConnectionResetError):
            return read_until_closed(sock), time.monotonic() - began
    raise AssertionError(f"a client dribbling its request was still connected after {CUT_WITHIN} s")


def assert_timed_out(answer: bytes) -> None:
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + CUT_WITHIN
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("parser", PARSERS)
def test_a_client_that_stops_in_its_headers_or_says_nothing_gets_a_408_and_is_disconnected(
    parser: Parser,
) -> None:
    with serving(guarded(), parser) as port, connect(port) as halfway, connect(port) as silent:
        halfway.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Wait: ")
        assert_timed_out(read_until_closed(halfway))
        assert_timed_out(read_until_closed(silent))


@pytest.mark.parametrize("parser", PARSERS)
def test_headers_dribbled_a_byte_at_a_time_are_cut_at_the_deadline(parser: Parser) -> None:
    # Each byte comes well within the timeout: only a deadline for the whole headers ends this.
    with serving(guarded(), parser) as port, connect(port) as sock:
        answer, _ = dribble_until_cut(sock, b"GET / HTTP/1.1\r\nHost: t\r\nX-Pad: ", b"a")
        if answer:  # a byte sent as the server closed may reset the connection before its 408
            assert_timed_out(answer)


@pytest.mark.parametrize("parser", PARSERS)
def test_a_body_that_stops_short_gets_a_408_and_the_app_hears_a_disconnect(parser: Parser) -> None:
    app = EchoApp()
    with serving(guarded(), parser, app) as port, connect(port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        assert_timed_out(read_until_closed(sock))
        wait_for(lambda: app.disconnects == 1, "the app to hear the disconnect")


@pytest.mark.parametrize("parser", PARSERS)
def test_a_chunked_body_dribbled_a_byte_at_a_time_is_cut_at_the_deadline(parser: Parser) -> None:
    start = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    with serving(guarded(), parser) as port, connect(port) as sock:
        answer, _ = dribble_until_cut(sock, start, b"1\r\nx\r\n")
        if answer:
            assert_timed_out(answer)


@pytest.mark.parametrize("parser", PARSERS)
def test_slow_but_timely_headers_and_body_are_served(parser: Parser) -> None:
    settings = guarded(http_header_timeout_seconds=5, http_body_timeout_seconds=5)
    with serving(settings, parser) as port, connect(port) as sock:
        for piece in (b"POST / HTTP/1.1\r\n", b"Host: t\r\n", b"Content-Length: 9\r\n\r\n"):
            sock.sendall(piece)
            time.sleep(0.3)
        for piece in (b"abc", b"def", b"ghi"):
            sock.sendall(piece)
            time.sleep(0.3)
        assert read_response(sock) == (200, b'{"received": 9}')


@pytest.mark.parametrize("parser", PARSERS)
def test_time_the_app_takes_to_ask_for_the_body_is_not_held_against_the_client(parser: Parser) -> None:
    # The app asks for the body 1.3 s after the headers, past the 1 s body timeout. Meanwhile the
    # client waits for its 100 Continue, or has sent more than uvicorn buffers before it stops
    # reading: either way the server is the one waiting, and the request is served.
    with serving(guarded(), parser, EchoApp(delay=1.3)) as port, connect(port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        assert read_response(sock) == (200, b'{"received": 5}')

        big = request(b"x" * 4_000_000)
        sending = threading.Thread(target=sock.sendall, args=(big,))
        sending.start()
        assert read_response(sock) == (200, b'{"received": 4000000}')
        sending.join()


@pytest.mark.parametrize("parser", PARSERS)
def test_a_kept_alive_connection_is_served_after_pauses_longer_than_the_header_timeout(
    parser: Parser,
) -> None:
    # Waiting between requests is the keep-alive timeout's business, not the header timeout's.
    with serving(guarded(), parser) as port, connect(port) as sock:
        for round_ in range(3):
            if round_:
                time.sleep(TIMEOUT * 1.5)
            sock.sendall(request(b"hello"))
            assert read_response(sock) == (200, b'{"received": 5}')


def test_connections_over_the_cap_are_refused_until_some_close() -> None:
    # Only loopback is at hand: count it like any other address.
    settings = guarded(
        http_header_timeout_seconds=30, http_max_connections_per_client=3, http_connection_cap_exempt=""
    )
    with serving(settings) as port, contextlib.ExitStack() as stack:
        held = [stack.enter_context(connect(port)) for _ in range(3)]
        for sock in held:
            sock.sendall(request())
            assert read_response(sock)[0] == 200

        with connect(port) as refused:
            answer = read_until_closed(refused)
        assert answer.startswith(b"HTTP/1.1 429 "), answer
        assert b"retry-after: 1\r\n" in answer.lower()
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "too_many_connections"

        held.pop().close()
        newcomer = stack.enter_context(connect(port))

        def accepted() -> bool:
            # The server frees the place when it sees the close, a moment after it.
            nonlocal newcomer
            try:
                newcomer.sendall(request())
                return read_response(newcomer)[0] == 200
            except (AssertionError, ConnectionError):
                newcomer = stack.enter_context(connect(port))
                return False

        wait_for(accepted, "a connection to be accepted once one closed")
        for sock in held:
            sock.sendall(request())
            assert read_response(sock)[0] == 200
        with connect(port) as refused_again:
            assert read_until_closed(refused_again).startswith(b"HTTP/1.1 429 ")


def test_loopback_is_not_counted_by_default() -> None:
    # This host's own clients (the sender calling the built-in simulator) hold many connections.
    with serving(guarded(http_max_connections_per_client=2)) as port, contextlib.ExitStack() as stack:
        socks = [stack.enter_context(connect(port)) for _ in range(6)]
        for sock in socks:
            sock.sendall(request(b"x"))
            assert read_response(sock) == (200, b'{"received": 1}')


def test_the_cap_counts_an_address_the_same_in_either_form_and_skips_exempt_networks() -> None:
    limits = ConnectionLimits.from_settings(
        guarded(http_max_connections_per_client=5, http_connection_cap_exempt="10.0.0.0/8, 2001:db8::1")
    )
    assert limits.counted_address(("203.0.113.7", 1)) == "203.0.113.7"
    assert limits.counted_address(("::ffff:203.0.113.7", 1)) == "203.0.113.7"
    assert limits.counted_address(("10.2.3.4", 1)) is None
    assert limits.counted_address(("2001:db8::1", 1)) is None
    assert limits.counted_address(None) is None
    uncapped = ConnectionLimits.from_settings(guarded(http_max_connections_per_client=0))
    assert uncapped.counted_address(("203.0.113.7", 1)) is None
    with pytest.raises(ValidationError, match="http_connection_cap_exempt"):
        guarded(http_connection_cap_exempt="10.0.0.0/8,not-a-network")


def cut_count(metrics_text: str, reason: str) -> float:
    found = re.search(
        rf'^whatsapp_http_connections_cut_total{{reason="{reason}"}} (\S+)$', metrics_text, re.M
    )
    return float(found.group(1)) if found else 0.0


async def test_the_engine_answers_a_webhook_whose_body_stops_with_a_408(
    fresh_sqlite_url: str, stream_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = engine_settings(fresh_sqlite_url, None, stream_prefix, tmp_path, port).model_copy(
        update={"http_header_timeout_seconds": TIMEOUT, "http_body_timeout_seconds": TIMEOUT}
    )
    with ServerThread(create_app(settings, Role.WEBHOOK), port, settings) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            before = cut_count((await http.get("/metrics")).text, "body_timeout")
            with connect(port) as sock:
                sock.sendall(
                    b"POST /webhook HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1000\r\n\r\n" + b'{"object": "whatsapp_business_account"'
                )
                assert_timed_out(read_until_closed(sock))
            # The engine still serves, and counts the cut.
            after = cut_count((await http.get("/metrics")).text, "body_timeout")
            assert after == before + 1
