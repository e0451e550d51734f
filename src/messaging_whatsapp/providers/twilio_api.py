"""Twilio WhatsApp sending: one Programmable Messaging ``Messages.json`` create per outbound message.

The request is a form post with HTTP Basic ``AccountSid:AuthToken`` (FORMATS.md section 5.4). Free-form
text and media go in ``Body``/``MediaUrl`` (inside the 24 h window); templates are Content API
templates named by their ``ContentSid`` (HX...), with ``ContentVariables`` as a JSON string. Twilio has
no raw reply buttons outside Content templates, so buttons go as numbered text, and no parameter for a
quoted reply, so ``reply_to`` is not sent.

Our own message id rides along as ``mw_message_id`` in the ``StatusCallback`` URL, so every status
callback names the message it belongs to even when the send's answer was lost (an unknown outcome).
Errors are classified by Twilio's error code (``classify_error``), else by the HTTP status.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.http import http_error_class, json_body, request, retry_after
from messaging_whatsapp.providers.outbound import (
    ErrorClass,
    OutboundMessage,
    RecipientKind,
    SenderAccount,
    SendError,
    SendResult,
    recipient_kind,
)
from messaging_whatsapp.providers.twilio import CALLBACK_ID_PARAM, ERROR_CLASSES, classify_error

API_VERSION = "2010-04-01"
_CHANNEL_PREFIX = "whatsapp:"

Form = dict[str, str]


def messages_url(account: SenderAccount) -> str:
    """The account's Messages.json create URL under the API base."""
    sid = quote(account.account_sid or "", safe="")
    return f"{account.api_url.rstrip('/')}/{API_VERSION}/Accounts/{sid}/Messages.json"


def status_callback(url: str, message_id: str) -> str:
    """The StatusCallback URL with ``mw_message_id`` appended, any existing query kept as it is."""
    parts = urlsplit(url)
    param = f"{CALLBACK_ID_PARAM}={quote(message_id, safe='')}"
    query = f"{parts.query}&{param}" if parts.query else param
    return urlunsplit(parts._replace(query=query))


def _address(number: str) -> str:
    """``whatsapp:+<digits>`` for a number given with or without its '+'."""
    return f"{_CHANNEL_PREFIX}+{number.strip().lstrip('+')}"


def _content_count(message: OutboundMessage) -> int:
    contents = (message.text, message.media, message.template, message.buttons)
    return sum(content is not None for content in contents)


def _template_variables(parameters: tuple[str, ...]) -> str:
    """The ContentVariables JSON string: ``{"1": p1, "2": p2, ...}``."""
    variables = {str(index): value for index, value in enumerate(parameters, start=1)}
    return json.dumps(variables, ensure_ascii=False, separators=(",", ":"))


def content_fields(message: OutboundMessage) -> Form:
    """The form fields for the message's one content: Body, MediaUrl, or ContentSid(+Variables)."""
    if _content_count(message) != 1:
        raise SendError(
            ErrorClass.FIX_REQUEST,
            "invalid_message",
            "exactly one of text, media, template or buttons must be set",
        )
    if message.text is not None:
        return {"Body": message.text}
    if message.media is not None:
        # Twilio takes the media type from the file's Content-Type and the name from its URL.
        fields = {"MediaUrl": message.media.url}
        if message.media.caption:
            fields["Body"] = message.media.caption
        return fields
    if message.template is not None:
        # The language is part of the Content template itself.
        fields = {"ContentSid": message.template.name}
        if message.template.parameters:
            fields["ContentVariables"] = _template_variables(message.template.parameters)
        return fields
    assert message.buttons is not None
    return {"Body": message.buttons.as_numbered_text()}


def build_form(account: SenderAccount, message: OutboundMessage) -> Form:
    """The whole form for one message: To, From, its content and the StatusCallback."""
    if recipient_kind(message.to) is not RecipientKind.PHONE:
        # The API refuses this before queueing (sending/rules.py); kept here for any other caller.
        raise SendError(
            ErrorClass.INVALID_RECIPIENT, "recipient_unreachable", "Twilio sends to phone numbers only"
        )
    form: Form = {"To": _address(message.to), "From": _address(account.display_number)}
    form.update(content_fields(message))
    if account.status_callback_url:
        form["StatusCallback"] = status_callback(account.status_callback_url, message.message_id)
    return form


def _credentials(account: SenderAccount) -> tuple[str, str]:
    if not account.account_sid or not account.auth_token:
        raise SendError(
            ErrorClass.PAUSE_CHANNEL, "missing_credentials", "the Twilio account SID or auth token is missing"
        )
    return account.account_sid, account.auth_token


def _error_code(body: Any) -> str | None:
    """Twilio's error code from a REST error body, as a string; None when there is none."""
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, int) and not isinstance(code, bool):
        return str(code)
    if isinstance(code, str) and code.strip().isdigit():
        return code.strip()
    return None


def _error_title(body: Any, response: httpx.Response) -> str:
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str) and message.strip():
        return message
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


def error_for(response: httpx.Response) -> SendError:
    """Classify a non-2xx answer: by Twilio's code when we know it, else by the HTTP status."""
    body = json_body(response)
    code = _error_code(body)
    if code is not None and code in ERROR_CLASSES:
        error_class = classify_error(code)
    else:
        # An unknown or missing code: the status says more (429/5xx retry, 401/403 pause, else fix).
        error_class = http_error_class(response.status_code)
    return SendError(
        error_class,
        code or f"http_{response.status_code}",
        _error_title(body, response),
        retry_after=retry_after(response),
        http_status=response.status_code,
    )


def result_for(response: httpx.Response) -> SendResult:
    """The SendResult of a 2xx answer; an answer without a ``sid`` is an unknown outcome."""
    body = json_body(response)
    sid = body.get("sid") if isinstance(body, dict) else None
    if not isinstance(sid, str) or not sid.strip():
        raise SendError(
            ErrorClass.UNKNOWN_OUTCOME,
            "unknown_outcome",
            f"Twilio answered {response.status_code} without a message sid",
            http_status=response.status_code,
        )
    return SendResult(provider_message_id=sid.strip())


class TwilioApi:
    """SendProvider for Twilio's WhatsApp channel (Programmable Messaging REST API)."""

    name: ProviderName = ProviderName.TWILIO

    async def send(
        self, client: httpx.AsyncClient, account: SenderAccount, message: OutboundMessage
    ) -> SendResult:
        """Create the message at Twilio; raises a classified SendError when Twilio does not take it."""
        auth = _credentials(account)
        form = build_form(account, message)
        response = await request(client, "POST", messages_url(account), data=form, auth=auth)
        if response.is_success:
            return result_for(response)
        raise error_for(response)


twilio_api = TwilioApi()
