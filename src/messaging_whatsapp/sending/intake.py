"""Group commit for the send API: submissions that arrive together are stored in one transaction.

Each POST /api/v1/messages hands its submission to the process's intake and waits. While one
batch is being stored, the submissions that arrive wait for the next, so a burst of requests
costs a few set-based statements and one append to the outbound stream instead of a transaction
and an append each; a lone request is stored at once, as before. Every submission still gets its
own answer: its message, or the error that refused it. If a batch fails as a whole, each of its
submissions is tried alone, so one bad submission cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.errors import EngineError
from messaging_whatsapp.outbox.service import relay_outbox, write_outbox
from messaging_whatsapp.sending.queue import offer_messages
from messaging_whatsapp.sending.service import queue_messages
from messaging_whatsapp.sending.submissions import QueuedMessage, Submission, SubmissionResult, queued_events
from messaging_whatsapp.streams.base import StreamError

logger = logging.getLogger(__name__)

# Submissions stored per transaction at most; more wait for the next one.
MAX_BATCH = 500
# Under load (submissions arrived while a batch was stored), wait this long for more to join the
# next batch: a few milliseconds of latency for far fewer, larger transactions. A submission after
# a quiet spell is stored at once.
GATHER_SECONDS = 0.002

_Waiting = tuple[Submission, asyncio.Future[QueuedMessage]]


class MessageIntake:
    """Stores submitted messages as queued, batch by batch, and offers them to the senders."""

    def __init__(self, context: EngineContext, max_batch: int = MAX_BATCH) -> None:
        self._context = context
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._storer: asyncio.Task[None] | None = None

    async def submit(self, submission: Submission) -> QueuedMessage:
        """Queue one message; raises the EngineError that refused it."""
        future: asyncio.Future[QueuedMessage] = asyncio.get_running_loop().create_future()
        self._waiting.append((submission, future))
        if self._storer is None or self._storer.done():
            self._storer = asyncio.create_task(self._store_waiting())
        return await future

    async def close(self) -> None:
        """Let the batch being stored finish."""
        if self._storer is not None and not self._storer.done():
            await asyncio.wait([self._storer], timeout=10)

    async def _store_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            await self._store_batch(batch)
            if 0 < len(self._waiting) < self._max_batch:
                await asyncio.sleep(GATHER_SECONDS)

    async def _store_batch(self, batch: list[_Waiting]) -> None:
        """Store a batch and answer each of its submissions."""
        if len(batch) == 1:
            await self._store_alone(*batch[0])
            return
        try:
            results = await self._store([submission for submission, _ in batch])
        except Exception:
            logger.warning("a batch of %d submissions failed; storing each alone", len(batch), exc_info=True)
            for waiting in batch:
                await self._store_alone(*waiting)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)

    async def _store_alone(self, submission: Submission, future: asyncio.Future[QueuedMessage]) -> None:
        try:
            [result] = await self._store([submission])
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        _settle(future, result)

    async def _store(self, submissions: list[Submission]) -> list[SubmissionResult]:
        async with self._context.sessions() as session, session.begin():
            results = await queue_messages(session, submissions, utcnow())
            outbox = await write_outbox(session, queued_events(results), self._context.names.events)
        # Announced before the senders get them: a screen hears of the message before its ticks.
        # Stored is stored: a relay that fails leaves its row to the orphan sweep, never a retry.
        try:
            await relay_outbox(self._context, outbox)
        except Exception:
            logger.warning("queued messages' events not relayed; the outbox sweep will", exc_info=True)
        created = [
            (result.message.id, result.message.tenant_id)
            for result in results
            if isinstance(result, QueuedMessage) and result.created
        ]
        if created:
            try:
                await offer_messages(self._context, created)
            except StreamError:
                # Stored as queued: the senders' re-offer sweep picks them up when the stream is back.
                logger.warning("outbound stream unavailable; %d messages wait for the re-offer", len(created))
        return results


def _settle(future: asyncio.Future[QueuedMessage], result: SubmissionResult) -> None:
    if future.done():  # the caller went away
        return
    if isinstance(result, EngineError):
        future.set_exception(result)
    else:
        future.set_result(result)
