"""What the operator's API answers: streams, the outbox backlog, DLQ entries, replays, workers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

# Ids one replay may name: a page of the DLQ listing and then some.
MAX_REPLAY_IDS = 1000


class GroupItem(BaseModel):
    """A consumer group of a stream."""

    name: str
    pending: int = Field(description="Entries handed to a consumer and not acknowledged yet.")
    consumers: int
    lag: int | None = Field(description="Entries not read by the group yet (None: Redis cannot say).")
    oldest_pending_age_seconds: float | None = Field(
        description="Age of the oldest entry the group has not acknowledged, pending or unread; "
        "None when it is up to date."
    )


class StreamItem(BaseModel):
    """One stream: its length, what its groups have not acknowledged and how old the oldest is."""

    name: str
    length: int
    pending: int = Field(description="Pending entries of all its groups.")
    oldest_pending_age_seconds: float | None = Field(description="The oldest of its groups' ages.")
    stale: bool = Field(description="The oldest is older than READY_MAX_PENDING_AGE_SECONDS.")
    groups: list[GroupItem]


class OutboxBacklog(BaseModel):
    """Outbox rows written and not yet relayed to their stream (each one transaction's events)."""

    count: int
    oldest_age_seconds: float | None


class StreamsReport(BaseModel):
    """Every stream of the engine, and the outbox that feeds the events stream."""

    streams: list[StreamItem]
    outbox: OutboxBacklog
    max_pending_age_seconds: float = Field(description="READY_MAX_PENDING_AGE_SECONDS (0: off).")


class DeadLetterItem(BaseModel):
    """A DLQ entry: what failed, why, where it came from and for whom."""

    id: str
    reason: str
    stream: str | None = Field(description="The stream it came from, where a replay puts it back.")
    group: str | None
    entry_id: str | None = Field(description="Its id on that stream.")
    provider: str | None
    tenant_id: str | None
    tenant_name: str | None
    instance_id: str | None
    message_id: str | None
    item: str | None = Field(description="Where in a raw request's batch the unusable item was.")
    attempts: int | None
    failed_at: datetime
    replayable: bool = Field(description="It is a DLQ record whose original a replay can put back.")


class DeadLetterPage(BaseModel):
    """A page of the DLQ, oldest first, as a replay goes; pass next_cursor as ?cursor=."""

    items: list[DeadLetterItem]
    next_cursor: str | None = None
    total: int = Field(description="Entries in the DLQ now.")


class ReplayRequest(BaseModel):
    """Which DLQ entries to replay: `ids`, or every one when left out."""

    ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_REPLAY_IDS)


class ReplayResult(BaseModel):
    """How many entries went back to their streams, and the ids asked for that are not in the DLQ."""

    replayed: int
    unknown_ids: list[str]


class WorkerItem(BaseModel):
    """An engine process and its last heartbeat."""

    id: str
    role: str = Field(description="What it was started as: all, api, webhook, worker, inbound, sender...")
    parts: list[str] = Field(
        description="What it runs: api, webhook, inbound, sender, dispatcher, scheduler."
    )
    host: str
    pid: int
    started_at: datetime
    last_heartbeat_at: datetime
    stopped_at: datetime | None = Field(description="When it stopped cleanly; a crashed one never says.")
    seconds_since_heartbeat: float
    alive: bool = Field(description="Its last heartbeat is younger than WORKER_ALIVE_SECONDS.")


class WorkersReport(BaseModel):
    """The engine's processes seen in the last hour, by role, host and pid."""

    items: list[WorkerItem]
    alive_seconds: float
