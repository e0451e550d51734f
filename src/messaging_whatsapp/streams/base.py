"""The stream interface: durable, at-least-once queues with consumer groups.

Two implementations keep one contract: Redis Streams (scaled) and a queue table in the database
(embedded). Semantics follow Redis: entries are appended once and read by each consumer group;
an entry read but not acknowledged stays pending for its consumer and is reclaimed by another after
the visibility timeout; after `max_deliveries` deliveries it moves to the DLQ with its error.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StreamNames:
    """The stream names of DESIGN section 7, with the configurable prefix."""

    prefix: str = ""

    @property
    def inbound(self) -> str:
        """Raw webhook requests waiting for the worker."""
        return f"{self.prefix}bc:whatsapp:inbound"

    @property
    def outbound(self) -> str:
        """Messages waiting for the sender."""
        return f"{self.prefix}bc:whatsapp:outbound"

    @property
    def dlq(self) -> str:
        """Entries that ran out of deliveries, with their error."""
        return f"{self.prefix}bc:whatsapp:dlq"

    @property
    def events(self) -> str:
        """Events we publish for other systems."""
        return f"{self.prefix}bc:whatsapp:events"

    @property
    def materials(self) -> str:
        """Events other systems publish for us."""
        return f"{self.prefix}events:materials"

    @property
    def every(self) -> list[str]:
        """Every stream, the DLQ last (what `stream-info` and the operator's view show)."""
        return [self.inbound, self.outbound, self.events, self.materials, self.dlq]


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry as a consumer sees it: its id, its fields and how often it has been delivered."""

    stream: str
    id: str
    fields: dict[str, str]
    deliveries: int = 1


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as it lies in a stream, with when it was appended: what retention looks at."""

    id: str
    fields: dict[str, str]
    appended_at: datetime


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A consumer group's view of a stream."""

    name: str
    pending: int
    consumers: int
    lag: int | None = None
    # When the oldest entry the group has not acknowledged was appended, pending or not read yet
    # (a stopped consumer leaves entries unread); None when it is up to date.
    oldest_unacked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What `stream-info` shows for one stream."""

    stream: str
    length: int
    groups: list[GroupInfo] = field(default_factory=list)


class StreamError(RuntimeError):
    """The stream backend could not do what was asked (server down, storage error)."""


class Streams(Protocol):
    """A stream backend. Every method is safe to call from many processes at once."""

    async def append(self, stream: str, fields: dict[str, str]) -> str:
        """Durably append one entry and return its id; raises StreamError when it could not."""
        ...

    async def append_many(self, stream: str, entries: list[dict[str, str]]) -> list[str]:
        """Durably append several entries in order (one round trip where possible)."""
        ...

    async def ensure_group(self, stream: str, group: str) -> None:
        """Create the consumer group (reading from the start of the stream) if it is missing."""
        ...

    async def read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int = 0
    ) -> list[StreamEntry]:
        """Claim up to `count` entries for `consumer`: first those pending past the visibility
        timeout (reclaimed from dead consumers), then new ones, waiting up to `block_ms` for any."""
        ...

    async def ack(self, stream: str, group: str, ids: list[str]) -> None:
        """Acknowledge entries whose effects are committed; they are never delivered again."""
        ...

    async def dead_letter(self, stream: str, group: str, entry: StreamEntry, error: str) -> str:
        """Move an entry to the DLQ with its error and acknowledge it; returns the DLQ entry id."""
        ...

    async def dead_letter_items(
        self, stream: str, group: str, entry: StreamEntry, items: list[tuple[str, str]]
    ) -> list[str]:
        """Record each unusable (item, reason) of an entry whose other items are applied as its
        own DLQ entry (the whole raw request, the item, the reason) and acknowledge the entry, all
        at once: a redelivery either finds it acknowledged or records them again from scratch."""
        ...

    async def fail(self, stream: str, group: str, entry: StreamEntry, error: str) -> bool:
        """Record a failed attempt: moves the entry to the DLQ when it has used up its deliveries
        (returns True), else leaves it pending to be retried after the visibility timeout."""
        ...

    async def replay_dlq(self, limit: int | None = None) -> int:
        """Move DLQ entries back onto the streams they came from; returns how many moved."""
        ...

    async def replay_dlq_entries(self, ids: list[str]) -> list[str]:
        """Move these DLQ entries back onto the streams they came from, as replay_dlq does; returns
        the ids moved (an id that is not in the DLQ, or not a DLQ record, is left out)."""
        ...

    async def info(self, stream: str) -> StreamInfo:
        """Length and per-group pending counts of a stream, with each group's oldest unacknowledged
        entry's time."""
        ...

    async def trim(self, stream: str) -> int:
        """Drop entries every group has acknowledged; never drops a pending entry."""
        ...

    async def purge(self, stream: str, older_than: datetime) -> int:
        """Delete the stream's entries appended before `older_than` (the DLQ's retention); how many."""
        ...

    async def forget(self, stream: str, needles: Collection[str]) -> int:
        """Delete the stream's entries whose fields contain any of `needles` (a person erased at
        their request: their raw requests in the DLQ); how many."""

    async def entries_before(
        self, stream: str, before: datetime, *, after: str | None = None, count: int = 100
    ) -> list[StoredEntry]:
        """Up to `count` entries appended before `before`, oldest first, from just after the entry
        `after` (None: from the start): one page of a scan for entries to delete."""
        ...

    async def delete(self, stream: str, ids: list[str]) -> int:
        """Delete these entries, and any pending delivery of them; returns how many were there."""
        ...

    async def ping(self) -> bool:
        """True when the backend answers (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
