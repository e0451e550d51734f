"""The chat model: any OpenAI-compatible server (`POST {base}/chat/completions`, bearer key),
called on our HTTP transport, so a server a tenant gave is reached only on public addresses, as its
gateways are. (The `openai` package runs on its own HTTP stack, httpx2, where that transport cannot
be plugged in; one JSON POST does not need it.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from messaging_whatsapp.config import Settings
from messaging_whatsapp.errors import UpstreamError
from messaging_whatsapp.providers.http import ProviderClient
from messaging_whatsapp.providers.transport import LeanTransport

# Answers are short; a long one is cut here and split for WhatsApp (assistant/splitting.py).
MAX_ANSWER_TOKENS = 700
# Low: the same question should get the same answer, taken from the sources.
TEMPERATURE = 0.2


class AiFailed(UpstreamError):
    """The chat endpoint failed, refused, or answered nothing."""

    code = "ai_failed"


@dataclass(frozen=True)
class Endpoint:
    """Where answers come from: an OpenAI-compatible base URL (".../v1"), its key and model;
    `tenant_given` when a tenant set it (then private addresses are refused)."""

    base_url: str
    api_key: str | None
    model: str
    tenant_given: bool

    @property
    def url(self) -> str:
        """The chat completions address."""
        return self.base_url.rstrip("/") + "/chat/completions"


async def complete(endpoint: Endpoint, messages: list[dict[str, str]], settings: Settings) -> str:
    """The model's answer to `messages` (AiFailed when there is none)."""
    guarded = endpoint.tenant_given and not settings.outbound_allow_private
    body = {
        "model": endpoint.model,
        "messages": messages,
        "temperature": TEMPERATURE,
        "max_tokens": MAX_ANSWER_TOKENS,
    }
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    transport = LeanTransport(max_connections=2, guarded=guarded)
    try:
        # A client per answer: answers are seconds apart, and a tenant's server is its own.
        async with ProviderClient(transport=transport, timeout=settings.ai_timeout_seconds) as client:
            response = await client.post(endpoint.url, json=body, headers=headers)
    except httpx.HTTPError as error:
        raise AiFailed(f"The AI endpoint could not be reached ({type(error).__name__}).") from error
    if response.status_code != 200:
        raise AiFailed(f"The AI endpoint answered {response.status_code}.")
    return _content(response)


def _content(response: httpx.Response) -> str:
    try:
        answer: Any = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise AiFailed("The AI endpoint answered no chat completion.") from error
    if not isinstance(answer, str) or not answer.strip():
        raise AiFailed("The AI endpoint answered nothing.")
    return answer
