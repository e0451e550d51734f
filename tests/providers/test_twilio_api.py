"""Twilio send adapter over real HTTP against the fake Messages API: the exact request per content kind
(checked against twilio_send_request.json), the StatusCallback carrying our id, answers, errors and
transport faults."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from messaging_whatsapp.providers.base import ProviderName, SendProvider
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
    SendResult,
    TemplateContent,
)
from messaging_whatsapp.providers.twilio_api import status_callback, twilio_api
from tests.fakes.http import FakeHttpServer, Fault, RecordedRequest, Reply
from tests.fakes.twilio import FakeTwilio, error_body

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
ACCOUNT_SID = "AC3f9e1c7a5b2d4e6f8a0c1b3d5e7f9a2c"
# The fixture's Authorization header is Basic of "<sid>:<AUTH_TOKEN>" literally.
AUTH_TOKEN = "<AUTH_TOKEN>"
OUR_NUMBER = "+551140028922"
CALLBACK_URL = "https://api.exemplo.com.br/webhooks/twilio/status?tenant=loja-centro"
MESSAGE_ID = "0b4f2c1e-7d3a-4e8b-9c6f-1a2b3c4d5e6f"


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return data


SEND_REQUEST = _example("twilio_send_request.json")


def _account(base_url: str, **changes: Any) -> SenderAccount:
    fields: dict[str, Any] = {
        "display_number": OUR_NUMBER,
        "api_url": base_url,
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "status_callback_url": CALLBACK_URL,
    }
    fields.update(changes)
    return SenderAccount(**fields)


def _text(text: str = "Entregamos sim! Pedido até 15h chega hoje.", **changes: Any) -> OutboundMessage:
    return OutboundMessage(message_id=MESSAGE_ID, to="5511987654321", text=text, **changes)


class _Twilio:
    """A fake Twilio behind a real HTTP server, with a client and an account pointing at it."""

    def __init__(self, fake: FakeTwilio, server: FakeHttpServer, client: httpx.AsyncClient) -> None:
        self.fake = fake
        self.server = server
        self.client = client
        self.account = _account(server.base_url)

    async def send(self, message: OutboundMessage, account: SenderAccount | None = None) -> SendResult:
        return await twilio_api.send(self.client, account or self.account, message)

    async def fail(self, message: OutboundMessage, account: SenderAccount | None = None) -> SendError:
        with pytest.raises(SendError) as caught:
            await self.send(message, account)
        return caught.value

    @property
    def only_request(self) -> RecordedRequest:
        [request] = self.server.requests
        return request


@pytest.fixture
def server() -> Iterator[tuple[FakeTwilio, FakeHttpServer]]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    with FakeHttpServer(fake, hold_seconds=2) as http_server:
        yield fake, http_server


@pytest.fixture
async def twilio(server: tuple[FakeTwilio, FakeHttpServer]) -> AsyncIterator[_Twilio]:
    fake, http_server = server
    async with provider_client(timeout=httpx.Timeout(0.5)) as client:
        yield _Twilio(fake, http_server, client)


def _with_callback(form: dict[str, str]) -> dict[str, str]:
    """The fixture's form as we send it: our id appended to its StatusCallback."""
    return {**form, "StatusCallback": f"{form['StatusCallback']}&mw_message_id={MESSAGE_ID}"}


# --------------------------------------------------------------------------------------------------
# The request


def test_is_a_send_provider() -> None:
    provider: SendProvider = twilio_api
    assert provider.name is ProviderName.TWILIO


async def test_freeform_text_request_matches_the_example(twilio: _Twilio) -> None:
    result = await twilio.send(_text())
    request = twilio.only_request
    assert request.method == SEND_REQUEST["method"]
    assert request.path == urlsplit(SEND_REQUEST["url"]).path
    assert request.headers["authorization"] == SEND_REQUEST["headers"]["Authorization"]
    assert request.headers["content-type"] == SEND_REQUEST["headers"]["Content-Type"]
    assert request.form() == _with_callback(SEND_REQUEST["form_freeform"])
    [created] = twilio.fake.created
    assert result == SendResult(provider_message_id=created.sid)


async def test_media_request_matches_the_example(twilio: _Twilio) -> None:
    media = OutboundMedia(
        OutboundMediaType.IMAGE, "https://cdn.exemplo.com.br/catalogo/tenis-azul.jpg", caption="Modelo azul"
    )
    message = OutboundMessage(message_id=MESSAGE_ID, to="5521976543210", media=media)
    await twilio.send(message, _account(twilio.server.base_url, status_callback_url=None))
    assert twilio.only_request.form() == SEND_REQUEST["form_media"]


async def test_media_without_caption_has_no_body(twilio: _Twilio) -> None:
    media = OutboundMedia(OutboundMediaType.DOCUMENT, "https://cdn.exemplo.com.br/nf.pdf", filename="nf.pdf")
    await twilio.send(OutboundMessage(message_id=MESSAGE_ID, to="5521976543210", media=media))
    form = twilio.only_request.form()
    assert form["MediaUrl"] == "https://cdn.exemplo.com.br/nf.pdf"
    assert "Body" not in form


async def test_template_request_matches_the_example(twilio: _Twilio) -> None:
    template = TemplateContent("HX9e3b7d1f5a2c8e4b0d6f9a3c1e7b5d28", parameters=("João", "88123"))
    await twilio.send(OutboundMessage(message_id=MESSAGE_ID, to="5531999887766", template=template))
    expected = _with_callback(SEND_REQUEST["form_template"])
    # The example sends through a Messaging Service; we send from the instance's number.
    del expected["MessagingServiceSid"]
    assert twilio.only_request.form() == {**expected, "From": f"whatsapp:{OUR_NUMBER}"}


async def test_template_without_parameters_has_no_variables(twilio: _Twilio) -> None:
    template = TemplateContent("HX9e3b7d1f5a2c8e4b0d6f9a3c1e7b5d28")
    await twilio.send(OutboundMessage(message_id=MESSAGE_ID, to="5531999887766", template=template))
    form = twilio.only_request.form()
    assert form["ContentSid"] == "HX9e3b7d1f5a2c8e4b0d6f9a3c1e7b5d28"
    assert "ContentVariables" not in form
    assert "Body" not in form


async def test_template_variables_are_a_json_string(twilio: _Twilio) -> None:
    template = TemplateContent("HXabc", parameters=('diz "oi"', "R$ 10,00", "3"))
    await twilio.send(OutboundMessage(message_id=MESSAGE_ID, to="5531999887766", template=template))
    variables = json.loads(twilio.only_request.form()["ContentVariables"])
    assert variables == {"1": 'diz "oi"', "2": "R$ 10,00", "3": "3"}


async def test_buttons_go_as_numbered_text(twilio: _Twilio) -> None:
    buttons = ButtonsContent("Confirma o pedido?", (ReplyButton("yes", "Sim"), ReplyButton("no", "Não")))
    await twilio.send(OutboundMessage(message_id=MESSAGE_ID, to="5511987654321", buttons=buttons))
    form = twilio.only_request.form()
    assert form["Body"] == "Confirma o pedido?\n\n1. Sim\n2. Não"
    assert form["Body"] == buttons.as_numbered_text()
    assert set(form) == {"To", "From", "Body", "StatusCallback"}


async def test_reply_to_adds_nothing(twilio: _Twilio) -> None:
    await twilio.send(_text(reply_to="SMa1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"))
    assert set(twilio.only_request.form()) == {"To", "From", "Body", "StatusCallback"}


async def test_no_status_callback_when_none_is_configured(twilio: _Twilio) -> None:
    await twilio.send(_text(), _account(twilio.server.base_url, status_callback_url=None))
    assert "StatusCallback" not in twilio.only_request.form()


async def test_api_url_with_trailing_slash(twilio: _Twilio) -> None:
    await twilio.send(_text(), _account(twilio.server.base_url + "/"))
    assert twilio.only_request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://api.exemplo.com.br/webhooks/twilio/status",
            "https://api.exemplo.com.br/webhooks/twilio/status?mw_message_id=m-1",
        ),
        (
            "https://api.exemplo.com.br/webhooks/twilio/status?tenant=loja-centro&x=a%20b",
            "https://api.exemplo.com.br/webhooks/twilio/status?tenant=loja-centro&x=a%20b&mw_message_id=m-1",
        ),
    ],
)
def test_status_callback_keeps_the_query_and_appends_our_id(url: str, expected: str) -> None:
    assert status_callback(url, "m-1") == expected


def test_status_callback_quotes_the_id() -> None:
    url = status_callback("https://h.example/s?t=1", "a&b=c d")
    assert parse_qs(urlsplit(url).query) == {"t": ["1"], "mw_message_id": ["a&b=c d"]}


async def test_status_callback_carries_our_id(twilio: _Twilio) -> None:
    await twilio.send(_text())
    callback = urlsplit(twilio.only_request.form()["StatusCallback"])
    assert parse_qs(callback.query) == {"tenant": ["loja-centro"], "mw_message_id": [MESSAGE_ID]}


# --------------------------------------------------------------------------------------------------
# Answers


async def test_each_send_gets_its_own_sid(twilio: _Twilio) -> None:
    first, second = await twilio.send(_text("um")), await twilio.send(_text("dois"))
    assert first.provider_message_id != second.provider_message_id
    assert [m.sid for m in twilio.fake.created] == [first.provider_message_id, second.provider_message_id]
    for result in (first, second):
        assert result.provider_message_id.startswith("SM")
        assert len(result.provider_message_id) == 34


async def test_example_response_is_parsed(twilio: _Twilio) -> None:
    example = _example("twilio_send_response.json")
    twilio.server.script(Reply(example["status"], example["body"]))
    result = await twilio.send(_text())
    assert result == SendResult(provider_message_id="SMb3e9a1c7f5d2b8e4a0c6f9d3b1e7a5c2")


@pytest.mark.parametrize(
    "reply",
    [
        Reply(201, {"status": "queued"}),
        Reply(201, {"sid": ""}),
        Reply(201, {"sid": 42}),
        Reply(201, [{"sid": "SMx"}]),
        Reply(201, b"<html>created</html>", {"Content-Type": "text/html"}),
        Reply(200),
    ],
)
async def test_success_without_sid_is_unknown_outcome(twilio: _Twilio, reply: Reply) -> None:
    twilio.server.script(reply)
    error = await twilio.fail(_text())
    assert error.error_class is ErrorClass.UNKNOWN_OUTCOME
    assert error.code == "unknown_outcome"
    assert error.http_status == reply.status
    assert not error.retryable


# --------------------------------------------------------------------------------------------------
# Twilio errors


@pytest.mark.parametrize(
    ("name", "error_class"),
    [
        ("twilio_send_error_21211.json", ErrorClass.INVALID_RECIPIENT),
        ("twilio_send_error_63016_sync.json", ErrorClass.NEEDS_TEMPLATE),
    ],
)
async def test_example_errors(twilio: _Twilio, name: str, error_class: ErrorClass) -> None:
    example = _example(name)
    twilio.server.script(Reply(example["status"], example["body"]))
    error = await twilio.fail(_text())
    assert error.error_class is error_class
    assert error.code == str(example["body"]["code"])
    assert error.title == example["body"]["message"]
    assert error.http_status == 400
    assert error.retry_after is None
    assert not error.retryable
    assert twilio.server.accepted == []


@pytest.mark.parametrize(
    ("code", "error_class"),
    [(21211, ErrorClass.INVALID_RECIPIENT), (63016, ErrorClass.NEEDS_TEMPLATE), (21610, ErrorClass.OPT_OUT)],
)
async def test_fake_told_to_fail(twilio: _Twilio, code: int, error_class: ErrorClass) -> None:
    twilio.fake.fail_next(code)
    error = await twilio.fail(_text())
    assert (error.error_class, error.code, error.http_status) == (error_class, str(code), 400)
    assert twilio.fake.created == []
    # Only the next create fails.
    assert (await twilio.send(_text())).provider_message_id == twilio.fake.created[0].sid


async def test_invalid_recipient_from_the_fake_itself(twilio: _Twilio) -> None:
    error = await twilio.fail(OutboundMessage(message_id=MESSAGE_ID, to="55119876x", text="oi"))
    assert (error.error_class, error.code) == (ErrorClass.INVALID_RECIPIENT, "21211")
    assert error.title.startswith("Invalid 'To' Phone Number")


async def test_wrong_auth_token_pauses_the_channel(twilio: _Twilio) -> None:
    error = await twilio.fail(_text(), _account(twilio.server.base_url, auth_token="wrong"))
    assert (error.error_class, error.code, error.http_status) == (ErrorClass.PAUSE_CHANNEL, "20003", 401)
    assert error.title == "Authenticate"


async def test_401_without_body_pauses_the_channel(twilio: _Twilio) -> None:
    twilio.server.script(Reply(401))
    error = await twilio.fail(_text())
    assert (error.error_class, error.code, error.http_status) == (ErrorClass.PAUSE_CHANNEL, "http_401", 401)


async def test_missing_credentials_send_nothing(twilio: _Twilio) -> None:
    for account in (
        _account(twilio.server.base_url, auth_token=None),
        _account(twilio.server.base_url, account_sid=None),
    ):
        error = await twilio.fail(_text(), account)
        assert (error.error_class, error.code) == (ErrorClass.PAUSE_CHANNEL, "missing_credentials")
    assert twilio.server.requests == []


async def test_429_with_retry_after(twilio: _Twilio) -> None:
    twilio.server.script(Reply(429, error_body(20429, 429), {"Retry-After": "3"}))
    error = await twilio.fail(_text())
    assert (error.error_class, error.code, error.http_status) == (ErrorClass.RETRY, "20429", 429)
    assert error.retry_after == 3.0
    assert error.retryable


async def test_429_without_body(twilio: _Twilio) -> None:
    twilio.server.script(Reply(429, headers={"Retry-After": "3"}))
    error = await twilio.fail(_text())
    assert (error.error_class, error.code, error.retry_after) == (ErrorClass.RETRY, "http_429", 3.0)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_without_body_retry(twilio: _Twilio, status: int) -> None:
    twilio.server.script(Reply(status))
    error = await twilio.fail(_text())
    assert (error.error_class, error.code, error.http_status) == (ErrorClass.RETRY, f"http_{status}", status)
    assert error.retryable


async def test_server_error_with_an_unknown_code_still_retries(twilio: _Twilio) -> None:
    twilio.server.script(Reply(503, error_body(20503, 503, "Service Unavailable")))
    error = await twilio.fail(_text())
    assert (error.error_class, error.code, error.title) == (ErrorClass.RETRY, "20503", "Service Unavailable")


async def test_unknown_code_on_a_400_is_fix_request(twilio: _Twilio) -> None:
    twilio.server.script(Reply(400, error_body(29999, 400, "Something new")))
    error = await twilio.fail(_text())
    assert (error.error_class, error.code, error.title) == (ErrorClass.FIX_REQUEST, "29999", "Something new")


async def test_code_given_as_a_string(twilio: _Twilio) -> None:
    twilio.server.script(Reply(400, {"code": "63016", "message": "outside the window", "status": 400}))
    error = await twilio.fail(_text())
    assert (error.error_class, error.code) == (ErrorClass.NEEDS_TEMPLATE, "63016")


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(502, ErrorClass.RETRY), (400, ErrorClass.FIX_REQUEST), (403, ErrorClass.PAUSE_CHANNEL)],
)
async def test_non_json_error_body(twilio: _Twilio, status: int, error_class: ErrorClass) -> None:
    twilio.server.script(
        Reply(status, b"<html><body>Bad Gateway</body></html>", {"Content-Type": "text/html"})
    )
    error = await twilio.fail(_text())
    assert (error.error_class, error.code, error.http_status) == (error_class, f"http_{status}", status)
    assert error.title.startswith(f"HTTP {status}")


@pytest.mark.parametrize(
    "message",
    [
        OutboundMessage(message_id=MESSAGE_ID, to="5511987654321"),
        OutboundMessage(
            message_id=MESSAGE_ID, to="5511987654321", text="oi", template=TemplateContent("HXabc")
        ),
    ],
)
async def test_not_exactly_one_content_sends_nothing(twilio: _Twilio, message: OutboundMessage) -> None:
    error = await twilio.fail(message)
    assert (error.error_class, error.code) == (ErrorClass.FIX_REQUEST, "invalid_message")
    assert twilio.server.requests == []


# --------------------------------------------------------------------------------------------------
# Transport faults


async def test_reset_after_sending_is_unknown_outcome(twilio: _Twilio) -> None:
    twilio.server.script(Fault.RESET)
    error = await twilio.fail(_text())
    # The request was written before the reset: from here it cannot be told from a lost answer.
    assert (error.error_class, error.code) == (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")
    assert not error.retryable
    assert len(twilio.server.requests) == 1
    assert twilio.server.accepted == []
    assert twilio.fake.created == []


async def test_timeout_is_unknown_outcome(twilio: _Twilio) -> None:
    twilio.server.script(Fault.TIMEOUT)
    error = await twilio.fail(_text())
    assert (error.error_class, error.code) == (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")
    assert twilio.server.accepted == []


async def test_lost_answer_is_unknown_outcome_and_the_message_was_accepted_once(twilio: _Twilio) -> None:
    twilio.server.script(Fault.LOST_ANSWER)
    error = await twilio.fail(_text())
    assert (error.error_class, error.code) == (ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome")
    [accepted] = twilio.server.accepted
    assert len(twilio.fake.created) == 1
    # Its receipts will still name our message, which is how the outcome gets reconciled.
    callback = parse_qs(urlsplit(accepted.form()["StatusCallback"]).query)
    assert callback["mw_message_id"] == [MESSAGE_ID]


async def test_unreachable_provider_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with provider_client(timeout=httpx.Timeout(0.5)) as client:
        with pytest.raises(SendError) as caught:
            await twilio_api.send(client, _account(f"http://127.0.0.1:{port}"), _text())
    assert (caught.value.error_class, caught.value.code) == (ErrorClass.RETRY, "connect_error")
    assert caught.value.retryable
