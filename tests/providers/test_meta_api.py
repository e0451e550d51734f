"""Meta Cloud API send adapter over real HTTP: exact requests, answers, Graph errors and transport faults."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from messaging_whatsapp.providers.base import ProviderName, SendProvider
from messaging_whatsapp.providers.http import provider_client
from messaging_whatsapp.providers.meta_api import meta_api
from messaging_whatsapp.providers.outbound import (
    ButtonsContent,
    ErrorClass,
    OutboundMedia,
    OutboundMediaType,
    OutboundMessage,
    ReplyButton,
    SenderAccount,
    SendError,
    SendResult,
    TemplateContent,
)
from tests.fakes.http import FakeHttpServer, Fault, RecordedRequest, Reply
from tests.fakes.meta import BadRequest, MetaGraphFake, check_message

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
# The token the example descriptors show, so their Authorization header compares as is.
TOKEN = "<SYSTEM_USER_ACCESS_TOKEN>"
PHONE_NUMBER_ID = "109283746501928"
MESSAGE_ID = "0193a1f2-7c4e-7b1a-9d2e-5f6a7b8c9d0e"
MARIA, ANA = "5511987654321", "5521976543210"
INBOUND_WAMID = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBN0YyQzlFMUI0RDhBNkYwRTUzAA=="


@dataclass
class Graph:
    """The fake Graph API behind a real HTTP server, and an account pointing at it."""

    server: FakeHttpServer
    fake: MetaGraphFake
    account: SenderAccount

    def only_request(self) -> RecordedRequest:
        """The one request the server received."""
        [request] = self.server.requests
        return request


def _descriptor(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return loaded


def _account(base_url: str, **changes: str) -> SenderAccount:
    fields = {"api_url": f"{base_url}/v23.0", "phone_number_id": PHONE_NUMBER_ID, "access_token": TOKEN}
    return SenderAccount(display_number="551140028922", **{**fields, **changes})


def _message(**content: Any) -> OutboundMessage:
    return OutboundMessage(**{"message_id": MESSAGE_ID, "to": MARIA, **content})


def _ours(body: dict[str, Any]) -> dict[str, Any]:
    """A descriptor body with the callback data we always add."""
    return {**body, "biz_opaque_callback_data": MESSAGE_ID}


@pytest.fixture
def graph() -> Iterator[Graph]:
    fake = MetaGraphFake(token=TOKEN, phone_number_id=PHONE_NUMBER_ID)
    with FakeHttpServer(fake, hold_seconds=2) as server:
        yield Graph(server, fake, _account(server.base_url))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with provider_client(timeout=httpx.Timeout(5.0)) as client:
        yield client


async def _send(graph: Graph, client: httpx.AsyncClient, message: OutboundMessage) -> SendResult:
    return await meta_api.send(client, graph.account, message)


async def _send_error(graph: Graph, client: httpx.AsyncClient, message: OutboundMessage) -> SendError:
    with pytest.raises(SendError) as caught:
        await _send(graph, client, message)
    return caught.value


def test_is_the_meta_send_provider() -> None:
    provider: SendProvider = meta_api
    assert provider.name is ProviderName.META


# --------------------------------------------------------------------------------------------------
# Requests


def _assert_request_as_descriptor(request: RecordedRequest, descriptor: dict[str, Any]) -> None:
    assert request.method == descriptor["method"]
    assert request.path == urlsplit(descriptor["url"]).path
    assert request.headers["authorization"] == descriptor["headers"]["Authorization"]
    assert request.headers["content-type"] == descriptor["headers"]["Content-Type"]


async def test_reply_to_text_is_the_documented_request(graph: Graph, client: httpx.AsyncClient) -> None:
    descriptor = _descriptor("meta_send_text_request.json")
    body = descriptor["body"]
    message = _message(to=body["to"], text=body["text"]["body"], reply_to=body["context"]["message_id"])

    await _send(graph, client, message)

    request = graph.only_request()
    _assert_request_as_descriptor(request, descriptor)
    assert request.json() == _ours(body)


async def test_text_without_reply_has_no_context(graph: Graph, client: httpx.AsyncClient) -> None:
    await _send(graph, client, _message(text="Olá, Maria!"))

    assert graph.only_request().json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": MARIA,
        "type": "text",
        "text": {"preview_url": False, "body": "Olá, Maria!"},
        "biz_opaque_callback_data": MESSAGE_ID,
    }


async def test_leading_plus_is_dropped_from_the_recipient(graph: Graph, client: httpx.AsyncClient) -> None:
    await _send(graph, client, _message(to=f"+{MARIA}", text="oi"))

    assert graph.only_request().json()["to"] == MARIA


def _image_descriptor_body(kind: str, content: dict[str, Any]) -> dict[str, Any]:
    """The image descriptor's envelope with another media object (its `_variants`)."""
    body = copy.deepcopy(_descriptor("meta_send_image_request.json")["body"])
    del body["image"]
    return {**body, "type": kind, kind: content}


_IMAGE = _descriptor("meta_send_image_request.json")["body"]["image"]
_VARIANTS = _descriptor("meta_send_image_request.json")["_variants"]


@pytest.mark.parametrize(
    ("media", "kind", "expected"),
    [
        pytest.param(
            OutboundMedia(OutboundMediaType.IMAGE, _IMAGE["link"], caption=_IMAGE["caption"]),
            "image",
            _IMAGE,
            id="image",
        ),
        pytest.param(
            OutboundMedia(
                OutboundMediaType.DOCUMENT,
                _VARIANTS["document"]["document"]["link"],
                caption=_VARIANTS["document"]["document"]["caption"],
                filename=_VARIANTS["document"]["document"]["filename"],
            ),
            "document",
            _VARIANTS["document"]["document"],
            id="document",
        ),
        pytest.param(
            # Meta takes no caption on audio: it is left out rather than failing the send.
            OutboundMedia(OutboundMediaType.AUDIO, _VARIANTS["audio"]["audio"]["link"], caption="ouça"),
            "audio",
            _VARIANTS["audio"]["audio"],
            id="audio-caption-dropped",
        ),
        pytest.param(
            # A file name only belongs on documents.
            OutboundMedia(
                OutboundMediaType.VIDEO, "https://cdn.exemplo.com.br/v.mp4", caption="Veja", filename="v.mp4"
            ),
            "video",
            {"link": "https://cdn.exemplo.com.br/v.mp4", "caption": "Veja"},
            id="video-filename-dropped",
        ),
        pytest.param(
            OutboundMedia(OutboundMediaType.IMAGE, "https://cdn.exemplo.com.br/a.jpg"),
            "image",
            {"link": "https://cdn.exemplo.com.br/a.jpg"},
            id="image-without-caption",
        ),
    ],
)
async def test_media_is_sent_by_link(
    graph: Graph, client: httpx.AsyncClient, media: OutboundMedia, kind: str, expected: dict[str, Any]
) -> None:
    await _send(graph, client, _message(to=ANA, media=media))

    request = graph.only_request()
    _assert_request_as_descriptor(request, _descriptor("meta_send_image_request.json"))
    assert request.json() == _ours(_image_descriptor_body(kind, expected))


async def test_template_without_parameters(graph: Graph, client: httpx.AsyncClient) -> None:
    await _send(graph, client, _message(template=TemplateContent("boas_vindas", language="pt_BR")))

    body = graph.only_request().json()
    assert body["type"] == "template"
    assert body["template"] == {"name": "boas_vindas", "language": {"code": "pt_BR"}}


async def test_template_with_parameters_matches_the_descriptor(
    graph: Graph, client: httpx.AsyncClient
) -> None:
    descriptor = _descriptor("meta_send_template_request.json")
    expected = copy.deepcopy(descriptor["body"])
    template = expected["template"]
    # Our templates carry body text parameters only (no header media, currency or button payloads).
    template["components"] = [
        {"type": "body", "parameters": [{"type": "text", "text": "João"}, {"type": "text", "text": "88123"}]}
    ]
    message = OutboundMessage(
        message_id=expected["biz_opaque_callback_data"],
        to=expected["to"],
        template=TemplateContent(template["name"], template["language"]["code"], ("João", "88123")),
    )

    await _send(graph, client, message)

    request = graph.only_request()
    _assert_request_as_descriptor(request, descriptor)
    assert request.json() == expected


async def test_reply_buttons_match_the_descriptor(graph: Graph, client: httpx.AsyncClient) -> None:
    descriptor = _descriptor("meta_send_interactive_buttons_request.json")
    expected = copy.deepcopy(descriptor["body"])
    interactive = expected["interactive"]
    # ButtonsContent has no header or footer.
    del interactive["header"], interactive["footer"]
    buttons = tuple(
        ReplyButton(button["reply"]["id"], button["reply"]["title"])
        for button in interactive["action"]["buttons"]
    )
    message = _message(to=expected["to"], buttons=ButtonsContent(interactive["body"]["text"], buttons))

    await _send(graph, client, message)

    request = graph.only_request()
    _assert_request_as_descriptor(request, descriptor)
    assert request.json() == _ours(expected)


async def test_buttons_at_the_limits_are_sent(graph: Graph, client: httpx.AsyncClient) -> None:
    buttons = tuple(ReplyButton(f"b{i}", f"{i}" * 20) for i in range(3))

    await _send(graph, client, _message(buttons=ButtonsContent("Escolha", buttons)))

    sent = graph.only_request().json()["interactive"]["action"]["buttons"]
    assert [button["reply"]["title"] for button in sent] == ["0" * 20, "1" * 20, "2" * 20]


@pytest.mark.parametrize(
    ("buttons", "code"),
    [
        pytest.param(tuple(ReplyButton(f"b{i}", f"Opção {i}") for i in range(4)), "too_many_buttons", id="4"),
        pytest.param((), "too_many_buttons", id="none"),
        pytest.param((ReplyButton("b", "x" * 21),), "button_title_too_long", id="title-21"),
        pytest.param((ReplyButton("b", ""),), "button_title_too_long", id="title-empty"),
        pytest.param((ReplyButton("a", "Sim"), ReplyButton("b", "Sim")), "duplicate_button_title", id="dup"),
        pytest.param((ReplyButton("x" * 257, "Sim"),), "invalid_button_id", id="id-257"),
    ],
)
async def test_button_limits_are_refused_before_any_request(
    graph: Graph, client: httpx.AsyncClient, buttons: tuple[ReplyButton, ...], code: str
) -> None:
    error = await _send_error(graph, client, _message(buttons=ButtonsContent("Escolha", buttons)))

    assert (error.error_class, error.code, error.http_status) == (ErrorClass.FIX_REQUEST, code, None)
    assert graph.server.requests == []


@pytest.mark.parametrize(
    "content",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"text": "oi", "template": TemplateContent("boas_vindas")}, id="two"),
    ],
)
async def test_a_message_needs_exactly_one_content(
    graph: Graph, client: httpx.AsyncClient, content: dict[str, Any]
) -> None:
    error = await _send_error(graph, client, _message(**content))

    assert (error.error_class, error.code) == (ErrorClass.FIX_REQUEST, "invalid_message")
    assert graph.server.requests == []


async def test_a_malformed_recipient_is_refused(graph: Graph, client: httpx.AsyncClient) -> None:
    error = await _send_error(graph, client, _message(to="55 11 98765-4321", text="oi"))

    assert error.error_class is ErrorClass.FIX_REQUEST
    assert graph.server.requests == []


async def test_an_account_without_token_pauses_the_channel(graph: Graph, client: httpx.AsyncClient) -> None:
    account = _account(graph.server.base_url, access_token="")

    with pytest.raises(SendError) as caught:
        await meta_api.send(client, account, _message(text="oi"))

    assert (caught.value.error_class, caught.value.code) == (ErrorClass.PAUSE_CHANNEL, "missing_credentials")
    assert graph.server.requests == []


# --------------------------------------------------------------------------------------------------
# Answers


async def test_success_gives_the_wamid_and_wa_id(graph: Graph, client: httpx.AsyncClient) -> None:
    # Meta may resolve the dialled number to a wa_id without Brazil's 9th digit.
    graph.fake.wa_ids["5531999887766"] = "553199887766"

    result = await _send(graph, client, _message(to="5531999887766", text="oi"))

    [(wamid, body)] = graph.fake.sent
    assert result == SendResult(provider_message_id=wamid, recipient_id="553199887766")
    assert wamid.startswith("wamid.")
    assert body["biz_opaque_callback_data"] == MESSAGE_ID
    assert len(graph.server.accepted) == 1


async def test_the_documented_success_answer_is_read(graph: Graph, client: httpx.AsyncClient) -> None:
    answer = _descriptor("meta_send_response_success.json")
    graph.server.script(Reply(answer["status"], answer["body"]))

    result = await _send(graph, client, _message(text="oi"))

    assert result == SendResult(
        provider_message_id=answer["body"]["messages"][0]["id"],
        recipient_id=answer["body"]["contacts"][0]["wa_id"],
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"messaging_product": "whatsapp", "contacts": [{"wa_id": MARIA}]}, id="no-messages"),
        pytest.param({"messages": [{"id": ""}]}, id="empty-id"),
        pytest.param({"messages": {"id": "wamid.x"}}, id="not-a-list"),
        pytest.param(b"<html>OK</html>", id="html"),
        pytest.param(None, id="empty"),
    ],
)
async def test_a_2xx_without_message_id_is_an_unknown_outcome(
    graph: Graph, client: httpx.AsyncClient, body: Any
) -> None:
    graph.server.script(Reply(200, body))

    error = await _send_error(graph, client, _message(text="oi"))

    assert (error.error_class, error.code, error.http_status) == (
        ErrorClass.UNKNOWN_OUTCOME,
        "unknown_outcome",
        200,
    )
    assert not error.retryable


@pytest.mark.parametrize(
    ("name", "error_class"),
    [
        ("meta_send_response_error_130429.json", ErrorClass.RETRY),
        ("meta_send_response_error_131056.json", ErrorClass.RETRY_LATER_SAME_RECIPIENT),
        ("meta_send_response_error_132001.json", ErrorClass.FIX_REQUEST),
    ],
)
async def test_documented_graph_errors_are_classified(
    graph: Graph, client: httpx.AsyncClient, name: str, error_class: ErrorClass
) -> None:
    answer = _descriptor(name)
    error_body = answer["body"]["error"]
    graph.server.script(Reply(answer["status"], answer["body"]))

    error = await _send_error(graph, client, _message(text="oi"))

    assert error.error_class is error_class
    assert error.code == str(error_body["code"])
    assert error.title == f"{error_body['message']} ({error_body['error_data']['details']})"
    assert (error.retry_after, error.http_status) == (None, answer["status"])
    assert graph.server.accepted == []


async def test_a_wrong_token_is_graph_error_190(graph: Graph, client: httpx.AsyncClient) -> None:
    account = _account(graph.server.base_url, access_token="EAAG-revoked")

    with pytest.raises(SendError) as caught:
        await meta_api.send(client, account, _message(text="oi"))

    error = caught.value
    assert (error.error_class, error.code, error.http_status) == (ErrorClass.PAUSE_CHANNEL, "190", 401)
    assert error.title.startswith("Invalid OAuth access token")
    assert graph.server.accepted == []


async def test_an_unknown_phone_number_id_is_graph_error_100(graph: Graph, client: httpx.AsyncClient) -> None:
    account = _account(graph.server.base_url, phone_number_id="999999999999999")

    with pytest.raises(SendError) as caught:
        await meta_api.send(client, account, _message(text="oi"))

    error = caught.value
    assert (error.error_class, error.code, error.http_status) == (ErrorClass.FIX_REQUEST, "100", 400)
    assert "999999999999999" in error.title


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (400, 131047, ErrorClass.NEEDS_TEMPLATE),
        (400, 131026, ErrorClass.INVALID_RECIPIENT),
        (400, 131050, ErrorClass.OPT_OUT),
        (403, 368, ErrorClass.PAUSE_CHANNEL),
        (500, 131000, ErrorClass.RETRY),
        # Codes outside the policy: the HTTP status decides.
        (401, 987654, ErrorClass.PAUSE_CHANNEL),
        (403, 987654, ErrorClass.PAUSE_CHANNEL),
        (503, 987654, ErrorClass.RETRY),
        (400, 987654, ErrorClass.FIX_REQUEST),
    ],
)
async def test_graph_errors_by_code(
    graph: Graph, client: httpx.AsyncClient, status: int, code: int, error_class: ErrorClass
) -> None:
    graph.fake.fail_next(status, code, f"(#{code}) Something")

    error = await _send_error(graph, client, _message(text="oi"))

    assert (error.error_class, error.code, error.title, error.http_status) == (
        error_class,
        str(code),
        f"(#{code}) Something",
        status,
    )
    assert graph.fake.sent == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(None, id="no-body"),
        pytest.param(_descriptor("meta_send_response_error_130429.json")["body"], id="graph-130429"),
    ],
)
async def test_429_with_retry_after(graph: Graph, client: httpx.AsyncClient, body: Any) -> None:
    graph.server.script(Reply(429, body, {"Retry-After": "7"}))

    error = await _send_error(graph, client, _message(text="oi"))

    assert (error.error_class, error.retry_after, error.http_status) == (ErrorClass.RETRY, 7.0, 429)
    assert error.retryable


@pytest.mark.parametrize(
    ("status", "body", "error_class"),
    [
        (500, None, ErrorClass.RETRY),
        (503, None, ErrorClass.RETRY),
        (502, b"<html><body>Bad Gateway</body></html>", ErrorClass.RETRY),
        (400, b"<html><body>Bad Request</body></html>", ErrorClass.FIX_REQUEST),
        (403, None, ErrorClass.PAUSE_CHANNEL),
        (400, {"error": {"message": "no code"}}, ErrorClass.FIX_REQUEST),
        (500, {"error": "oops"}, ErrorClass.RETRY),
        (500, [1, 2], ErrorClass.RETRY),
    ],
)
async def test_errors_without_a_graph_error_use_the_http_status(
    graph: Graph, client: httpx.AsyncClient, status: int, body: Any, error_class: ErrorClass
) -> None:
    graph.server.script(Reply(status, body))

    error = await _send_error(graph, client, _message(text="oi"))

    assert (error.error_class, error.code, error.http_status, error.retry_after) == (
        error_class,
        f"http_{status}",
        status,
        None,
    )


# --------------------------------------------------------------------------------------------------
# Transport faults


async def test_a_reset_connection_is_what_request_decides(graph: Graph, client: httpx.AsyncClient) -> None:
    graph.server.script(Fault.RESET)

    error = await _send_error(graph, client, _message(text="oi"))

    # The request was written before the reset, so request() cannot know it was not taken.
    assert (error.error_class, error.code) == (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")
    assert len(graph.server.requests) == 1
    assert graph.server.accepted == []


async def test_no_answer_before_the_timeout_is_an_unknown_outcome(graph: Graph) -> None:
    graph.server.script(Fault.TIMEOUT)

    async with provider_client(timeout=httpx.Timeout(0.5)) as client:
        error = await _send_error(graph, client, _message(text="oi"))

    assert (error.error_class, error.code) == (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")
    assert graph.server.accepted == []


async def test_a_lost_answer_is_an_unknown_outcome_but_reconcilable(
    graph: Graph, client: httpx.AsyncClient
) -> None:
    graph.server.script(Fault.LOST_ANSWER)

    error = await _send_error(graph, client, _message(text="oi"))

    assert (error.error_class, error.code) == (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")
    assert not error.retryable
    [accepted] = graph.server.accepted
    # Meta echoes this in the message's statuses: that is how the send is reconciled.
    assert accepted.json()["biz_opaque_callback_data"] == MESSAGE_ID


async def test_an_unreachable_api_is_retryable(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    account = _account(f"http://127.0.0.1:{port}")

    with pytest.raises(SendError) as caught:
        await meta_api.send(client, account, _message(text="oi"))

    assert (caught.value.error_class, caught.value.code) == (ErrorClass.RETRY, "connect_error")


# --------------------------------------------------------------------------------------------------
# Read receipts


async def test_mark_read_with_typing_is_the_documented_request(
    graph: Graph, client: httpx.AsyncClient
) -> None:
    descriptor = _descriptor("meta_mark_read_request.json")
    wamid = descriptor["body"]["message_id"]

    await meta_api.mark_read(client, graph.account, wamid, typing_indicator=True)

    request = graph.only_request()
    _assert_request_as_descriptor(request, descriptor)
    assert request.json() == descriptor["body"]
    assert graph.fake.read == [wamid]


async def test_mark_read_alone(graph: Graph, client: httpx.AsyncClient) -> None:
    await meta_api.mark_read(client, graph.account, INBOUND_WAMID)

    assert graph.only_request().json() == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": INBOUND_WAMID,
    }
    assert graph.fake.read == [INBOUND_WAMID]


async def test_mark_read_errors_are_classified(graph: Graph, client: httpx.AsyncClient) -> None:
    graph.fake.fail_next(400, 100, "(#100) Invalid parameter", "message_id is not valid")

    with pytest.raises(SendError) as caught:
        await meta_api.mark_read(client, graph.account, INBOUND_WAMID)

    assert (caught.value.error_class, caught.value.code) == (ErrorClass.FIX_REQUEST, "100")
    assert caught.value.title == "(#100) Invalid parameter (message_id is not valid)"


# --------------------------------------------------------------------------------------------------
# The fake itself refuses what Meta refuses, so the requests above are checked, not just echoed.


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            {"audio": {"link": "https://x/a.ogg", "caption": "no"}, "type": "audio"}, id="audio-cap"
        ),
        pytest.param({"to": "+5511987654321"}, id="plus"),
        pytest.param({"messaging_product": "sms"}, id="product"),
        pytest.param({"image": {"link": "https://x/a.jpg"}}, id="two-contents"),
    ],
)
def test_the_fake_rejects_malformed_bodies(change: dict[str, Any]) -> None:
    body = {**_descriptor("meta_send_text_request.json")["body"], **change}
    if change.get("type") == "audio":
        del body["text"]

    with pytest.raises(BadRequest):
        check_message(body)
