"""Read receipts to the customer (the blue ticks) when the team reads a conversation, on the
providers that have them (providers/base.py ReadReceiptProvider: Meta, Evolution, WuzAPI).

Queued as a task of the API process, off the request path: the agent's call answers at once, at
most a few marks talk to providers at a time, and a provider's error is logged, never shown to
the agent (a missed blue tick loses nothing). The customer's newest inbound messages are marked;
marking one twice is harmless on every provider.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from sqlalchemy import select

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.inbox.models import Contact, Conversation, Direction, Message
from messaging_whatsapp.instances.models import WhatsAppInstance
from messaging_whatsapp.instances.service import decrypt_credentials, sender_account
from messaging_whatsapp.providers.base import GATEWAYS, ProviderName, ReadReceiptProvider
from messaging_whatsapp.providers.http import provider_client
from messaging_whatsapp.providers.registry import SENDERS

logger = logging.getLogger(__name__)

# The customer's newest messages marked at once (Meta needs only the newest of them).
MARKED_MESSAGES = 20
MARKS_IN_FLIGHT = 8
CLOSE_WAIT_S = 5.0


class ProviderReadMarks:
    """Sends read receipts for conversations the team read (inbox/readmarks.py ReadMarks)."""

    def __init__(self, context: EngineContext) -> None:
        self._context = context
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Semaphore(MARKS_IN_FLIGHT)
        self._clients: dict[bool, httpx.AsyncClient] = {}

    def conversation_read(self, tenant_id: str, conversation_id: str) -> None:
        """Queue the conversation's read receipt; returns at once."""
        task = asyncio.get_running_loop().create_task(self._mark(tenant_id, conversation_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Let the queued marks finish (a few seconds at most), then release the HTTP clients."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=CLOSE_WAIT_S)
        for task in list(self._tasks):
            task.cancel()
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def _mark(self, tenant_id: str, conversation_id: str) -> None:
        try:
            async with self._gate:
                await self._send(tenant_id, conversation_id)
        except Exception as exc:
            logger.info("read receipt for conversation %s not sent: %s", conversation_id, exc)

    async def _send(self, tenant_id: str, conversation_id: str) -> None:
        async with self._context.sessions() as session:
            found = (
                await session.execute(
                    select(WhatsAppInstance, Contact)
                    .join(Conversation, Conversation.instance_id == WhatsAppInstance.id)
                    .join(Contact, Contact.id == Conversation.contact_id)
                    .where(Conversation.id == conversation_id, Conversation.tenant_id == tenant_id)
                )
            ).one_or_none()
            if found is None:
                return
            instance, contact = found
            adapter = SENDERS[ProviderName(instance.provider)]
            if not isinstance(adapter, ReadReceiptProvider):
                return
            newest = await session.scalars(
                select(Message.provider_message_id)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.direction == Direction.INBOUND.value,
                    Message.provider_message_id.is_not(None),
                )
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(MARKED_MESSAGES)
            )
            ids = [provider_id for provider_id in newest if provider_id][::-1]
            account = sender_account(
                instance, decrypt_credentials(instance, self._context.cipher), self._context.settings
            )
        chat = contact.phone or contact.lid or contact.bsuid or ""
        if ids:
            await adapter.mark_chat_read(self._client(instance), account, chat, ids)

    def _client(self, instance: WhatsAppInstance) -> httpx.AsyncClient:
        """A gateway's address is the tenant's to give: its client refuses private addresses."""
        guarded = (
            ProviderName(instance.provider) in GATEWAYS and not self._context.settings.outbound_allow_private
        )
        client = self._clients.get(guarded)
        if client is None:
            client = self._clients[guarded] = provider_client(
                max_connections=MARKS_IN_FLIGHT, guarded=guarded
            )
        return client
