"""The lean HTTP/1.1 transport over real sockets: keep-alive, framing, what a closed connection
means, timeouts, and TLS against a local server with a certificate of the test's own."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from messaging_whatsapp.providers.http import provider_client, request
from messaging_whatsapp.providers.outbound import ErrorClass, SendError
from messaging_whatsapp.providers.transport import DestinationRefused, LeanTransport, is_public_address

Respond = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


class Server:
    """A loopback HTTP server whose answer to each request is a coroutine of the test's."""

    def __init__(self, respond: Respond, tls: ssl.SSLContext | None = None) -> None:
        self.respond = respond
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"{'https://localhost' if self.tls else 'http://127.0.0.1'}:{self.port}"

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                raw = head + (await reader.readexactly(length) if length else b"")
                self.requests.append(raw)
                if not await self.respond(raw, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def answer(body: bytes = b'{"ok":true}', *, status: bytes = b"200 OK", headers: bytes = b"") -> bytes:
    """A complete HTTP/1.1 response with a Content-Length."""
    length = b"Content-Length: %d\r\n" % len(body)
    return b"HTTP/1.1 " + status + b"\r\n" + length + headers + b"\r\n" + body


def replying(*responses: bytes, keep_open: bool = True) -> Respond:
    """Answer requests with these responses in turn (the last one again and again)."""
    queue = list(responses)

    async def respond(_raw: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(queue.pop(0) if len(queue) > 1 else queue[0])
        await writer.drain()
        return keep_open

    return respond


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client on the lean transport with short timeouts."""
    transport = LeanTransport(max_connections=4)
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(1.0, pool=0.3)) as client:
        yield client


async def test_requests_reuse_one_keep_alive_connection_and_travel_exactly(client: httpx.AsyncClient) -> None:
    async with Server(replying(answer(b'{"id":"wamid.1"}'))) as server:
        for index in range(5):
            response = await client.post(
                f"{server.url}/v23.0/123/messages?x=1",
                json={"to": "5511987654321", "n": index},
                headers={"Authorization": "Bearer t0k3n"},
            )
            assert response.status_code == 200
            assert response.json() == {"id": "wamid.1"}

    assert server.connections == 1
    head, _, body = server.requests[-1].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v23.0/123/messages?x=1 HTTP/1.1"
    assert b"Authorization: Bearer t0k3n" in lines
    assert b"Host: 127.0.0.1:%d" % server.port in lines
    assert body == b'{"to":"5511987654321","n":4}'


async def test_chunked_and_gzip_bodies_are_decoded(client: httpx.AsyncClient) -> None:
    packed = gzip.compress(b'{"messages":[{"id":"wamid.9"}]}')
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
        + b"%x\r\n%s\r\n" % (10, packed[:10])
        + b"%x\r\n%s\r\n" % (len(packed) - 10, packed[10:])
        + b"0\r\n\r\n"
    )
    async with Server(replying(chunked)) as server:
        first = await client.get(f"{server.url}/a")
        second = await client.get(f"{server.url}/b")

    assert first.json() == second.json() == {"messages": [{"id": "wamid.9"}]}
    assert server.connections == 1


async def test_a_body_without_length_runs_until_the_server_closes(client: httpx.AsyncClient) -> None:
    async with Server(replying(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", keep_open=False)) as server:
        response = await client.get(f"{server.url}/")
        again = await client.get(f"{server.url}/")

    assert response.text == again.text == "until the end"
    assert server.connections == 2


async def test_connection_close_and_a_server_that_hung_up_while_idle_get_a_new_connection(
    client: httpx.AsyncClient,
) -> None:
    async with Server(replying(answer(headers=b"Connection: close\r\n"), keep_open=False)) as server:
        assert (await client.get(f"{server.url}/")).status_code == 200
        assert (await client.get(f"{server.url}/")).status_code == 200
        assert server.connections == 2

    # Answers with keep-alive, then closes: the idle connection is known to be dead before reuse.
    async with Server(replying(answer(), keep_open=False)) as server:
        assert (await client.get(f"{server.url}/")).status_code == 200
        await asyncio.sleep(0.1)
        assert (await client.get(f"{server.url}/")).status_code == 200
        assert server.connections == 2


async def test_error_statuses_come_back_as_responses(client: httpx.AsyncClient) -> None:
    async with Server(replying(answer(b'{"error":"slow down"}', status=b"429 Too Many Requests",
                                      headers=b"Retry-After: 7\r\n"))) as server:  # fmt: skip
        response = await client.post(f"{server.url}/", json={})

    assert response.status_code == 429
    assert response.reason_phrase == "Too Many Requests"
    assert response.headers["retry-after"] == "7"


async def test_a_refused_connection_was_certainly_not_sent(client: httpx.AsyncClient) -> None:
    async with Server(replying(answer())) as server:
        url = server.url
    with pytest.raises(SendError) as refused:
        await request(client, "POST", f"{url}/", json={})

    assert refused.value.error_class is ErrorClass.RETRY


async def test_a_silent_server_times_out_as_an_unknown_outcome(client: httpx.AsyncClient) -> None:
    async def never(_raw: bytes, _writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async with Server(never) as server:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{server.url}/", json={})
        with pytest.raises(SendError) as unknown:
            await request(client, "POST", f"{server.url}/", json={})

    assert unknown.value.error_class is ErrorClass.UNKNOWN_OUTCOME


async def test_a_reset_mid_answer_is_an_unknown_outcome(client: httpx.AsyncClient) -> None:
    async def half_then_reset(_raw: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id":')
        await writer.drain()
        writer.transport.abort()
        return False

    async with Server(half_then_reset) as server:
        with pytest.raises(SendError) as unknown:
            await request(client, "POST", f"{server.url}/", json={})

    assert unknown.value.error_class is ErrorClass.UNKNOWN_OUTCOME


async def test_a_malformed_answer_is_a_protocol_error(client: httpx.AsyncClient) -> None:
    async with Server(replying(b"HTTP/1.1 abc\r\n\r\n", keep_open=False)) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"{server.url}/")


async def test_the_pool_waits_for_a_free_connection_then_gives_up() -> None:
    release = asyncio.Event()

    async def slow(_raw: bytes, writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        writer.write(answer())
        await writer.drain()
        return True

    transport = LeanTransport(max_connections=1)
    async with (
        httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(2.0, pool=0.2)) as client,
        Server(slow) as server,
    ):
        first = asyncio.create_task(client.get(f"{server.url}/"))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await client.get(f"{server.url}/")
        release.set()
        assert (await first).status_code == 200
        assert (await client.get(f"{server.url}/")).status_code == 200
        assert server.connections == 1


async def test_https_with_the_servers_certificate_verified(tmp_path: Path) -> None:
    server_tls, client_tls = _tls_pair(tmp_path)
    transport = LeanTransport(ssl_context=client_tls)
    async with (
        httpx.AsyncClient(transport=transport, timeout=2.0) as client,
        Server(replying(answer(b'{"sid":"SM1"}')), tls=server_tls) as server,
    ):
        first = await client.post(f"{server.url}/2010-04-01/Accounts/AC1/Messages.json", data={"To": "x"})
        second = await client.post(f"{server.url}/2010-04-01/Accounts/AC1/Messages.json", data={"To": "y"})

    assert first.json() == second.json() == {"sid": "SM1"}
    assert server.connections == 1
    assert server.requests[-1].endswith(b"To=y")


async def test_https_refuses_a_certificate_it_does_not_trust(tmp_path: Path) -> None:
    server_tls, _ = _tls_pair(tmp_path)
    transport = LeanTransport(ssl_context=ssl.create_default_context())
    async with (
        httpx.AsyncClient(transport=transport, timeout=2.0) as client,
        Server(replying(answer()), tls=server_tls) as server,
    ):
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{server.url}/")


def _tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for localhost, and a client that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_a_cancelled_request_frees_its_connection_slot() -> None:
    async def slow_once(_raw: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.5)
        writer.write(answer())
        await writer.drain()
        return True

    transport = LeanTransport(max_connections=1)
    async with (
        httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(2.0, pool=1.0)) as client,
        Server(slow_once) as server,
    ):
        stuck = asyncio.create_task(client.get(f"{server.url}/"))
        await asyncio.sleep(0.05)
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        assert (await client.get(f"{server.url}/")).status_code == 200
        # The cancelled exchange's connection was closed, not handed to the next request.
        assert server.connections == 2


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.10", False),
        ("169.254.169.254", False),  # the cloud metadata service
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fd00:ec2::254", False),
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),
        # IPv6 forms that carry a private IPv4 address and reach it.
        ("64:ff9b::7f00:1", False),  # NAT64, 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64, the metadata service
        ("64:ff9b:1::a00:1", False),  # local-use NAT64, 10.0.0.1
        ("::7f00:1", False),  # IPv4-compatible
        ("::a00:1", False),
        ("2002:7f00:1::", False),  # 6to4
        ("2002:c0a8:10a::", False),  # 6to4, 192.168.1.10
        ("::ffff:0:7f00:1", False),  # IPv4-translated
        # ... and the same forms around public IPv4 addresses, which are public.
        ("64:ff9b::808:808", True),
        ("2002:808:808::", True),
    ],
)
def test_only_addresses_on_the_public_internet_are_reachable_through_a_guard(
    address: str, public: bool
) -> None:
    assert is_public_address(address) is public


async def test_a_guarded_transport_refuses_private_hosts_before_connecting() -> None:
    async with Server(replying(answer())) as server:
        guarded = httpx.AsyncClient(transport=LeanTransport(guarded=True), timeout=2.0)
        open_client = httpx.AsyncClient(transport=LeanTransport(), timeout=2.0)
        async with guarded, open_client:
            for url in (f"http://127.0.0.1:{server.port}/", f"http://localhost:{server.port}/"):
                with pytest.raises(DestinationRefused):
                    await guarded.get(url)
            with pytest.raises(SendError) as refused:
                await request(guarded, "POST", f"{server.url}/", json={})
            assert (refused.value.error_class, refused.value.code) == (
                ErrorClass.PAUSE_CHANNEL,
                "destination_refused",
            )
            assert (await open_client.get(f"{server.url}/")).status_code == 200

    assert server.connections == 1  # only the unguarded client ever reached it


async def test_an_address_httpx_cannot_read_is_a_refusal_not_a_crash() -> None:
    async with httpx.AsyncClient(transport=LeanTransport(guarded=True), timeout=2.0) as guarded:
        with pytest.raises(SendError) as refused:
            await request(guarded, "POST", "http://0177.0.0.1:8080/message/sendText/loja", json={})
    assert (refused.value.error_class, refused.value.code) == (ErrorClass.PAUSE_CHANNEL, "invalid_url")


async def test_provider_clients_neither_keep_nor_send_cookies() -> None:
    async def set_cookie(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: session=tenant-a; Path=/\r\n\r\n{}"
        )
        return True

    async with Server(set_cookie) as server, provider_client() as client:
        await client.get(f"{server.url}/")
        await client.get(f"{server.url}/")
        assert len(client.cookies) == 0
        with pytest.raises(AttributeError):
            client.cookies.set("session", "planted")
    assert all(b"cookie:" not in request.lower() for request in server.requests)
