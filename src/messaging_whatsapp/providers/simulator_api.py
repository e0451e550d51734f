"""The built-in simulator's send API, spoken like a real provider's REST API over HTTP.

    POST {api_url}/simulator/v1/{instance name}/messages
    Authorization: Bearer <the instance's webhook secret>
    {"to": "5511987654321", "message_id": "<our id>", "type": "text" | "image" | ... |
     "template" | "interactive", "text" | "media" | "template" | "buttons": ...}

answers 200 ``{"id": "SIM-…"}``; errors are ``{"error": {"code", "message"}}`` with 401 (wrong
secret), 404 (unknown instance), 422 (bad body) or 503 (a simulated outage). The simulator then
posts signed receipts, echoing ``message_id`` as ``callback_data``, to the public webhook.
"""

from __future__ import annotations

from typing import Any

import httpx

from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.http import http_error_class, json_body, request, retry_after
from messaging_whatsapp.providers.outbound import (
    ErrorClass,
    OutboundMessage,
    SenderAccount,
    SendError,
    SendResult,
)


def message_body(message: OutboundMessage) -> dict[str, Any]:
    """The JSON the simulator API takes for one message."""
    body: dict[str, Any] = {"to": message.to, "message_id": message.message_id}
    if message.media is not None:
        media = message.media
        body |= {
            "type": media.type.value,
            "media": {"url": media.url, "caption": media.caption, "filename": media.filename},
        }
    elif message.template is not None:
        template = message.template
        body |= {
            "type": "template",
            "template": {
                "name": template.name,
                "language": template.language,
                "parameters": list(template.parameters),
            },
        }
    elif message.buttons is not None:
        buttons = [{"id": button.id, "title": button.title} for button in message.buttons.buttons]
        body |= {"type": "interactive", "buttons": {"text": message.buttons.text, "buttons": buttons}}
    else:
        body |= {"type": "text", "text": message.text or ""}
    if message.reply_to is not None:
        body["reply_to"] = message.reply_to
    return body


class SimulatorApi:
    """SendProvider for the built-in simulator."""

    name: ProviderName = ProviderName.SIMULATOR

    async def send(
        self, client: httpx.AsyncClient, account: SenderAccount, message: OutboundMessage
    ) -> SendResult:
        """Send one message to the simulator; SendError (classified) when it refuses."""
        url = f"{account.api_url.rstrip('/')}/simulator/v1/{account.instance_name}/messages"
        headers = {"Authorization": f"Bearer {account.api_key or ''}"}
        response = await request(client, "POST", url, json=message_body(message), headers=headers)
        body = json_body(response)
        if response.is_success:
            message_id = body.get("id") if isinstance(body, dict) else None
            if not isinstance(message_id, str) or not message_id:
                raise SendError(
                    ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome", "simulator answered without an id"
                )
            return SendResult(provider_message_id=message_id, recipient_id=message.to)
        raise _error(response, body)


def _error(response: httpx.Response, body: Any) -> SendError:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    title = error.get("message") if isinstance(error, dict) else None
    return SendError(
        http_error_class(response.status_code),
        str(code or f"http_{response.status_code}"),
        str(title or f"HTTP {response.status_code}"),
        retry_after=retry_after(response),
        http_status=response.status_code,
    )


simulator_api = SimulatorApi()
