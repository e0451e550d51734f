"""A process holding many Server-Sent Events clients of the engine's event stream (bench/live.py).

Each client is a raw asyncio protocol (one socket, httptools parsing the chunked answer): far
lighter than an HTTP client library, so hundreds of them in one process add little delay of their
own. Each notes the monotonic clock (shared by every process of the machine) when the bytes of an
event arrive.

Driven over stdin and stdout, one line each way:
- `connect <json>`: open the clients `{"host", "port", "tokens": [...], "groups": [...]}` (one per
  token); answers `connected <n>` once every stream said it is open.
- `count`: answers `{"new_message": n, "events": n, "dropped": n}` as JSON.
- `dump <path>`: writes what every client received (see `_dump`) to the file; answers `dumped`.
- `close`: closes every client; answers `closed`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field

import httptools
import orjson

STREAM = "/api/v1/events/stream"
# Streams opened at once while connecting (the server's accept queue is finite).
CONNECTING_AT_ONCE = 100


@dataclass
class Received:
    """What one client received: its new_message events with their arrival, and how many events
    of each type."""

    # (message id, arrival in monotonic ns, the event's id: when it was published, in wall ms).
    new_messages: list[tuple[str, int, int]] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    dropped: bool = False


class SseClient(asyncio.Protocol):
    """One event stream client over one connection."""

    def __init__(self, request: bytes, received: Received, opened: asyncio.Future[None]) -> None:
        self.request = request
        self.received = received
        self.opened = opened
        self.parser = httptools.HttpResponseParser(self)
        self.pending = b""
        self.arrived_at = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the request at once."""
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        """Note the arrival before anything else, then parse."""
        self.arrived_at = time.monotonic_ns()
        self.parser.feed_data(data)

    def on_headers_complete(self) -> None:
        """httptools: a stream that is not 200 fails the connect."""
        status = self.parser.get_status_code()
        if status != 200 and not self.opened.done():
            self.opened.set_exception(RuntimeError(f"event stream answered {status}"))

    def on_body(self, body: bytes) -> None:
        """httptools: the answer's bytes, chunked encoding removed; split into frames."""
        self.pending += body
        while (end := self.pending.find(b"\n\n")) >= 0:
            frame, self.pending = self.pending[:end], self.pending[end + 2 :]
            self._frame(frame)

    def _frame(self, frame: bytes) -> None:
        if frame.startswith(b":"):
            if b"stream open" in frame and not self.opened.done():
                self.opened.set_result(None)
            return
        kind, data, event_id = "", b"", b""
        for line in frame.split(b"\n"):
            if line.startswith(b"id: "):
                event_id = line[4:]
            elif line.startswith(b"event: "):
                kind = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:]
        if not kind:
            return  # The `retry:` advice.
        self.received.events[kind] = self.received.events.get(kind, 0) + 1
        if kind == "new_message":
            published_ms = int(event_id.split(b"-", 1)[0])
            self.received.new_messages.append(
                (orjson.loads(data)["message_id"], self.arrived_at, published_ms)
            )

    def connection_lost(self, exc: Exception | None) -> None:
        """A stream the server ended is counted as dropped (the benchmark closes none itself
        before `close`)."""
        self.received.dropped = True
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(f"event stream closed before it opened: {exc}"))


class Clients:
    """Every client of this process."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.groups: list[str] = []
        self.transports: list[asyncio.Transport] = []

    async def connect(self, host: str, port: int, tokens: list[str], groups: list[str]) -> int:
        """Open one stream per token, CONNECTING_AT_ONCE at a time; how many are open."""
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
        loop = asyncio.get_running_loop()

        async def open_one(token: str, group: str) -> None:
            request = (
                f"GET {STREAM} HTTP/1.1\r\nhost: {host}:{port}\r\naccept: text/event-stream\r\n"
                f"authorization: Bearer {token}\r\n\r\n"
            ).encode()
            received = Received()
            async with gate:
                opened: asyncio.Future[None] = loop.create_future()
                transport, _ = await loop.create_connection(
                    lambda: SseClient(request, received, opened), host, port
                )
                await asyncio.wait_for(opened, timeout=30)
            self.received.append(received)
            self.groups.append(group)
            self.transports.append(transport)

        await asyncio.gather(*(open_one(token, group) for token, group in zip(tokens, groups, strict=True)))
        return len(self.transports)

    def count(self) -> dict[str, int]:
        """Events received so far, over every client."""
        return {
            "new_message": sum(len(received.new_messages) for received in self.received),
            "events": sum(sum(received.events.values()) for received in self.received),
            "dropped": sum(received.dropped for received in self.received),
        }

    def dump(self, path: str) -> None:
        """Per client: its group, its new_messages (see Received), events by type, dropped."""
        clients = [
            {
                "group": group,
                "new_messages": received.new_messages,
                "events": received.events,
                "dropped": received.dropped,
            }
            for group, received in zip(self.groups, self.received, strict=True)
        ]
        with open(path, "wb") as handle:
            handle.write(orjson.dumps(clients))

    def close(self) -> None:
        """Close every connection."""
        for transport in self.transports:
            transport.close()
        self.transports, self.received, self.groups = [], [], []


async def _serve_commands() -> None:
    clients = Clients()
    loop = asyncio.get_running_loop()
    # A `connect` line carries every token: far over the default 64 KiB line limit.
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        command, _, argument = line.partition(" ")
        if command == "connect":
            spec = orjson.loads(argument)
            opened = await clients.connect(spec["host"], spec["port"], spec["tokens"], spec["groups"])
            answer = f"connected {opened}"
        elif command == "count":
            answer = orjson.dumps(clients.count()).decode()
        elif command == "dump":
            clients.dump(argument)
            answer = "dumped"
        elif command == "close":
            clients.close()
            await asyncio.sleep(0.2)
            answer = "closed"
        else:
            answer = f"unknown command {command}"
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
    clients.close()


def main() -> None:
    """Run the command loop (with uvloop when installed, as the engine's server does)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve_commands())
    else:
        uvloop.run(_serve_commands())


if __name__ == "__main__":
    main()
