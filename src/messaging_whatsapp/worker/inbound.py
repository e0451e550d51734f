"""The inbound worker: reads raw webhook requests from the stream and applies them in batches.

An entry is acknowledged only after its effects are committed. A batch is applied in one
transaction; if that fails, each entry is retried alone so one bad entry cannot hold back the
rest. An entry whose body cannot be understood goes to the DLQ at once with the reason (retrying
cannot fix it); one item of a batch that cannot be (a Meta POST carries many) goes there alone,
with the raw request, the item and why, while the rest of its batch is applied. An entry that
fails for another reason is retried until it runs out of deliveries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import DataError, IntegrityError

from messaging_whatsapp import metrics
from messaging_whatsapp.alerts.signals import mark_webhooks, minute_of
from messaging_whatsapp.batch import IngestEntry
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import is_sqlite, utcnow
from messaging_whatsapp.outbox.service import relay_orphaned_outbox, relay_outbox
from messaging_whatsapp.phones import InvalidPhone, canonical_phone
from messaging_whatsapp.providers.base import PayloadError, ProviderName, WebhookRequest
from messaging_whatsapp.providers.events import InboundMessage, NormalisedEvent, Unusable
from messaging_whatsapp.providers.registry import get_provider
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.streams.base import StreamEntry, StreamError
from messaging_whatsapp.worker.ingest import IngestResult, apply_entries
from messaging_whatsapp.worker.models import ProcessedEvent

logger = logging.getLogger(__name__)

INBOUND_GROUP = "workers"
HOUSEKEEPING_SECONDS = 30.0
PROCESSED_KEYS_KEPT = timedelta(days=7)
NEVER = datetime.min.replace(tzinfo=UTC)


# SQLSTATE classes of errors in the data itself: a data exception, an integrity violation.
REFUSED_DATA_STATES = ("22", "23")


def refused_data(exc: BaseException) -> bool:
    """Whether the database refused the data itself (never storable), not the connection or the
    moment (worth retrying); looks through SQLAlchemy's and the driver's wrappers."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DataError | IntegrityError | UnicodeError):
            return True
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state[:2] in REFUSED_DATA_STATES:
            return True
        current = current.__cause__ or getattr(current, "orig", None)
    return False


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]


class UnusableEntry(ValueError):
    """The entry can never be applied (its body is not what its provider sends)."""


def consumer_name() -> str:
    """A consumer name unique to this process and loop."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A stream entry parsed: the events to apply, and the items of its batch that cannot be
    applied, each (where it is, why) for the DLQ."""

    entry: StreamEntry
    ingest: IngestEntry
    unusable: list[tuple[str, str]]


def prepare(entry: StreamEntry) -> Prepared:
    """Parse an entry's raw request into normalised events; UnusableEntry when none of it can be
    read (an unusable item of a readable batch is set aside, the rest still applies)."""
    fields = entry.fields
    try:
        provider = get_provider(ProviderName(fields["provider"]))
        request = WebhookRequest(
            body=fields["body"].encode("utf-8"),
            headers={"content-type": fields.get("content_type", "")},
            url=fields.get("url", ""),
        )
        events = provider.parse(request)
        received_at = datetime.fromisoformat(fields["received_at"])
        tenant_id, instance_id = fields["tenant_id"], fields["instance_id"]
    except PayloadError as exc:
        raise UnusableEntry(f"unusable {fields.get('provider')} payload: {exc}") from exc
    except (KeyError, ValueError) as exc:
        raise UnusableEntry(f"malformed stream entry: {exc!r}") from exc
    usable: list[NormalisedEvent] = []
    unusable: list[tuple[str, str]] = []
    for event in events:
        if isinstance(event, Unusable):
            unusable.append((event.item, event.reason))
        elif isinstance(event, InboundMessage):
            checked = _with_usable_sender(event)
            if isinstance(checked, Unusable):
                unusable.append((checked.item, checked.reason))
            else:
                usable.append(storable(checked))
        else:
            usable.append(storable(event))
    if unusable and not usable and len(events) == 1:
        # A one-event request (every gateway's): the entry itself is what cannot be applied.
        raise UnusableEntry(f"unusable {fields['provider']} payload: {unusable[0][1]}")
    ingest = IngestEntry(
        key=f"{entry.stream}:{entry.id}",
        tenant_id=tenant_id,
        instance_id=instance_id,
        received_at=received_at,
        events=usable,
    )
    return Prepared(entry, ingest, unusable)


def _with_usable_sender(message: InboundMessage) -> InboundMessage | Unusable:
    """The message as it is when its sender's phone is a number (kept as the provider wrote it: the
    contact's wa_id); a phone that is none is dropped when the provider also names the person
    otherwise (a BSUID, a LID), else the message is unusable."""
    if message.phone is None:
        return message
    try:
        canonical_phone(message.phone)
        return message
    except InvalidPhone as exc:
        if message.user_id:
            return dataclasses.replace(message, phone=None)
        return Unusable(item=f"message {message.provider_message_id}", reason=f"unusable sender phone: {exc}")


# What no database column takes: NUL (PostgreSQL refuses it) and a lone UTF-16 surrogate (not
# UTF-8 at all), both of which a JSON body can carry as escapes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """The value with every string made storable: NUL removed, lone surrogates as U+FFFD (a
    well-formed pair becomes its character). A customer's message keeps the rest of its text."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value) is None:
            return value
        return value.replace("\x00", "").encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(storable(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: storable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


@dataclass
class BatchOutcome:
    """What one pass over the stream did."""

    read: int = 0
    applied: int = 0
    dead_lettered: int = 0
    retried: int = 0
    # Unusable items of entries whose other items were applied.
    items_dead_lettered: int = 0


async def run_inbound_workers(context: EngineContext, stop: asyncio.Event) -> None:
    """This process's inbound workers until `stop` is set: WORKER_CONCURRENCY of them sharing the
    event loop on PostgreSQL, so one batch's Python work overlaps another's round trips to the
    database; one on SQLite, which has a single writer."""
    settings = context.settings
    count = 1 if is_sqlite(settings.database_url) else settings.worker_concurrency
    workers = [InboundWorker(context, housekeeping=index == 0) for index in range(count)]
    await asyncio.gather(*(worker.run(stop) for worker in workers))


class InboundWorker:
    """Consumes the inbound stream until told to stop."""

    def __init__(
        self, context: EngineContext, consumer: str | None = None, housekeeping: bool = True
    ) -> None:
        self._context = context
        self._consumer = consumer or consumer_name()
        self._stream = context.names.inbound
        self._does_housekeeping = housekeeping
        self._last_housekeeping = 0.0
        # The webhook minute this worker last stored per number: the mark is written once a
        # minute per number at most, not once per batch (alerts' webhook silence rule).
        self._marked: dict[str, datetime] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until `stop` is set; survives backend outages by waiting and retrying."""
        await self._ensure_group()
        while not stop.is_set():
            try:
                await self.run_once()
                await self._housekeeping()
            except StreamError:
                logger.warning("stream backend unavailable; retrying in 1 s", exc_info=True)
                await asyncio.sleep(1.0)
            except Exception:
                logger.exception("inbound worker batch failed; retrying in 1 s")
                await asyncio.sleep(1.0)

    async def _ensure_group(self) -> None:
        while True:
            try:
                await self._context.streams.ensure_group(self._stream, INBOUND_GROUP)
                return
            except StreamError:
                logger.warning("stream backend unavailable; retrying in 1 s")
                await asyncio.sleep(1.0)

    async def run_once(self, block_ms: int | None = None) -> BatchOutcome:
        """Read one batch and apply it."""
        settings = self._context.settings
        streams = self._context.streams
        entries = await streams.read(
            self._stream,
            INBOUND_GROUP,
            self._consumer,
            settings.worker_batch_size,
            settings.worker_block_ms if block_ms is None else block_ms,
        )
        outcome = BatchOutcome(read=len(entries))
        if not entries:
            return outcome
        prepared: list[Prepared] = []
        for entry in entries:
            try:
                prepared.append(prepare(entry))
            except UnusableEntry as exc:
                await streams.dead_letter(self._stream, INBOUND_GROUP, entry, str(exc))
                metrics.WORKER_ENTRIES.labels("dead_lettered").inc()
                outcome.dead_lettered += 1
        if prepared:
            await self._apply(prepared, outcome)
        return outcome

    async def _apply(self, prepared: list[Prepared], outcome: BatchOutcome) -> None:
        try:
            result = await self._commit([p.ingest for p in prepared])
        except Exception:
            logger.warning("batch of %d failed; applying entries one by one", len(prepared), exc_info=True)
            for one in prepared:
                await self._apply_alone(one, outcome=outcome)
            return
        await self._settle(prepared, outcome)
        outcome.applied += len(prepared)
        self._record(result)
        await relay_outbox(self._context, result.outbox)
        # Automatic replies the batch queued go to the senders now, not at the re-offer sweep.
        await offer_messages(self._context, result.offers)

    async def _settle(self, prepared: list[Prepared], outcome: BatchOutcome) -> None:
        """Acknowledge committed entries; those with unusable items leave each of them in the DLQ
        (with the raw request, the item and why) as they are acknowledged."""
        streams = self._context.streams
        await streams.ack(self._stream, INBOUND_GROUP, [p.entry.id for p in prepared if not p.unusable])
        for one in prepared:
            if not one.unusable:
                continue
            for item, reason in one.unusable:
                logger.warning("entry %s: %s goes to the DLQ: %s", one.entry.id, item, reason)
            provider = one.entry.fields.get("provider")
            errors = [(item, f"unusable {provider} item {item}: {reason}") for item, reason in one.unusable]
            await streams.dead_letter_items(self._stream, INBOUND_GROUP, one.entry, errors)
            metrics.WORKER_ENTRIES.labels("items_dead_lettered").inc(len(one.unusable))
            outcome.items_dead_lettered += len(one.unusable)

    async def _apply_alone(self, one: Prepared, outcome: BatchOutcome) -> None:
        entry = one.entry
        try:
            result = await self._commit([one.ingest])
        except Exception as exc:
            if refused_data(exc):
                # The data itself is refused: retrying cannot help, and must not hold others back.
                logger.warning("entry %s cannot be stored: %s", entry.id, exc)
                reason = f"unusable entry: the database refused its data ({_first_line(exc)})"
                await self._context.streams.dead_letter(self._stream, INBOUND_GROUP, entry, reason)
                metrics.WORKER_ENTRIES.labels("dead_lettered").inc()
                outcome.dead_lettered += 1
                return
            logger.warning("entry %s failed (delivery %d)", entry.id, entry.deliveries, exc_info=True)
            moved = await self._context.streams.fail(
                self._stream, INBOUND_GROUP, entry, f"apply failed: {exc!r}"
            )
            metrics.WORKER_ENTRIES.labels("dead_lettered" if moved else "retried").inc()
            if moved:
                outcome.dead_lettered += 1
            else:
                outcome.retried += 1
            return
        await self._settle([one], outcome)
        outcome.applied += 1
        self._record(result)
        await relay_outbox(self._context, result.outbox)
        # Automatic replies the batch queued go to the senders now, not at the re-offer sweep.
        await offer_messages(self._context, result.offers)

    async def _commit(self, entries: list[IngestEntry]) -> IngestResult:
        heard = self._heard(entries)
        async with self._context.sessions() as session, session.begin():
            result = await apply_entries(
                session, entries, self._context.names.events, self._context.settings.ai_debounce_seconds
            )
            await mark_webhooks(session, heard)
        self._marked.update(heard)
        return result

    def _heard(self, entries: list[IngestEntry]) -> dict[str, datetime]:
        """The numbers whose latest webhook here falls in a later minute than this worker stored."""
        heard: dict[str, datetime] = {}
        for entry in entries:
            minute = minute_of(entry.received_at)
            if minute > heard.get(entry.instance_id, self._marked.get(entry.instance_id, NEVER)):
                heard[entry.instance_id] = minute
        return heard

    def _record(self, result: IngestResult) -> None:
        metrics.WORKER_ENTRIES.labels("applied").inc(result.entries_applied)
        metrics.WORKER_ENTRIES.labels("already_processed").inc(result.entries_already_processed)
        for kind, count in (
            ("message_created", result.messages_created),
            ("message_duplicate", result.messages_duplicate),
            ("receipt_applied", result.receipts_applied),
            ("receipt_without_effect", result.receipts_without_effect),
            ("connection_change", result.connection_changes),
            ("opt_out", result.opt_outs),
            ("rule_fired", result.rules_fired),
        ):
            if count:
                metrics.WORKER_CHANGES.labels(kind).inc(count)
        for reason, count in result.ignored.items():
            metrics.IGNORED_EVENTS.labels(reason).inc(count)

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if not self._does_housekeeping or now - self._last_housekeeping < HOUSEKEEPING_SECONDS:
            return
        self._last_housekeeping = now
        await relay_orphaned_outbox(self._context)
        await self._context.streams.trim(self._stream)
        retention = timedelta(days=self._context.settings.dlq_retention_days)
        await self._context.streams.purge(self._context.names.dlq, utcnow() - retention)
        async with self._context.sessions() as session, session.begin():
            await session.execute(
                delete(ProcessedEvent).where(ProcessedEvent.created_at < utcnow() - PROCESSED_KEYS_KEPT)
            )
