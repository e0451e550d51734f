"""Evolution API v2 send adapter and instance management, over real HTTP against a fake Evolution."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from messaging_whatsapp.providers.base import GatewayInstance, InstanceSecrets, WebhookRequest
from messaging_whatsapp.providers.events import ConnectionState
from messaging_whatsapp.providers.evolution import evolution_provider
from messaging_whatsapp.providers.evolution_api import WEBHOOK_EVENTS, evolution_api
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
from tests.fakes.evolution import GLOBAL_KEY, FakeEvolution, FakeInstance
from tests.fakes.http import FakeHttpServer, Fault, RecordedRequest, Reply

INSTANCE = "loja-centro"
MARIA = "5511987654321"
WEBHOOK_URL = "https://api.exemplo.com.br/webhooks/evolution"
SECRET = "s3cr3t-webhook-value"


@pytest.fixture
def evolution() -> FakeEvolution:
    fake = FakeEvolution()
    fake.add_instance(INSTANCE, state="open", owner="551140028922")
    return fake


@pytest.fixture
def instance(evolution: FakeEvolution) -> FakeInstance:
    return evolution.instances[INSTANCE]


@pytest.fixture
def server(evolution: FakeEvolution) -> Iterator[FakeHttpServer]:
    with FakeHttpServer(evolution, hold_seconds=2) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with provider_client(timeout=httpx.Timeout(5.0)) as client:
        yield client


def account(server: FakeHttpServer, api_key: str | None, name: str | None = INSTANCE) -> SenderAccount:
    return SenderAccount(
        display_number="551140028922", api_url=f"{server.base_url}/", instance_name=name, api_key=api_key
    )


def text(body: str = "Entregamos sim!", reply_to: str | None = None) -> OutboundMessage:
    return OutboundMessage(message_id="m-1", to=MARIA, text=body, reply_to=reply_to)


def only(server: FakeHttpServer) -> RecordedRequest:
    [request] = server.requests
    return request


async def send_error(client: httpx.AsyncClient, sender: SenderAccount, message: OutboundMessage) -> SendError:
    with pytest.raises(SendError) as caught:
        await evolution_api.send(client, sender, message)
    return caught.value


# --------------------------------------------------------------------------------------------------
# Sends


async def test_send_text_posts_number_and_text_with_instance_token(
    server: FakeHttpServer, client: httpx.AsyncClient, evolution: FakeEvolution, instance: FakeInstance
) -> None:
    result = await evolution_api.send(client, account(server, instance.token), text())

    request = only(server)
    assert (request.method, request.path) == ("POST", f"/message/sendText/{INSTANCE}")
    assert request.headers["apikey"] == instance.token
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"number": MARIA, "text": "Entregamos sim!"}
    [sent] = evolution.sent
    assert result.provider_message_id == sent["id"]


async def test_send_text_to_a_person_known_by_lid_names_the_lid(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    # Evolution's createJid takes a JID ending in @lid as it is.
    message = OutboundMessage(message_id="m-1", to="97318254610077@lid", text="Oi")
    await evolution_api.send(client, account(server, instance.token), message)
    assert only(server).json() == {"number": "97318254610077@lid", "text": "Oi"}


async def test_send_text_reply_quotes_the_message_id(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    await evolution_api.send(client, account(server, instance.token), text(reply_to="AC4E1B7F2D9A06C3"))

    assert only(server).json() == {
        "number": MARIA,
        "text": "Entregamos sim!",
        "quoted": {"key": {"id": "AC4E1B7F2D9A06C3"}},
    }


@pytest.mark.parametrize(
    ("media", "path", "body"),
    [
        (
            OutboundMedia(OutboundMediaType.IMAGE, "https://cdn.example/p.jpg", caption="Cardápio"),
            "sendMedia",
            {"mediatype": "image", "media": "https://cdn.example/p.jpg", "caption": "Cardápio"},
        ),
        (
            OutboundMedia(OutboundMediaType.VIDEO, "https://cdn.example/v.mp4"),
            "sendMedia",
            {"mediatype": "video", "media": "https://cdn.example/v.mp4"},
        ),
        (
            OutboundMedia(OutboundMediaType.DOCUMENT, "https://cdn.example/x", "Boleto", "boleto.pdf"),
            "sendMedia",
            {
                "mediatype": "document",
                "media": "https://cdn.example/x",
                "caption": "Boleto",
                "fileName": "boleto.pdf",
            },
        ),
        (
            OutboundMedia(OutboundMediaType.AUDIO, "https://cdn.example/a.ogg", caption="dropped"),
            "sendWhatsAppAudio",
            {"audio": "https://cdn.example/a.ogg"},
        ),
    ],
    ids=["image", "video", "document", "audio"],
)
async def test_send_media_by_url(
    server: FakeHttpServer,
    client: httpx.AsyncClient,
    evolution: FakeEvolution,
    instance: FakeInstance,
    media: OutboundMedia,
    path: str,
    body: dict[str, str],
) -> None:
    message = OutboundMessage(message_id="m-2", to=MARIA, media=media)
    result = await evolution_api.send(client, account(server, instance.token), message)

    request = only(server)
    assert request.path == f"/message/{path}/{INSTANCE}"
    assert request.headers["apikey"] == instance.token
    assert request.json() == {"number": MARIA, **body}
    assert result.provider_message_id == evolution.sent[0]["id"]


async def test_send_media_reply_quotes_too(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    media = OutboundMedia(OutboundMediaType.AUDIO, "https://cdn.example/a.ogg")
    message = OutboundMessage(message_id="m-3", to=MARIA, media=media, reply_to="ABC")
    await evolution_api.send(client, account(server, instance.token), message)

    assert only(server).json()["quoted"] == {"key": {"id": "ABC"}}


async def test_buttons_go_out_as_numbered_text(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    buttons = ButtonsContent("Confirma o pedido?", (ReplyButton("yes", "Sim"), ReplyButton("no", "Não")))
    message = OutboundMessage(message_id="m-4", to=MARIA, buttons=buttons)
    await evolution_api.send(client, account(server, instance.token), message)

    request = only(server)
    assert request.path == f"/message/sendText/{INSTANCE}"
    assert request.json() == {"number": MARIA, "text": "Confirma o pedido?\n\n1. Sim\n2. Não"}


async def test_template_is_refused_before_any_request(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    message = OutboundMessage(message_id="m-5", to=MARIA, template=TemplateContent("boas_vindas"))
    failure = await send_error(client, account(server, instance.token), message)

    assert (failure.error_class, failure.code) == (ErrorClass.FIX_REQUEST, "template_unsupported")
    assert server.requests == []


async def test_message_without_content_is_refused_before_any_request(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    failure = await send_error(client, account(server, instance.token), OutboundMessage("m-6", MARIA))

    assert (failure.error_class, failure.code) == (ErrorClass.FIX_REQUEST, "invalid_message")
    assert server.requests == []


async def test_missing_credentials_pause_the_channel_without_a_request(
    server: FakeHttpServer, client: httpx.AsyncClient
) -> None:
    failure = await send_error(client, account(server, None), text())

    assert (failure.error_class, failure.code) == (ErrorClass.PAUSE_CHANNEL, "missing_credentials")
    assert server.requests == []


async def test_instance_name_is_escaped_in_the_path(
    server: FakeHttpServer, client: httpx.AsyncClient, evolution: FakeEvolution
) -> None:
    odd = evolution.add_instance("loja centro/2")
    await evolution_api.send(client, account(server, odd.token, "loja centro/2"), text())

    assert only(server).path == "/message/sendText/loja%20centro%2F2"
    assert evolution.sent[0]["instance"] == "loja centro/2"


# --------------------------------------------------------------------------------------------------
# Presence


async def test_presence_posts_number_presence_and_delay(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    await evolution_api.send_presence(client, account(server, instance.token), MARIA, delay_ms=1200)

    request = only(server)
    assert (request.method, request.path) == ("POST", f"/chat/sendPresence/{INSTANCE}")
    assert request.headers["apikey"] == instance.token
    assert request.json() == {"number": MARIA, "presence": "composing", "delay": 1200}


async def test_presence_waits_out_a_delay_longer_than_the_read_timeout(
    server: FakeHttpServer, evolution: FakeEvolution, instance: FakeInstance
) -> None:
    evolution.hold_presence = True
    async with provider_client(timeout=httpx.Timeout(0.3)) as short:
        await evolution_api.send_presence(short, account(server, instance.token), MARIA, "recording", 600)

    assert only(server).json()["presence"] == "recording"


async def test_presence_on_a_dropped_session_pauses_the_channel(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    instance.state = "close"
    with pytest.raises(SendError) as caught:
        await evolution_api.send_presence(client, account(server, instance.token), MARIA, delay_ms=0)

    assert (caught.value.error_class, caught.value.code) == (
        ErrorClass.PAUSE_CHANNEL,
        "instance_disconnected",
    )
    assert caught.value.http_status == 400


# --------------------------------------------------------------------------------------------------
# Send errors


async def test_wrong_key_is_unauthorized(server: FakeHttpServer, client: httpx.AsyncClient) -> None:
    failure = await send_error(client, account(server, "not-the-token"), text())

    assert (failure.error_class, failure.code, failure.http_status) == (
        ErrorClass.PAUSE_CHANNEL,
        "unauthorized",
        401,
    )
    assert failure.title == "Unauthorized"


async def test_unknown_instance_pauses_the_channel(server: FakeHttpServer, client: httpx.AsyncClient) -> None:
    failure = await send_error(client, account(server, GLOBAL_KEY, "loja-x"), text())

    assert (failure.error_class, failure.code, failure.http_status) == (
        ErrorClass.PAUSE_CHANNEL,
        "instance_not_found",
        404,
    )
    assert "loja-x" in failure.title


async def test_number_not_on_whatsapp_is_an_invalid_recipient(
    server: FakeHttpServer, client: httpx.AsyncClient, evolution: FakeEvolution, instance: FakeInstance
) -> None:
    evolution.mark_not_on_whatsapp(MARIA)
    failure = await send_error(client, account(server, instance.token), text())

    assert (failure.error_class, failure.code, failure.http_status) == (
        ErrorClass.INVALID_RECIPIENT,
        "not_on_whatsapp",
        400,
    )
    assert not failure.retryable
    assert server.accepted == []


async def test_send_on_a_dropped_session_pauses_the_channel(
    server: FakeHttpServer, client: httpx.AsyncClient, evolution: FakeEvolution, instance: FakeInstance
) -> None:
    instance.state = "close"
    failure = await send_error(client, account(server, instance.token), text())

    assert (failure.error_class, failure.code, failure.http_status) == (
        ErrorClass.PAUSE_CHANNEL,
        "instance_disconnected",
        500,
    )
    assert evolution.sent == []


async def test_bad_request_needs_fixing(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    media = OutboundMedia(OutboundMediaType.IMAGE, "ftp://not-http/p.jpg")
    failure = await send_error(
        client, account(server, instance.token), OutboundMessage("m-7", MARIA, media=media)
    )

    assert (failure.error_class, failure.code, failure.http_status) == (
        ErrorClass.FIX_REQUEST,
        "bad_request",
        400,
    )
    assert failure.title == "Owned media must be a url or base64"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Reply(500, {"status": 500, "error": "Internal Server Error", "response": {"message": "boom"}}),
            (ErrorClass.RETRY, "server_error", None),
        ),
        (
            Reply(429, b"slow down", {"Retry-After": "7"}),
            (ErrorClass.RETRY, "rate_limited", 7.0),
        ),
        (
            Reply(503, None, {"Retry-After": "2"}),
            (ErrorClass.RETRY, "server_error", 2.0),
        ),
        (
            Reply(504, b"<html>Gateway Time-out</html>"),
            (ErrorClass.UNKNOWN_OUTCOME, "gateway_timeout", None),
        ),
        (
            Reply(
                400,
                {
                    "status": 400,
                    "error": "Bad Request",
                    "response": {"message": ["Error: Connection Closed"]},
                },
            ),
            (ErrorClass.PAUSE_CHANNEL, "instance_disconnected", None),
        ),
        (
            Reply(201, {"status": "PENDING"}),
            (ErrorClass.UNKNOWN_OUTCOME, "missing_message_id", None),
        ),
    ],
    ids=["500", "429-retry-after", "503-retry-after", "504-proxy", "400-connection-closed", "201-without-id"],
)
async def test_scripted_answers_are_classified(
    server: FakeHttpServer,
    client: httpx.AsyncClient,
    instance: FakeInstance,
    reply: Reply,
    expected: tuple[ErrorClass, str, float | None],
) -> None:
    server.script(reply)
    failure = await send_error(client, account(server, instance.token), text())

    assert (failure.error_class, failure.code, failure.retry_after) == expected


# --------------------------------------------------------------------------------------------------
# Transport faults: never retried blindly when the message may have gone out


async def test_reset_connection_is_classified_by_request(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    server.script(Fault.RESET)
    failure = await send_error(client, account(server, instance.token), text())

    # The reset comes after the request was written: request() cannot know it was not acted on.
    assert (failure.error_class, failure.code) == (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")
    assert len(server.requests) == 1
    assert server.accepted == []


async def test_timeout_is_an_unknown_outcome(server: FakeHttpServer, instance: FakeInstance) -> None:
    server.script(Fault.TIMEOUT)
    async with provider_client(timeout=httpx.Timeout(0.5)) as short:
        failure = await send_error(short, account(server, instance.token), text())

    assert failure.error_class is ErrorClass.UNKNOWN_OUTCOME
    assert not failure.retryable
    assert server.accepted == []


async def test_lost_answer_is_an_unknown_outcome_with_the_message_accepted_once(
    server: FakeHttpServer, client: httpx.AsyncClient, evolution: FakeEvolution, instance: FakeInstance
) -> None:
    server.script(Fault.LOST_ANSWER)
    failure = await send_error(client, account(server, instance.token), text())

    assert failure.error_class is ErrorClass.UNKNOWN_OUTCOME
    assert len(server.accepted) == 1
    assert len(evolution.sent) == 1


# --------------------------------------------------------------------------------------------------
# Instances


async def test_create_instance_with_webhook_carrying_the_secret(
    server: FakeHttpServer, client: httpx.AsyncClient, evolution: FakeEvolution
) -> None:
    created = await evolution_api.create_instance(
        client, account(server, GLOBAL_KEY, "loja-nova"), WEBHOOK_URL, SECRET
    )

    request = only(server)
    assert (request.method, request.path, request.headers["apikey"]) == (
        "POST",
        "/instance/create",
        GLOBAL_KEY,
    )
    webhook = {
        "enabled": True,
        "url": WEBHOOK_URL,
        "headers": {"x-webhook-secret": SECRET},
        "byEvents": False,
        "base64": False,
        "events": [
            "MESSAGES_UPSERT",
            "MESSAGES_UPDATE",
            "SEND_MESSAGE",
            "CONNECTION_UPDATE",
            "QRCODE_UPDATED",
        ],
    }
    assert request.json() == {
        "instanceName": "loja-nova",
        "integration": "WHATSAPP-BAILEYS",
        "qrcode": True,
        "groupsIgnore": True,
        "webhook": webhook,
    }
    stored = evolution.instances["loja-nova"]
    assert created == GatewayInstance(name="loja-nova", state=ConnectionState.CONNECTING, token=stored.token)
    assert stored.webhook == webhook


async def test_registered_secret_header_passes_our_webhook_verification(
    server: FakeHttpServer, client: httpx.AsyncClient, evolution: FakeEvolution, instance: FakeInstance
) -> None:
    await evolution_api.register_webhook(client, account(server, instance.token), WEBHOOK_URL, SECRET)

    # What Evolution will send: the configured headers on every POST (lower-cased by our receiver).
    assert instance.webhook is not None
    headers = {name.lower(): value for name, value in instance.webhook["headers"].items()}
    body = b'{"event":"connection.update","instance":"loja-centro","data":{"state":"open"}}'
    request = WebhookRequest(body=body, headers=headers, url=WEBHOOK_URL)
    assert evolution_provider.verify(request, InstanceSecrets(webhook_secret=SECRET))
    assert not evolution_provider.verify(request, InstanceSecrets(webhook_secret="other"))


async def test_create_instance_with_a_taken_name_needs_fixing(
    server: FakeHttpServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(SendError) as caught:
        await evolution_api.create_instance(client, account(server, GLOBAL_KEY), WEBHOOK_URL, SECRET)

    assert (caught.value.error_class, caught.value.code, caught.value.http_status) == (
        ErrorClass.FIX_REQUEST,
        "instance_exists",
        403,
    )


async def test_create_instance_needs_the_global_key(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    with pytest.raises(SendError) as caught:
        await evolution_api.create_instance(
            client, account(server, instance.token, "loja-nova"), WEBHOOK_URL, SECRET
        )

    assert (caught.value.error_class, caught.value.code) == (ErrorClass.PAUSE_CHANNEL, "unauthorized")


async def test_register_webhook_sets_the_same_config(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    await evolution_api.register_webhook(client, account(server, instance.token), WEBHOOK_URL, SECRET)

    request = only(server)
    assert (request.method, request.path, request.headers["apikey"]) == (
        "POST",
        f"/webhook/set/{INSTANCE}",
        instance.token,
    )
    assert request.json() == {
        "webhook": {
            "enabled": True,
            "url": WEBHOOK_URL,
            "headers": {"x-webhook-secret": SECRET},
            "byEvents": False,
            "base64": False,
            "events": list(WEBHOOK_EVENTS),
        }
    }
    assert instance.webhook == request.json()["webhook"]


async def test_connect_returns_a_qr_code(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    instance.state = "close"
    challenge = await evolution_api.connect(client, account(server, instance.token))

    request = only(server)
    assert (request.method, request.path, request.query) == ("GET", f"/instance/connect/{INSTANCE}", {})
    assert challenge.state is ConnectionState.CONNECTING
    assert challenge.qr_code == instance.qrcode["code"]
    assert f"data:image/png;base64,{challenge.qr_image_base64}" == instance.qrcode["base64"]
    assert challenge.pairing_code is None


async def test_connect_with_a_phone_returns_a_pairing_code(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    instance.state = "close"
    challenge = await evolution_api.connect(client, account(server, instance.token), phone="551140028922")

    assert only(server).query == {"number": "551140028922"}
    assert challenge.pairing_code == instance.qrcode["pairingCode"]
    assert len(challenge.pairing_code or "") == 8
    assert challenge.qr_code == instance.qrcode["code"]


async def test_connect_when_already_open(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    challenge = await evolution_api.connect(client, account(server, instance.token))

    assert challenge.state is ConnectionState.OPEN
    assert (challenge.qr_code, challenge.qr_image_base64, challenge.pairing_code) == (None, None, None)


async def test_connect_failure_answered_as_200_is_an_error(
    server: FakeHttpServer, client: httpx.AsyncClient, instance: FakeInstance
) -> None:
    server.script(Reply(200, {"error": True, "message": "Error: Connection Failure"}))
    with pytest.raises(SendError) as caught:
        await evolution_api.connect(client, account(server, instance.token))

    assert (caught.value.error_class, caught.value.code) == (ErrorClass.RETRY, "connect_failed")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("open", ConnectionState.OPEN),
        ("connecting", ConnectionState.CONNECTING),
        ("close", ConnectionState.CLOSE),
    ],
)
async def test_status_reads_the_connection_state(
    server: FakeHttpServer,
    client: httpx.AsyncClient,
    instance: FakeInstance,
    state: str,
    expected: ConnectionState,
) -> None:
    instance.state = state
    status = await evolution_api.status(client, account(server, instance.token))

    request = only(server)
    assert (request.method, request.path) == ("GET", f"/instance/connectionState/{INSTANCE}")
    assert status == GatewayInstance(name=INSTANCE, state=expected)


async def test_status_of_an_unknown_instance(server: FakeHttpServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(SendError) as caught:
        await evolution_api.status(client, account(server, GLOBAL_KEY, "loja-x"))

    assert (caught.value.error_class, caught.value.code) == (ErrorClass.PAUSE_CHANNEL, "instance_not_found")


async def test_list_instances_with_the_global_key(
    server: FakeHttpServer, client: httpx.AsyncClient, evolution: FakeEvolution, instance: FakeInstance
) -> None:
    linking = evolution.add_instance("loja-norte", state="connecting")
    refused = evolution.add_instance("loja-sul", state="refused")

    listed = await evolution_api.list_instances(client, account(server, GLOBAL_KEY, None))

    request = only(server)
    assert (request.method, request.path, request.headers["apikey"]) == (
        "GET",
        "/instance/fetchInstances",
        GLOBAL_KEY,
    )
    assert listed == [
        GatewayInstance(INSTANCE, ConnectionState.OPEN, token=instance.token, owner="551140028922"),
        GatewayInstance("loja-norte", ConnectionState.CONNECTING, token=linking.token),
        GatewayInstance("loja-sul", ConnectionState.CLOSE, token=refused.token),
    ]


async def test_list_instances_with_a_wrong_key(server: FakeHttpServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(SendError) as caught:
        await evolution_api.list_instances(client, account(server, "nope", None))

    assert (caught.value.error_class, caught.value.http_status) == (ErrorClass.PAUSE_CHANNEL, 401)


async def test_gateway_call_lost_answer_is_an_unknown_outcome(
    server: FakeHttpServer, client: httpx.AsyncClient, evolution: FakeEvolution
) -> None:
    server.script(Fault.LOST_ANSWER)
    with pytest.raises(SendError) as caught:
        await evolution_api.create_instance(
            client, account(server, GLOBAL_KEY, "loja-nova"), WEBHOOK_URL, SECRET
        )

    assert caught.value.error_class is ErrorClass.UNKNOWN_OUTCOME
    assert "loja-nova" in evolution.instances
