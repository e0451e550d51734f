"""WuzAPI send adapter and instance management, over real HTTP against a fake WuzAPI."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from messaging_whatsapp.providers.base import (
    ConnectChallenge,
    GatewayInstance,
    GatewayProvider,
    ProviderName,
    SendProvider,
)
from messaging_whatsapp.providers.events import ConnectionState
from messaging_whatsapp.providers.http import provider_client
from messaging_whatsapp.providers.outbound import (
    ButtonsContent,
    ErrorClass,
    OutboundMedia,
    OutboundMediaType,
    OutboundMessage,
    ReplyButton,
    SenderAccount,
    SendError,
    TemplateContent,
)
from messaging_whatsapp.providers.wuzapi_api import WEBHOOK_EVENTS, WuzapiApi, webhook_target, wuzapi_api
from messaging_whatsapp.providers.wuzapi_errors import classify_error
from messaging_whatsapp.providers.wuzapi_send import provider_message_id_for
from tests.fakes.http import FakeHttpServer, Fault, RecordedRequest, Reply
from tests.fakes.wuzapi import ADMIN_TOKEN, LINKING_CODE, QR_DATA_URL, FakeUser, FakeWuzapi

TOKEN = "wz-tk-7Hq2Lm9Xp4Rv"
MARIA = "5511987654321"
MESSAGE_ID = "0b6f5c1e-3f0a-4c4e-9a51-5d2b9e7f1a22"
EXPECTED_ID = provider_message_id_for(MESSAGE_ID)
WEBHOOK = "https://api.exemplo.com.br/webhooks/wuzapi/inst-1"
SECRET = "whsec-wuzapi-0123456789"
EVENTS = "Message,ReadReceipt,Connected,Disconnected,LoggedOut,TemporaryBan,QR"
FAST = WuzapiApi(qr_attempts=3, qr_interval=0.01)


@pytest.fixture
def fake() -> FakeWuzapi:
    return FakeWuzapi()


@pytest.fixture
def user(fake: FakeWuzapi) -> FakeUser:
    return fake.add_user("loja-centro", TOKEN, session=True, connected=True, logged_in=True)


@pytest.fixture
def server(fake: FakeWuzapi) -> Iterator[FakeHttpServer]:
    with FakeHttpServer(fake, hold_seconds=2) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with provider_client(timeout=httpx.Timeout(5)) as http:
        yield http


def _account(server: FakeHttpServer, **overrides: Any) -> SenderAccount:
    values: dict[str, Any] = {
        "display_number": "551140028922",
        "api_url": server.base_url + "/",
        "instance_name": "loja-centro",
        "api_key": TOKEN,
        "auth_token": ADMIN_TOKEN,
    }
    return SenderAccount(**{**values, **overrides})


def _message(**content: Any) -> OutboundMessage:
    return OutboundMessage(message_id=MESSAGE_ID, to=MARIA, **content)


def _only(server: FakeHttpServer) -> RecordedRequest:
    [request] = server.requests
    return request


async def _send_error(
    client: httpx.AsyncClient, account: SenderAccount, message: OutboundMessage
) -> SendError:
    with pytest.raises(SendError) as caught:
        await wuzapi_api.send(client, account, message)
    return caught.value


# --------------------------------------------------------------------------------------------------
# The deterministic id


def test_provider_message_id_is_whatsmeow_shaped_and_deterministic() -> None:
    assert re.fullmatch(r"3EB0[0-9A-F]{18}", EXPECTED_ID)
    assert provider_message_id_for(MESSAGE_ID) == EXPECTED_ID
    assert provider_message_id_for(MESSAGE_ID + "x") != EXPECTED_ID


def test_adapter_identity() -> None:
    # Typed assignments: mypy checks the adapter against both protocols.
    sender: SendProvider = wuzapi_api
    gateway: GatewayProvider = wuzapi_api
    assert sender.name is ProviderName.WUZAPI
    assert callable(gateway.connect)


# --------------------------------------------------------------------------------------------------
# Sending: exact requests


async def test_send_text(
    server: FakeHttpServer, fake: FakeWuzapi, user: FakeUser, client: httpx.AsyncClient
) -> None:
    result = await wuzapi_api.send(client, _account(server), _message(text="Entregamos sim!"))

    assert result.provider_message_id == EXPECTED_ID
    request = _only(server)
    assert (request.method, request.path) == ("POST", "/chat/send/text")
    assert request.headers["token"] == TOKEN
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert request.json() == {"Phone": MARIA, "Body": "Entregamos sim!", "Id": EXPECTED_ID}
    assert [sent["Id"] for sent in fake.sent] == [EXPECTED_ID]


async def test_send_text_to_a_person_known_by_lid_names_the_lid(
    server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient
) -> None:
    # WuzAPI's parseJID takes a full JID (with '@') as it is.
    lid = "97318254610077@lid"
    await wuzapi_api.send(client, _account(server), OutboundMessage(message_id=MESSAGE_ID, to=lid, text="Oi"))
    assert _only(server).json() == {"Phone": lid, "Body": "Oi", "Id": EXPECTED_ID}


async def test_send_text_replying(server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient) -> None:
    quoted = "AC4E1B7F2D9A06C3E5B8F1D2A7C9E4B6"
    await wuzapi_api.send(client, _account(server), _message(text="Sim!", reply_to=quoted))

    assert _only(server).json() == {
        "Phone": MARIA,
        "Body": "Sim!",
        "Id": EXPECTED_ID,
        "ContextInfo": {"StanzaId": quoted, "Participant": f"{MARIA}@s.whatsapp.net"},
    }


@pytest.mark.parametrize(
    ("media", "path", "body"),
    [
        (
            OutboundMedia(OutboundMediaType.IMAGE, "https://cdn.exemplo.com/a.jpg", caption="Cardápio"),
            "/chat/send/image",
            {"Image": "https://cdn.exemplo.com/a.jpg", "Caption": "Cardápio"},
        ),
        (
            OutboundMedia(OutboundMediaType.VIDEO, "https://cdn.exemplo.com/v.mp4", caption="Veja"),
            "/chat/send/video",
            {"Video": "https://cdn.exemplo.com/v.mp4", "Caption": "Veja"},
        ),
        (
            OutboundMedia(OutboundMediaType.AUDIO, "https://cdn.exemplo.com/n.ogg", caption="ignored"),
            "/chat/send/audio",
            {"Audio": "https://cdn.exemplo.com/n.ogg"},
        ),
        (
            OutboundMedia(
                OutboundMediaType.DOCUMENT, "https://cdn.exemplo.com/f.pdf", "Sua nota", "nota.pdf"
            ),
            "/chat/send/document",
            {"Document": "https://cdn.exemplo.com/f.pdf", "Caption": "Sua nota", "FileName": "nota.pdf"},
        ),
        (
            OutboundMedia(OutboundMediaType.DOCUMENT, "https://cdn.exemplo.com/docs/boleto%20maio.pdf?x=1"),
            "/chat/send/document",
            {"Document": "https://cdn.exemplo.com/docs/boleto%20maio.pdf?x=1", "FileName": "boleto maio.pdf"},
        ),
    ],
    ids=["image", "video", "audio", "document", "document-name-from-url"],
)
async def test_send_media(
    server: FakeHttpServer,
    fake: FakeWuzapi,
    user: FakeUser,
    client: httpx.AsyncClient,
    media: OutboundMedia,
    path: str,
    body: dict[str, Any],
) -> None:
    result = await wuzapi_api.send(client, _account(server), _message(media=media))

    request = _only(server)
    assert (request.path, request.headers["token"]) == (path, TOKEN)
    assert request.json() == {"Phone": MARIA, **body, "Id": EXPECTED_ID}
    assert result.provider_message_id == EXPECTED_ID
    assert len(fake.sent) == 1


async def test_send_media_replying(server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient) -> None:
    media = OutboundMedia(OutboundMediaType.IMAGE, "https://cdn.exemplo.com/a.jpg")
    await wuzapi_api.send(client, _account(server), _message(media=media, reply_to="ABC123"))

    assert _only(server).json()["ContextInfo"] == {
        "StanzaId": "ABC123",
        "Participant": f"{MARIA}@s.whatsapp.net",
    }


async def test_buttons_go_out_as_numbered_text(
    server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient
) -> None:
    buttons = ButtonsContent("Confirma o pedido?", (ReplyButton("yes", "Sim"), ReplyButton("no", "Não")))
    await wuzapi_api.send(client, _account(server), _message(buttons=buttons))

    request = _only(server)
    assert request.path == "/chat/send/text"
    assert request.json()["Body"] == "Confirma o pedido?\n\n1. Sim\n2. Não"


async def test_same_message_id_gives_same_provider_id_on_retry(
    server: FakeHttpServer, fake: FakeWuzapi, user: FakeUser, client: httpx.AsyncClient
) -> None:
    first = await wuzapi_api.send(client, _account(server), _message(text="a"))
    again = await wuzapi_api.send(client, _account(server), _message(text="a"))
    other = await wuzapi_api.send(
        client, _account(server), OutboundMessage(message_id="another", to=MARIA, text="a")
    )

    assert first.provider_message_id == again.provider_message_id == EXPECTED_ID
    assert other.provider_message_id == provider_message_id_for("another") != EXPECTED_ID
    assert [request.json()["Id"] for request in server.requests] == [
        EXPECTED_ID,
        EXPECTED_ID,
        other.provider_message_id,
    ]


async def test_id_the_answer_reports_wins(
    server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient
) -> None:
    server.script(
        Reply(200, {"code": 200, "data": {"Details": "Sent", "Id": "3EB0FROMSERVER"}, "success": True})
    )
    result = await wuzapi_api.send(client, _account(server), _message(text="a"))
    assert result.provider_message_id == "3EB0FROMSERVER"


async def test_success_without_a_usable_body_keeps_our_id(
    server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient
) -> None:
    server.script(Reply(200, b"ok"))
    result = await wuzapi_api.send(client, _account(server), _message(text="a"))
    assert result.provider_message_id == EXPECTED_ID


# --------------------------------------------------------------------------------------------------
# Sending: refused before any request


@pytest.mark.parametrize(
    ("message", "error_class", "code"),
    [
        (_message(template=TemplateContent("boas_vindas")), ErrorClass.FIX_REQUEST, "template_unsupported"),
        (_message(), ErrorClass.FIX_REQUEST, "invalid_message"),
        (_message(text="a", buttons=ButtonsContent("b", ())), ErrorClass.FIX_REQUEST, "invalid_message"),
        (
            OutboundMessage(message_id="m", to="5511-98765", text="a"),
            ErrorClass.INVALID_RECIPIENT,
            "invalid_recipient",
        ),
    ],
    ids=["template", "empty", "two-contents", "bad-recipient"],
)
async def test_refused_without_a_request(
    server: FakeHttpServer,
    user: FakeUser,
    client: httpx.AsyncClient,
    message: OutboundMessage,
    error_class: ErrorClass,
    code: str,
) -> None:
    error = await _send_error(client, _account(server), message)
    assert (error.error_class, error.code) == (error_class, code)
    assert server.requests == []


async def test_missing_token_pauses_without_a_request(
    server: FakeHttpServer, client: httpx.AsyncClient
) -> None:
    error = await _send_error(client, _account(server, api_key=None), _message(text="a"))
    assert (error.error_class, error.code) == (ErrorClass.PAUSE_CHANNEL, "missing_credentials")
    assert server.requests == []


# --------------------------------------------------------------------------------------------------
# Sending: error answers


async def test_wrong_token_pauses_the_channel(
    server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient
) -> None:
    error = await _send_error(client, _account(server, api_key="wrong"), _message(text="a"))
    assert (error.error_class, error.code, error.http_status) == (
        ErrorClass.PAUSE_CHANNEL,
        "unauthorized",
        401,
    )
    assert server.accepted == []


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ({"session": False}, "instance_disconnected"),
        ({"session": True, "connected": False}, "instance_disconnected"),
        ({"session": True, "connected": True, "logged_in": False}, "instance_logged_out"),
    ],
    ids=["no-session", "socket-down", "logged-out"],
)
async def test_unusable_session_pauses_the_channel(
    server: FakeHttpServer, fake: FakeWuzapi, client: httpx.AsyncClient, state: dict[str, bool], code: str
) -> None:
    fake.add_user("loja-centro", TOKEN, **state)
    error = await _send_error(client, _account(server), _message(text="a"))
    assert (error.error_class, error.code, error.http_status) == (ErrorClass.PAUSE_CHANNEL, code, 500)
    assert fake.sent == []


async def test_bad_payload_needs_a_fix(
    server: FakeHttpServer, fake: FakeWuzapi, user: FakeUser, client: httpx.AsyncClient
) -> None:
    error = await _send_error(client, _account(server), _message(text=""))
    assert (error.error_class, error.code, error.http_status) == (ErrorClass.FIX_REQUEST, "bad_request", 400)
    assert error.title == "missing Body in Payload"
    assert fake.sent == []


@pytest.mark.parametrize(
    ("reply", "error_class", "code", "wait"),
    [
        (
            Reply(
                500,
                {"code": 500, "error": "Error sending message: timed out waiting for message send response"},
            ),
            ErrorClass.UNKNOWN_OUTCOME,
            "unknown_outcome",
            None,
        ),
        (
            Reply(500, {"code": 500, "error": "error sending message: server returned error 479"}),
            ErrorClass.RETRY,
            "server_rejected",
            None,
        ),
        (
            Reply(
                500,
                {
                    "code": 500,
                    "error": "error sending message: failed to get device list: info query timed out",
                },
            ),
            ErrorClass.RETRY,
            "send_failed",
            None,
        ),
        (
            Reply(500, {"code": 500, "error": "failed to upload file: 503"}),
            ErrorClass.RETRY,
            "media_upload_failed",
            None,
        ),
        (Reply(500, {"code": 500, "error": "problem accessing DB"}), ErrorClass.RETRY, "http_500", None),
        (Reply(503, b"upstream unavailable", {"Retry-After": "3"}), ErrorClass.RETRY, "http_503", 3.0),
        (
            Reply(429, {"code": 429, "error": "slow down"}, {"Retry-After": "7"}),
            ErrorClass.RETRY,
            "rate_limited",
            7.0,
        ),
        (Reply(504, b"<html>Gateway Time-out</html>"), ErrorClass.UNKNOWN_OUTCOME, "gateway_timeout", None),
    ],
    ids=["ack-timeout", "server-error-ack", "device-list", "upload", "generic-500", "503", "429", "504"],
)
async def test_error_answers_are_classified(
    server: FakeHttpServer,
    user: FakeUser,
    client: httpx.AsyncClient,
    reply: Reply,
    error_class: ErrorClass,
    code: str,
    wait: float | None,
) -> None:
    server.script(reply)
    error = await _send_error(client, _account(server), _message(text="a"))
    assert (error.error_class, error.code, error.retry_after) == (error_class, code, wait)
    assert error.http_status == reply.status


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (500, "No session", (ErrorClass.PAUSE_CHANNEL, "instance_disconnected")),
        (500, "no session", (ErrorClass.PAUSE_CHANNEL, "instance_disconnected")),
        (
            500,
            "Error sending message: websocket not connected",
            (ErrorClass.PAUSE_CHANNEL, "instance_disconnected"),
        ),
        (
            500,
            "error sending message: failed to send message node: frame socket is closed",
            (ErrorClass.PAUSE_CHANNEL, "instance_disconnected"),
        ),
        (
            500,
            "error sending message: the store doesn't contain a device JID",
            (ErrorClass.PAUSE_CHANNEL, "instance_logged_out"),
        ),
        (500, "error sending message: context canceled", (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")),
        (
            500,
            "error sending message: failed to send message node: failed to write msg: EOF",
            (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome"),
        ),
        (500, "error sending message: something new", (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")),
        (
            500,
            "error sending message: can't encrypt message for device: no signal session established",
            (ErrorClass.RETRY, "send_failed"),
        ),
        (
            500,
            "could not decode image for thumbnail preparation: bad",
            (ErrorClass.FIX_REQUEST, "media_invalid"),
        ),
        (400, "failed to fetch image from url: 404", (ErrorClass.FIX_REQUEST, "bad_request")),
        (401, "unauthorized", (ErrorClass.PAUSE_CHANNEL, "unauthorized")),
        (404, "404 page not found", (ErrorClass.FIX_REQUEST, "http_404")),
    ],
)
def test_classify_error(status: int, error: str, expected: tuple[ErrorClass, str]) -> None:
    assert classify_error(status, error) == expected


# --------------------------------------------------------------------------------------------------
# Sending: transport faults


async def test_reset_connection(
    server: FakeHttpServer, fake: FakeWuzapi, user: FakeUser, client: httpx.AsyncClient
) -> None:
    server.script(Fault.RESET)
    error = await _send_error(client, _account(server), _message(text="a"))
    # The request was written before the reset: request() cannot know it was not acted on.
    assert (error.error_class, error.code) == (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")
    assert server.accepted == []
    assert fake.sent == []


async def test_timeout(server: FakeHttpServer, fake: FakeWuzapi, user: FakeUser) -> None:
    server.script(Fault.TIMEOUT)
    async with provider_client(timeout=httpx.Timeout(0.5)) as short:
        error = await _send_error(short, _account(server), _message(text="a"))
    assert (error.error_class, error.code) == (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")
    assert server.accepted == []


async def test_lost_answer_is_unknown_but_reconcilable(
    server: FakeHttpServer, fake: FakeWuzapi, user: FakeUser, client: httpx.AsyncClient
) -> None:
    server.script(Fault.LOST_ANSWER)
    error = await _send_error(client, _account(server), _message(text="a"))

    assert (error.error_class, error.code) == (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")
    [accepted] = server.accepted
    # The id the receipts will carry is known without the answer.
    assert accepted.json()["Id"] == provider_message_id_for(MESSAGE_ID) == fake.sent[0]["Id"]


# --------------------------------------------------------------------------------------------------
# Presence


@pytest.mark.parametrize(
    ("state", "body"),
    [
        ("composing", {"Phone": MARIA, "State": "composing", "Media": ""}),
        ("paused", {"Phone": MARIA, "State": "paused", "Media": ""}),
        ("recording", {"Phone": MARIA, "State": "composing", "Media": "audio"}),
    ],
)
async def test_presence(
    server: FakeHttpServer,
    fake: FakeWuzapi,
    user: FakeUser,
    client: httpx.AsyncClient,
    state: Any,
    body: dict[str, str],
) -> None:
    await wuzapi_api.send_presence(client, _account(server), MARIA, state)

    request = _only(server)
    assert (request.method, request.path, request.headers["token"]) == ("POST", "/chat/presence", TOKEN)
    assert request.json() == body
    assert fake.presences == [body]


async def test_presence_default_is_typing(
    server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient
) -> None:
    await wuzapi_api.send_presence(client, _account(server), MARIA)
    assert _only(server).json()["State"] == "composing"


async def test_presence_without_session(
    server: FakeHttpServer, fake: FakeWuzapi, client: httpx.AsyncClient
) -> None:
    fake.add_user("loja-centro", TOKEN)
    with pytest.raises(SendError) as caught:
        await wuzapi_api.send_presence(client, _account(server), MARIA)
    assert (caught.value.error_class, caught.value.code) == (
        ErrorClass.PAUSE_CHANNEL,
        "instance_disconnected",
    )


# --------------------------------------------------------------------------------------------------
# Instances: create, webhook


def test_webhook_target_carries_the_secret_once() -> None:
    assert webhook_target(WEBHOOK, SECRET) == f"{WEBHOOK}/{SECRET}"
    assert webhook_target(f"{WEBHOOK}/{SECRET}", SECRET) == f"{WEBHOOK}/{SECRET}"
    assert webhook_target(WEBHOOK + "/?a=1", SECRET) == f"{WEBHOOK}/{SECRET}?a=1"
    assert webhook_target(WEBHOOK, "") == WEBHOOK


async def test_create_instance(server: FakeHttpServer, fake: FakeWuzapi, client: httpx.AsyncClient) -> None:
    created = await wuzapi_api.create_instance(client, _account(server, api_key=None), WEBHOOK, SECRET)

    request = _only(server)
    assert (request.method, request.path) == ("POST", "/admin/users")
    assert request.headers["authorization"] == ADMIN_TOKEN
    assert "token" not in request.headers
    body = request.json()
    token = body.pop("token")
    assert len(token) >= 32
    assert body == {"name": "loja-centro", "webhook": f"{WEBHOOK}/{SECRET}", "events": EVENTS}
    assert created == GatewayInstance(name="loja-centro", state=ConnectionState.CLOSE, token=token)
    assert fake.users[token].events == EVENTS


async def test_create_instance_tokens_are_fresh(server: FakeHttpServer, client: httpx.AsyncClient) -> None:
    first = await wuzapi_api.create_instance(client, _account(server), WEBHOOK, SECRET)
    second = await wuzapi_api.create_instance(
        client, _account(server, instance_name="outra"), WEBHOOK, SECRET
    )
    assert first.token != second.token


async def test_create_instance_on_an_older_build(server: FakeHttpServer, client: httpx.AsyncClient) -> None:
    server.script(Reply(200, {"id": 7}))  # older builds answered the bare id, unwrapped
    created = await wuzapi_api.create_instance(client, _account(server), WEBHOOK, SECRET)
    assert created.token == _only(server).json()["token"]


async def test_create_instance_with_wrong_admin_token(
    server: FakeHttpServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(SendError) as caught:
        await wuzapi_api.create_instance(client, _account(server, auth_token="nope"), WEBHOOK, SECRET)
    assert (caught.value.error_class, caught.value.code) == (ErrorClass.PAUSE_CHANNEL, "unauthorized")


async def test_create_instance_rejected_events(server: FakeHttpServer, client: httpx.AsyncClient) -> None:
    server.script(Reply(400, {"code": 400, "error": "Invalid event: Connected", "success": False}))
    with pytest.raises(SendError) as caught:
        await wuzapi_api.create_instance(client, _account(server), WEBHOOK, SECRET)
    assert (caught.value.error_class, caught.value.title) == (
        ErrorClass.FIX_REQUEST,
        "Invalid event: Connected",
    )


@pytest.mark.parametrize("missing", ["auth_token", "instance_name"])
async def test_create_instance_needs_admin_token_and_name(
    server: FakeHttpServer, client: httpx.AsyncClient, missing: str
) -> None:
    with pytest.raises(SendError) as caught:
        await wuzapi_api.create_instance(client, _account(server, **{missing: None}), WEBHOOK, SECRET)
    assert (caught.value.error_class, caught.value.code) == (ErrorClass.FIX_REQUEST, "missing_credentials")
    assert server.requests == []


async def test_register_webhook(
    server: FakeHttpServer, fake: FakeWuzapi, user: FakeUser, client: httpx.AsyncClient
) -> None:
    await wuzapi_api.register_webhook(client, _account(server), WEBHOOK, SECRET)

    request = _only(server)
    assert (request.method, request.path, request.headers["token"]) == ("POST", "/webhook", TOKEN)
    assert request.json() == {"webhookURL": f"{WEBHOOK}/{SECRET}", "events": list(WEBHOOK_EVENTS)}
    assert (user.webhook, user.events) == (f"{WEBHOOK}/{SECRET}", EVENTS)


# --------------------------------------------------------------------------------------------------
# Instances: connect


async def test_connect_returns_the_qr_image(
    server: FakeHttpServer, fake: FakeWuzapi, client: httpx.AsyncClient
) -> None:
    fake.add_user("loja-centro", TOKEN)
    challenge = await FAST.connect(client, _account(server))

    assert challenge == ConnectChallenge(
        ConnectionState.CONNECTING, qr_image_base64=QR_DATA_URL.split("base64,", 1)[1]
    )
    start, qr = server.requests
    assert (start.method, start.path, start.headers["token"]) == ("POST", "/session/connect", TOKEN)
    assert start.json() == {"Subscribe": list(WEBHOOK_EVENTS), "Immediate": True}
    assert (qr.method, qr.path, qr.headers["token"]) == ("GET", "/session/qr", TOKEN)


async def test_connect_waits_for_the_socket(
    server: FakeHttpServer, fake: FakeWuzapi, client: httpx.AsyncClient
) -> None:
    fake.add_user("loja-centro", TOKEN, warming_up=2)
    challenge = await FAST.connect(client, _account(server))

    assert challenge.qr_image_base64
    assert [request.path for request in server.requests] == ["/session/connect"] + ["/session/qr"] * 3


async def test_connect_gives_up_waiting(
    server: FakeHttpServer, fake: FakeWuzapi, client: httpx.AsyncClient
) -> None:
    fake.add_user("loja-centro", TOKEN, qr="")
    challenge = await FAST.connect(client, _account(server))

    assert challenge == ConnectChallenge(ConnectionState.CONNECTING)
    assert len(server.requests) == 1 + FAST.qr_attempts


async def test_connect_when_already_linked(
    server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient
) -> None:
    challenge = await FAST.connect(client, _account(server))

    assert challenge == ConnectChallenge(ConnectionState.OPEN)
    assert [request.path for request in server.requests] == ["/session/connect", "/session/qr"]


async def test_connect_with_an_older_build_saying_already_loggedin(
    server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient
) -> None:
    server.script(
        Reply(500, {"code": 500, "error": "Already Connected", "success": False}),
        Reply(500, {"code": 500, "error": "Already Loggedin", "success": False}),
    )
    assert await FAST.connect(client, _account(server)) == ConnectChallenge(ConnectionState.OPEN)


async def test_connect_with_a_pairing_code(
    server: FakeHttpServer, fake: FakeWuzapi, client: httpx.AsyncClient
) -> None:
    fake.add_user("loja-centro", TOKEN, warming_up=1)
    challenge = await FAST.connect(client, _account(server), phone="+55 (11) 4002-8922")

    assert challenge == ConnectChallenge(ConnectionState.CONNECTING, pairing_code=LINKING_CODE)
    start, waiting, pair = server.requests
    assert start.path == "/session/connect"
    assert (waiting.path, pair.path, pair.headers["token"]) == (
        "/session/pairphone",
        "/session/pairphone",
        TOKEN,
    )
    assert pair.json() == {"Phone": "551140028922"}


async def test_pairing_when_already_paired(
    server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient
) -> None:
    challenge = await FAST.connect(client, _account(server), phone="551140028922")
    assert challenge == ConnectChallenge(ConnectionState.OPEN)


async def test_connect_with_wrong_token(
    server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient
) -> None:
    with pytest.raises(SendError) as caught:
        await FAST.connect(client, _account(server, api_key="wrong"))
    assert (caught.value.error_class, caught.value.code) == (ErrorClass.PAUSE_CHANNEL, "unauthorized")
    assert len(server.requests) == 1


# --------------------------------------------------------------------------------------------------
# Instances: status, list


@pytest.mark.parametrize("style", ["old", "new"])
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"connected": True, "logged_in": True}, ConnectionState.OPEN),
        ({"connected": True, "logged_in": False}, ConnectionState.CONNECTING),
        ({"connected": False, "logged_in": False}, ConnectionState.CLOSE),
    ],
    ids=["open", "connecting", "close"],
)
async def test_status(
    server: FakeHttpServer,
    fake: FakeWuzapi,
    client: httpx.AsyncClient,
    style: str,
    state: dict[str, bool],
    expected: ConnectionState,
) -> None:
    fake.status_style = style
    fake.add_user("loja-centro", TOKEN, session=True, jid="551140028922.0:12@s.whatsapp.net", **state)
    instance = await wuzapi_api.status(client, _account(server))

    assert (instance.name, instance.state) == ("loja-centro", expected)
    assert instance.owner == ("551140028922.0:12@s.whatsapp.net" if style == "new" else None)
    request = _only(server)
    assert (request.method, request.path, request.headers["token"]) == ("GET", "/session/status", TOKEN)


async def test_status_without_session_is_closed(
    server: FakeHttpServer, fake: FakeWuzapi, client: httpx.AsyncClient
) -> None:
    fake.add_user("loja-centro", TOKEN)
    instance = await wuzapi_api.status(client, _account(server))
    assert instance == GatewayInstance(name="loja-centro", state=ConnectionState.CLOSE)


async def test_status_with_wrong_token(
    server: FakeHttpServer, user: FakeUser, client: httpx.AsyncClient
) -> None:
    with pytest.raises(SendError) as caught:
        await wuzapi_api.status(client, _account(server, api_key="wrong"))
    assert caught.value.error_class is ErrorClass.PAUSE_CHANNEL


async def test_list_instances(server: FakeHttpServer, fake: FakeWuzapi, client: httpx.AsyncClient) -> None:
    fake.add_user("a", "tok-a", session=True, connected=True, logged_in=True, jid="5511@s.whatsapp.net")
    fake.add_user("b", "tok-b", session=True, connected=True)
    fake.add_user("c", "tok-c")
    instances = await wuzapi_api.list_instances(client, _account(server, api_key=None))

    assert instances == [
        GatewayInstance("a", ConnectionState.OPEN, token="tok-a", owner="5511@s.whatsapp.net"),
        GatewayInstance("b", ConnectionState.CONNECTING, token="tok-b"),
        GatewayInstance("c", ConnectionState.CLOSE, token="tok-c"),
    ]
    request = _only(server)
    assert (request.method, request.path, request.headers["authorization"]) == (
        "GET",
        "/admin/users",
        ADMIN_TOKEN,
    )


async def test_list_instances_with_wrong_admin_token(
    server: FakeHttpServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(SendError) as caught:
        await wuzapi_api.list_instances(client, _account(server, auth_token="nope"))
    assert (caught.value.error_class, caught.value.code) == (ErrorClass.PAUSE_CHANNEL, "unauthorized")
