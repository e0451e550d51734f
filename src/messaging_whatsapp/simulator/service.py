"""The built-in simulator: a WhatsApp provider that lives inside the engine.

It takes messages through its own REST API (providers/simulator_api.py speaks it), answers after a
realistic latency with an id of its own, and later posts receipts (sent, delivered, read, or a
failure) and, optionally, a customer's reply through the engine's public webhook, signed like a
real provider. Rates and delays come from the SIMULATOR_* settings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from dataclasses import dataclass

import httpx

from messaging_whatsapp import metrics
from messaging_whatsapp.config import Settings
from messaging_whatsapp.instances.resolver import InstanceResolver, ResolvedInstance
from messaging_whatsapp.providers.base import ProviderName
from messaging_whatsapp.providers.simulator import (
    SIGNATURE_HEADER,
    build_inbound_message_body,
    build_status_body,
    sign_simulator_body,
)

logger = logging.getLogger(__name__)

# The failure the simulator reports: Meta's "message undeliverable".
FAILURE = ("131026", "Message undeliverable (simulated)")
WEBHOOK_CONCURRENCY = 16
REPLIES = ("Obrigado!", "Recebi, valeu", "Pode me mandar mais detalhes?", "Ok 👍")


class SimulatorRefused(Exception):
    """The simulator's API refuses the call; `status` and `code` say how."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class SimulatedSend:
    """A message the simulator took."""

    provider_message_id: str
    instance: ResolvedInstance
    to: str
    callback_data: str | None


class Simulator:
    """Takes sends and plays their receipts back through the public webhook."""

    def __init__(
        self, settings: Settings, resolver: InstanceResolver, rng: random.Random | None = None
    ) -> None:
        self._settings = settings
        self._resolver = resolver
        self._rng = rng or random.Random()
        self._client = httpx.AsyncClient(timeout=10.0)
        # Like a provider, a bounded number of webhook deliveries at a time: a burst of sends
        # queues its receipts instead of starving the engine (often this very process).
        self._delivering = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
        self._tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Stop pending receipts and release the HTTP client."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    async def accept(
        self, instance_name: str, token: str, to: str, callback_data: str | None
    ) -> SimulatedSend:
        """Take one message after a realistic latency; its receipts follow on their own."""
        instance = await self._resolver.by_routing_key(ProviderName.SIMULATOR, instance_name)
        if instance is None:
            raise SimulatorRefused(404, "unknown_instance", f"no simulator instance named {instance_name!r}")
        if not secrets.compare_digest(token.encode(), instance.secrets.webhook_secret.encode()):
            raise SimulatorRefused(401, "unauthorized", "wrong simulator token")
        if not (to.isascii() and to.isdigit()):
            raise SimulatorRefused(422, "invalid_recipient", f"'to' must be digits, got {to!r}")
        latency = self._settings.simulator_latency_ms / 1000.0
        if latency:
            await asyncio.sleep(self._rng.uniform(latency / 2, latency * 1.5))
        send = SimulatedSend(f"SIM-{secrets.token_hex(10).upper()}", instance, to, callback_data)
        metrics.SIMULATOR_ACCEPTED.inc()
        self._write_log(send)
        if self._settings.simulator_receipts:
            self._spawn(self._play_receipts(send))
        return send

    def _write_log(self, send: SimulatedSend) -> None:
        """One line per message taken, when SIMULATOR_LOG names a file (appends survive restarts)."""
        path = self._settings.simulator_log
        if path is None:
            return
        line = {
            "id": send.provider_message_id,
            "instance": send.instance.routing_key,
            "to": send.to,
            "message_id": send.callback_data,
            "at": time.time(),
        }
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    def _spawn(self, coroutine: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _play_receipts(self, send: SimulatedSend) -> None:
        settings = self._settings
        step = settings.simulator_receipt_delay_ms / 1000.0
        name = send.instance.routing_key
        await asyncio.sleep(step)
        if self._rng.random() < settings.simulator_failure_rate:
            await self._post(
                send,
                build_status_body(
                    name, send.provider_message_id, "failed", _now(), FAILURE, send.callback_data
                ),
            )
            return
        for status in ("sent", "delivered"):
            await self._post(
                send,
                build_status_body(name, send.provider_message_id, status, _now(), None, send.callback_data),
            )
            await asyncio.sleep(step)
        if self._rng.random() < settings.simulator_read_rate:
            await self._post(
                send,
                build_status_body(name, send.provider_message_id, "read", _now(), None, send.callback_data),
            )
        if self._rng.random() < settings.simulator_reply_rate:
            await asyncio.sleep(step)
            await self.post_inbound(send.instance, send.to, self._rng.choice(REPLIES), None)

    async def post_inbound(
        self,
        instance: ResolvedInstance,
        phone: str,
        text: str,
        name: str | None,
        *,
        raise_on_failure: bool = False,
    ) -> str:
        """Post a customer's text message through the public webhook; returns its provider id."""
        message_id = f"SIM-IN-{secrets.token_hex(10).upper()}"
        body = build_inbound_message_body(instance.routing_key, message_id, phone, text, name, _now())
        delivered = await self._post_body(instance, body)
        if not delivered and raise_on_failure:
            raise OSError(
                f"the webhook at {self._settings.public_url} did not take the message; is the engine running?"
            )
        return message_id

    async def _post(self, send: SimulatedSend, body: bytes) -> None:
        await self._post_body(send.instance, body)

    async def _post_body(self, instance: ResolvedInstance, body: bytes) -> bool:
        secret = instance.secrets.webhook_secret
        url = f"{self._settings.public_url.rstrip('/')}/webhooks/simulator/{instance.id}/{secret}"
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign_simulator_body(secret, body)}
        # Like a real provider: a few tries with backoff, then give up (and say so).
        for attempt in range(4):
            try:
                async with self._delivering:
                    response = await self._client.post(url, content=body, headers=headers)
                if response.status_code < 500:
                    return response.is_success
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5 * 2**attempt)
        logger.warning("simulator could not deliver a webhook to instance %s", instance.id)
        return False


def _now() -> int:
    return int(time.time())
