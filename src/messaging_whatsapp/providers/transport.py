"""A lean HTTP/1.1 transport for httpx: pooled keep-alive connections on asyncio, parsed by httptools.

The sender makes thousands of provider calls a second. httpx's default transport (httpcore over
anyio) costs several hundred microseconds of CPU a call once many are in flight: every request
looks at every pooled connection with a system call each, behind anyio locks and cancel scopes.
This one keeps each origin's idle connections in a stack, knows from asyncio's callbacks whether
the server closed one, and hands the response to httpx whole. The client side stays httpx
(timeouts, headers, content decoding, the adapters' code); proxies configured in the environment
still go through httpx's own transport, which AsyncClient mounts for them.

Errors are httpx's own and keep their meaning for providers/http.py: ConnectError, ConnectTimeout
and PoolTimeout mean the request never left; WriteError, ReadError, ReadTimeout and
RemoteProtocolError mean it may have been received.

A guarded transport is for the URLs a tenant can aim (a gateway's address): it resolves the host
itself and refuses one that is not on the public internet (private, loopback, link-local such
as the cloud metadata service, reserved), then connects to the address it checked, so a DNS
answer cannot change between the check and the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections import deque
from typing import Any, cast

import httptools
import httpx

# An idle connection is not reused after this long: servers drop idle keep-alive connections
# (uvicorn after 5 s) and a request written into one that is closing may be lost.
KEEPALIVE_EXPIRY_SECONDS = 4.0
# Write buffer above which a request waits for the socket to drain.
WRITE_HIGH_WATER = 256 * 1024


class DestinationRefused(httpx.ConnectError):
    """The URL's host is not on the public internet; a guarded transport does not call it."""


# IPv6 forms that carry an IPv4 address in their last 32 bits and reach it: NAT64 (RFC 6052, 8215),
# the deprecated IPv4-compatible ::a.b.c.d, and SIIT's IPv4-translated ::ffff:0:a.b.c.d.
_EMBEDDING_IPV4 = tuple(
    ipaddress.ip_network(network)
    for network in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)


def is_public_address(address: str) -> bool:
    """Whether an address is on the public internet, looking through every IPv6 form that carries
    (and can reach) an IPv4 address: mapped, 6to4, Teredo, NAT64, compatible, translated."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return True
    carried = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if any(ip in network for network in _EMBEDDING_IPV4):
        carried.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return all(is_public_address(str(inner)) for inner in carried if inner is not None)


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: what the server sent, whether it hung up, write flow control."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.error: Exception | None = None
        self.idle_until = 0.0
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports behave as asyncio.Transport without inheriting from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        _wake(self._readable)

    def eof_received(self) -> bool:
        self.closed = True
        _wake(self._readable)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        _wake(self._readable)
        _wake(self._writable)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        _wake(self._writable)
        self._writable = None

    # Used by the transport

    @property
    def reusable(self) -> bool:
        """Idle, open, nothing unexpected received, and not idle for too long."""
        return not self.closed and not self.buffer and time.monotonic() < self.idle_until

    async def write(self, data: bytes, timeout: float | None) -> None:
        if self.closed or self.transport is None:
            raise httpx.WriteError("the connection is closed")
        self.transport.write(data)
        if self._writable is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self._writable
            except TimeoutError:
                raise httpx.WriteTimeout("timed out writing the request") from None
        if self.closed:
            raise httpx.WriteError(f"the connection closed while writing: {self.error!r}")

    async def read(self, timeout: float | None) -> bytes:
        """What the server sent since the last read; b"" once it hung up."""
        if not self.buffer and not self.closed:
            self._readable = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._readable
            except TimeoutError:
                raise httpx.ReadTimeout("timed out reading the response") from None
            finally:
                self._readable = None
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _wake(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class _Response:
    """httptools callbacks collecting one response."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.headers_done = False
        self.complete = False
        # Read when the message completes: the parser forgets it once it waits for the next one.
        self.keep_alive = False

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    def delimited_by_close(self) -> bool:
        """A body without length or chunking runs until the server closes the connection."""
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names


class _Origin:
    """The connections to one scheme://host:port, at most `limit` at once."""

    def __init__(self, limit: int) -> None:
        self.idle: deque[_Connection] = deque()
        self.slots = asyncio.Semaphore(limit)

    def take_idle(self) -> _Connection | None:
        while self.idle:
            connection = self.idle.pop()  # the most recently used is the likeliest to be alive
            if connection.reusable:
                return connection
            connection.close()
        return None


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive for httpx.AsyncClient(transport=...); no HTTP/2, no proxies."""

    def __init__(
        self, *, max_connections: int = 100, ssl_context: ssl.SSLContext | None = None, guarded: bool = False
    ) -> None:
        self._max_connections = max_connections
        self._ssl_context = ssl_context
        self._guarded = guarded
        self._origins: dict[tuple[bytes, bytes, int], _Origin] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request on a pooled connection and return the whole response."""
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        origin = self._origin(url)
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await origin.slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection became free in time") from None
        try:
            connection = origin.take_idle() or await self._connect(url, timeouts.get("connect"))
            response, reusable = await self._exchange(connection, request, timeouts)
        finally:
            origin.slots.release()
        if reusable:
            connection.idle_until = time.monotonic() + KEEPALIVE_EXPIRY_SECONDS
            origin.idle.append(connection)
        else:
            connection.close()
        return response

    async def aclose(self) -> None:
        """Close every idle connection."""
        for origin in self._origins.values():
            while origin.idle:
                origin.idle.pop().close()
        self._origins.clear()

    def _origin(self, url: httpx.URL) -> _Origin:
        key = (url.raw_scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80))
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(self._max_connections)
        return origin

    async def _connect(self, url: httpx.URL, timeout: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        port = url.port or (443 if url.scheme == "https" else 80)
        tls: dict[str, Any] = {}
        if url.scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            tls = {"ssl": self._ssl_context, "server_hostname": url.host}
        try:
            async with asyncio.timeout(timeout):
                host = await self._checked_address(url.host, port) if self._guarded else url.host
                _, connection = await loop.create_connection(_Connection, host, port, **tls)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {url.host}:{port}") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {url.host}:{port}: {exc}") from exc
        return connection

    async def _checked_address(self, host: str, port: int) -> str:
        """The address to connect to for `host`, when every address it resolves to is public."""
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = [str(info[4][0]) for info in found]
        refused = [address for address in addresses if not is_public_address(address)]
        if refused or not addresses:
            raise DestinationRefused(
                f"{host} is not on the public internet ({', '.join(refused) or 'no address'})"
            )
        return addresses[0]

    async def _exchange(
        self, connection: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> tuple[httpx.Response, bool]:
        """Write the request, read the response; also whether the connection may be used again."""
        try:
            await connection.write(_encode(request, await request.aread()), timeouts.get("write"))
            collected = _Response()
            while not collected.complete:
                data = await connection.read(timeouts.get("read"))
                if not data:
                    if collected.headers_done and collected.delimited_by_close():
                        break
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection without a full response"
                    )
                collected.parser.feed_data(data)
                if request.method == "HEAD" and collected.headers_done:
                    break
        except httptools.HttpParserError as exc:
            connection.close()
            raise httpx.RemoteProtocolError(f"malformed response: {exc}") from exc
        except BaseException:
            connection.close()  # halfway through an exchange, the connection's state is unknown
            raise
        response = httpx.Response(
            collected.parser.get_status_code(),
            headers=collected.headers,
            stream=httpx.ByteStream(b"".join(collected.body)),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": collected.reason.strip()},
            request=request,
        )
        reusable = collected.complete and collected.keep_alive and request.method != "HEAD"
        return response, reusable and not connection.buffer


def _encode(request: httpx.Request, body: bytes) -> bytes:
    """The request as bytes; a streamed (chunked) body has been read whole, so it gets a length."""
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    headers = request.headers.raw
    if any(name.lower() == b"transfer-encoding" for name, _ in headers):
        headers = [(n, v) for n, v in headers if n.lower() not in (b"transfer-encoding", b"content-length")]
        headers.append((b"Content-Length", str(len(body)).encode()))
    lines += [b"%s: %s" % (name, value) for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
