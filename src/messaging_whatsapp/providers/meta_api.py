"""Meta WhatsApp Cloud API sending: one Graph API call per message, its answer read and classified.

A send is ``POST {api_url}/{phone_number_id}/messages`` with a bearer token and Meta's JSON body
(FORMATS.md section 2.6). Every body carries our message id as ``biz_opaque_callback_data``: Meta
echoes it in that message's statuses, which is how a send whose answer was lost is reconciled.

Errors come back as Graph errors and are classified by their Meta code with the policy in
``providers.meta.classify_error``; transport failures are classified by ``providers.http.request``.
Requests Meta would certainly refuse (too many reply buttons, titles too long) are refused here,
before any HTTP call.
"""

from __future__ import annotations

from typing import Any

import httpx

from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.http import http_error_class, json_body, request, retry_after
from messaging_whatsapp.providers.meta import ERROR_CLASSES, classify_error
from messaging_whatsapp.providers.outbound import (
    ButtonsContent,
    ErrorClass,
    OutboundMedia,
    OutboundMediaType,
    OutboundMessage,
    RecipientKind,
    SenderAccount,
    SendError,
    SendResult,
    TemplateContent,
    recipient_kind,
)

JsonBody = dict[str, Any]

# Limits Meta documents for interactive reply buttons and for the opaque callback data.
MAX_BUTTONS = 3
MAX_BUTTON_TITLE_CHARS = 20
MAX_BUTTON_ID_CHARS = 256
MAX_CALLBACK_DATA_CHARS = 512

# Audio (and stickers, which we do not send) cannot carry a caption; Meta rejects the field.
_CAPTIONED_MEDIA = frozenset({OutboundMediaType.IMAGE, OutboundMediaType.VIDEO, OutboundMediaType.DOCUMENT})


class MetaApi:
    """The Cloud API send adapter (a SendProvider), plus read receipts for inbound messages."""

    name: ProviderName = ProviderName.META

    async def send(
        self, client: httpx.AsyncClient, account: SenderAccount, message: OutboundMessage
    ) -> SendResult:
        """Send one message; raises SendError (classified) when Meta does not take it."""
        body = message_body(message)
        response = await _post(client, account, body)
        if not response.is_success:
            raise graph_error(response)
        return _accepted(response)

    async def mark_read(
        self,
        client: httpx.AsyncClient,
        account: SenderAccount,
        provider_message_id: str,
        *,
        typing_indicator: bool = False,
    ) -> None:
        """Mark an inbound message (its wamid) as read, optionally showing "typing…" to the customer."""
        body: JsonBody = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": provider_message_id,
        }
        if typing_indicator:
            body["typing_indicator"] = {"type": "text"}
        response = await _post(client, account, body)
        # Any 2xx is taken as done: marking read is idempotent and nothing is lost if it was not.
        if not response.is_success:
            raise graph_error(response)

    async def show_reply_typing(
        self, client: httpx.AsyncClient, account: SenderAccount, chat: str, newest_inbound_id: str
    ) -> None:
        """Meta shows "typing..." (up to 25 s, or until we answer) with the message marked read."""
        await self.mark_read(client, account, newest_inbound_id, typing_indicator=True)

    async def mark_chat_read(
        self, client: httpx.AsyncClient, account: SenderAccount, chat: str, provider_message_ids: list[str]
    ) -> None:
        """Mark the person's messages read: Meta marks the newest and every earlier one with it."""
        if provider_message_ids:
            await self.mark_read(client, account, provider_message_ids[-1])


meta_api = MetaApi()


# --------------------------------------------------------------------------------------------------
# The request.


def messages_url(account: SenderAccount) -> str:
    """The messages endpoint of the account's phone number: ``{api_url}/{phone_number_id}/messages``."""
    return f"{account.api_url.rstrip('/')}/{account.phone_number_id}/messages"


async def _post(client: httpx.AsyncClient, account: SenderAccount, body: JsonBody) -> httpx.Response:
    """POST a body to the messages endpoint with the account's token (checked first)."""
    token, phone_number_id = account.access_token, account.phone_number_id
    if not token or not phone_number_id or not phone_number_id.isdigit():
        # Not a property of this message: the channel is misconfigured and every send would fail.
        raise SendError(
            ErrorClass.PAUSE_CHANNEL,
            "missing_credentials",
            "Meta account needs an access token and a numeric phone_number_id",
        )
    headers = {"Authorization": f"Bearer {token}"}
    return await request(client, "POST", messages_url(account), json=body, headers=headers)


def message_body(message: OutboundMessage) -> JsonBody:
    """The Graph API JSON body for one message; SendError(FIX_REQUEST) when Meta would refuse it."""
    kind, content = _content(message)
    body: JsonBody = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if recipient_kind(message.to) is RecipientKind.BSUID:
        # A username user's phone may be unknown: Meta delivers to the business-scoped user id.
        body["recipient"] = message.to
    else:
        body["to"] = _recipient(message.to)
    body.update({"type": kind, kind: content})
    if message.reply_to:
        body["context"] = {"message_id": message.reply_to}
    body["biz_opaque_callback_data"] = _callback_data(message.message_id)
    return body


def _content(message: OutboundMessage) -> tuple[str, JsonBody]:
    """The message type and its object, from the one content the message carries."""
    contents = [message.text, message.media, message.template, message.buttons]
    if sum(content is not None for content in contents) != 1:
        raise _refused("invalid_message", "exactly one of text, media, template or buttons must be set")
    if message.text is not None:
        return "text", {"preview_url": False, "body": message.text}
    if message.media is not None:
        return message.media.type.value, _media(message.media)
    if message.template is not None:
        return "template", _template(message.template)
    assert message.buttons is not None
    return "interactive", _buttons(message.buttons)


def _recipient(to: str) -> str:
    """The recipient as digits; a leading '+' is tolerated, anything else is a bad request."""
    digits = to.removeprefix("+")
    if not digits.isdigit():
        raise _refused("invalid_recipient_format", f"recipient must be E.164 digits, got {to!r}")
    return digits


def _callback_data(message_id: str) -> str:
    """Our message id as Meta's biz_opaque_callback_data (at most 512 characters)."""
    if not message_id or len(message_id) > MAX_CALLBACK_DATA_CHARS:
        raise _refused("invalid_message_id", f"message id must be 1 to {MAX_CALLBACK_DATA_CHARS} characters")
    return message_id


def _media(media: OutboundMedia) -> JsonBody:
    """A media object by link, with a caption where Meta allows one and a file name for documents."""
    content: JsonBody = {"link": media.url}
    if media.caption and media.type in _CAPTIONED_MEDIA:
        content["caption"] = media.caption
    if media.filename and media.type is OutboundMediaType.DOCUMENT:
        content["filename"] = media.filename
    return content


def _template(template: TemplateContent) -> JsonBody:
    """A template by name and language, with its body parameters as text parameters."""
    content: JsonBody = {"name": template.name, "language": {"code": template.language}}
    if template.parameters:
        parameters = [{"type": "text", "text": value} for value in template.parameters]
        content["components"] = [{"type": "body", "parameters": parameters}]
    return content


def _buttons(buttons: ButtonsContent) -> JsonBody:
    """An interactive reply-buttons object, after checking Meta's button limits."""
    _check_buttons(buttons)
    return {
        "type": "button",
        "body": {"text": buttons.text},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": button.id, "title": button.title}}
                for button in buttons.buttons
            ]
        },
    }


def _check_buttons(buttons: ButtonsContent) -> None:
    """Refuse what Meta would refuse: 1 to 3 buttons, unique titles of 1 to 20 chars, ids of 1 to 256."""
    count = len(buttons.buttons)
    if not 1 <= count <= MAX_BUTTONS:
        raise _refused("too_many_buttons", f"reply buttons must be 1 to {MAX_BUTTONS}, got {count}")
    titles = [button.title for button in buttons.buttons]
    for title in titles:
        if not 1 <= len(title) <= MAX_BUTTON_TITLE_CHARS:
            raise _refused(
                "button_title_too_long",
                f"button titles must be 1 to {MAX_BUTTON_TITLE_CHARS} characters, got {title!r}",
            )
    if len(set(titles)) != count:
        raise _refused("duplicate_button_title", "button titles must be unique within the message")
    for button in buttons.buttons:
        if not 1 <= len(button.id) <= MAX_BUTTON_ID_CHARS:
            raise _refused("invalid_button_id", f"button ids must be 1 to {MAX_BUTTON_ID_CHARS} characters")


def _refused(code: str, title: str) -> SendError:
    """A request refused before sending: fixing the payload is the only way forward."""
    return SendError(ErrorClass.FIX_REQUEST, code, title)


# --------------------------------------------------------------------------------------------------
# The answer.


def _accepted(response: httpx.Response) -> SendResult:
    """The SendResult of a 2xx answer; without a message id the outcome is unknown."""
    body = json_body(response)
    message_id = _first(body, "messages", "id")
    if message_id is None:
        # Meta answered 2xx, so it may well have taken the message: only its statuses can tell.
        raise SendError(
            ErrorClass.UNKNOWN_OUTCOME,
            "unknown_outcome",
            f"HTTP {response.status_code} without a message id",
            http_status=response.status_code,
        )
    return SendResult(provider_message_id=message_id, recipient_id=_first(body, "contacts", "wa_id"))


def _first(body: Any, list_key: str, field: str) -> str | None:
    """``body[list_key][0][field]`` when it is a non-empty string, else None."""
    items = body.get(list_key) if isinstance(body, dict) else None
    first = items[0] if isinstance(items, list) and items else None
    value = first.get(field) if isinstance(first, dict) else None
    return value if isinstance(value, str) and value else None


def graph_error(response: httpx.Response) -> SendError:
    """The classified SendError for a non-2xx answer, from its Graph error or else its HTTP status."""
    status = response.status_code
    wait = retry_after(response)
    parsed = _graph_error_fields(json_body(response))
    if parsed is None:
        title = f"HTTP {status} without a Graph error"
        return SendError(
            http_error_class(status), f"http_{status}", title, retry_after=wait, http_status=status
        )
    code, title = parsed
    # A code outside our policy says less than the HTTP status does (401/403: the token; 429/5xx:
    # transient); for other statuses http_error_class gives fix_request, the policy's own default.
    error_class = classify_error(code) if code in ERROR_CLASSES else http_error_class(status)
    return SendError(error_class, code, title, retry_after=wait, http_status=status)


def _graph_error_fields(body: Any) -> tuple[str, str] | None:
    """(code, title) of a Graph error body ``{"error": {"code", "message", "error_data"}}``, or None."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    if isinstance(code, bool) or not isinstance(code, int | str) or not str(code).strip().isdigit():
        return None
    code = str(code).strip()
    message = error.get("message")
    title = message if isinstance(message, str) and message else f"Graph error {code}"
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    if isinstance(details, str) and details:
        title = f"{title} ({details})"
    return code, title
