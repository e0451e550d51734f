"""Inbox list at scale: 100,000 conversations and 1,000,000 messages for one tenant (plus two other
tenants' rows), on PostgreSQL and SQLite; p50/p95 of the conversation list's first page, a page
deep in the cursor and each filter, with the query plans. `python -m bench.inbox_list` runs it
alone and records its section of docs/benchmarks.md; `make bench` runs it after the others.

Sizes can be lowered for a quick look: BENCH_INBOX_CONVERSATIONS (messages are ten per
conversation; the other tenants hold a fifth as many), BENCH_INBOX_RUNS.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import Table, event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import cpu_probe, machine, scratch_database, today
from messaging_whatsapp import migrate
from messaging_whatsapp.config import Settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import new_id, session_factory
from messaging_whatsapp.inbox import service
from messaging_whatsapp.inbox.models import (
    Conversation,
    contacts_table,
    conversations_table,
    messages_table,
    tickets_table,
)
from messaging_whatsapp.inbox.visibility import EVERYONE, Viewer
from messaging_whatsapp.instances import service as instances_service
from messaging_whatsapp.instances.schemas import InstanceBind
from messaging_whatsapp.pagination import encode_cursor
from messaging_whatsapp.tenancy import service as tenancy_service
from messaging_whatsapp.tenancy.models import User

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTION = "## Inbox list at scale"
MESSAGES_PER_CONVERSATION = 10
AGENTS = 10
OPEN_SHARE = 0.3  # of conversations with an open ticket; a third of those nobody took
CHUNK = 20_000
WORDS = 2_000
_rng = random.Random(14)
TABLES = {
    "contacts": contacts_table,
    "conversations": conversations_table,
    "tickets": tickets_table,
    "messages": messages_table,
}


@dataclass
class Timing:
    """One query's latency over the runs, and its plan."""

    name: str
    p50_ms: float
    p95_ms: float
    items: int
    plan: str = ""


@dataclass
class Seeded:
    """What the queries need to know of the seeded data."""

    tenant_id: str
    agent_id: str
    phone_fragment: str
    word: str
    rare_word: str
    matches: dict[str, int] = field(default_factory=dict)


def _vocabulary() -> list[str]:
    """Pseudo-words of Portuguese-like syllables, used with Zipf's frequencies (a few words very
    common, most rare), so trigrams spread as in real text."""
    syllables = [consonant + vowel for consonant in "bcdfgjlmnprstvxz" for vowel in "aeiou"]
    syllables += ["ão", "ões", "nh", "lh", "qu", "ar", "er", "or", "as", "os", "em", "an"]
    return ["".join(_rng.choice(syllables) for _ in range(_rng.randint(2, 4))) for _ in range(WORDS)]


VOCABULARY = _vocabulary()
ZIPF = list(itertools.accumulate(1 / rank for rank in range(1, WORDS + 1)))
# The text search's needles: a common word and a rarer one (Zipf ranks; the messages holding
# each, as a fragment of any word, are counted and shown).
NEEDLE_RANK = 150
RARE_RANK = 1_500
FIRST = ["Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabriela", "Hugo", "Isabela", "João"]
LAST = ["Silva", "Souza", "Oliveira", "Santos", "Lima", "Pereira", "Costa", "Almeida", "Ribeiro", "Gomes"]


def _row(table: Table, values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values.get(column.name) for column in table.columns)


def _phone(index: int, base: int) -> str:
    """A distinct mobile per index, its digits spread as real numbers' are (a multiplier prime to
    10^8 maps indexes one to one)."""
    return f"+55{11 + index % 80}9{(index * 48_271 + base) % 10**8:08d}"


def _tenant_rows(
    tenant_id: str, instances: list[str], agents: list[str], conversations: int, phone_base: int
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """(table name, rows) chunks: contacts, conversations, tickets and messages of one tenant."""
    now = datetime.now(UTC)
    batch: dict[str, list[tuple[Any, ...]]] = {
        "contacts": [],
        "conversations": [],
        "tickets": [],
        "messages": [],
    }
    for index in range(conversations):
        contact_id, conversation_id, ticket_id = new_id(), new_id(), new_id()
        instance_id = instances[index % len(instances)]
        last_at = now - timedelta(seconds=_rng.randint(0, 90 * 86_400))
        created = last_at - timedelta(minutes=MESSAGES_PER_CONVERSATION)
        is_open = _rng.random() < OPEN_SHARE
        assignee = None if (is_open and _rng.random() < 1 / 3) else _rng.choice(agents)
        batch["contacts"].append(
            _row(
                contacts_table,
                {
                    "id": contact_id,
                    "tenant_id": tenant_id,
                    "phone": _phone(index, phone_base),
                    "name": f"{_rng.choice(FIRST)} {_rng.choice(LAST)}",
                    "opted_out": False,
                    "named_by_team": False,
                    "messages_received": MESSAGES_PER_CONVERSATION // 2,
                    "created_at": created,
                    "updated_at": last_at,
                },
            )
        )
        batch["tickets"].append(
            _row(
                tickets_table,
                {
                    "id": ticket_id,
                    "tenant_id": tenant_id,
                    "conversation_id": conversation_id,
                    "status": "open" if is_open else "closed",
                    "source": "organic",
                    "opened_at": created,
                    "closed_at": None if is_open else last_at,
                    "close_reason": None if is_open else "inactivity",
                    "assignee_id": assignee,
                    "created_at": created,
                    "updated_at": last_at,
                },
            )
        )
        text_of_last = ""
        for number in range(MESSAGES_PER_CONVERSATION):
            inbound = number % 2 == 0
            at = created + timedelta(minutes=number + 1)
            text_of_last = " ".join(_rng.choices(VOCABULARY, cum_weights=ZIPF, k=_rng.randint(5, 12)))
            batch["messages"].append(
                _row(
                    messages_table,
                    {
                        "id": new_id(),
                        "tenant_id": tenant_id,
                        "instance_id": instance_id,
                        "conversation_id": conversation_id,
                        "contact_id": contact_id,
                        "ticket_id": ticket_id,
                        "direction": "inbound" if inbound else "outbound",
                        "sender_type": "lead" if inbound else "user",
                        "type": "text",
                        "content": text_of_last,
                        "provider_message_id": f"wamid.{uuid.uuid4().hex}",
                        "provider_timestamp": at,
                        "status": "received" if inbound else "read",
                        "status_rank": 0 if inbound else 4,
                        "previous_status_rank": 0,
                        "send_attempts": 0,
                        "created_at": at,
                        "updated_at": at,
                    },
                )
            )
        batch["conversations"].append(
            _row(
                conversations_table,
                {
                    "id": conversation_id,
                    "tenant_id": tenant_id,
                    "contact_id": contact_id,
                    "instance_id": instance_id,
                    "status": "open",
                    "unread_count": 0,
                    "last_message_at": created + timedelta(minutes=MESSAGES_PER_CONVERSATION),
                    "last_inbound_at": created + timedelta(minutes=MESSAGES_PER_CONVERSATION - 1),
                    "last_message_type": "text",
                    "last_message_direction": "outbound",
                    "last_message_preview": text_of_last[:120],
                    "open_ticket_id": ticket_id if is_open else None,
                    "assignee_id": assignee if is_open else None,
                    "created_at": created,
                    "updated_at": last_at,
                },
            )
        )
        if len(batch["messages"]) >= CHUNK or index == conversations - 1:
            for name in ("contacts", "conversations", "tickets", "messages"):
                yield name, batch[name]
                batch[name] = []


async def _tenant(settings: Settings, name: str, instances: int) -> tuple[str, list[str], list[str]]:
    """A tenant with its numbers (simulated) and agents, through the engine's own services."""
    context = await EngineContext.open(settings)
    try:
        async with context.sessions() as session, session.begin():
            tenant = await tenancy_service.create_tenant(session, name, ticket_inactivity_minutes=0)
            numbers = []
            for _ in range(instances):
                instance, _bound_url = await instances_service.bind_instance(
                    session,
                    context.cipher,
                    settings,
                    tenant.id,
                    InstanceBind(
                        provider="simulator",
                        instance_name=f"bench-{uuid.uuid4().hex[:8]}",
                        display_number=f"+55114{_rng.randint(1000000, 9999999)}",
                    ),
                )
                numbers.append(instance.id)
            agents = [
                User(
                    tenant_id=tenant.id,
                    email=f"agent{n}-{uuid.uuid4().hex[:8]}@bench.example",
                    password_hash="-",
                    role="agent",
                )
                for n in range(AGENTS)
            ]
            session.add_all(agents)
            await session.flush()
            return tenant.id, numbers, [agent.id for agent in agents]
    finally:
        await context.close()


async def _seed(settings: Settings, conversations: int) -> Seeded:
    """One tenant of `conversations`, two others of a tenth each, bulk-loaded (COPY on PostgreSQL,
    executemany in one transaction on SQLite, the FTS triggers firing)."""
    seeded: Seeded | None = None
    for index, size in enumerate((conversations, conversations // 10, conversations // 10)):
        tenant_id, instances, agents = await _tenant(settings, f"Inbox bench {index}", 2)
        rows = _tenant_rows(tenant_id, instances, agents, size, phone_base=index * 10_000_000)
        if settings.database_url.startswith("postgresql"):
            await _copy_postgres(settings.database_url, rows)
        else:
            _insert_sqlite(settings.database_url, rows)
        if seeded is None:
            fragment = _phone(size // 2, index * 10_000_000)[-6:]
            seeded = Seeded(
                tenant_id,
                agents[0],
                phone_fragment=fragment,
                word=VOCABULARY[NEEDLE_RANK],
                rare_word=VOCABULARY[RARE_RANK],
            )
    assert seeded is not None
    return seeded


async def _copy_postgres(url: str, chunks: Iterator[tuple[str, list[tuple[Any, ...]]]]) -> None:
    connection = await asyncpg.connect(url)
    try:
        for name, rows in chunks:
            table = TABLES[name]
            await connection.copy_records_to_table(
                name, records=rows, columns=[c.name for c in table.columns]
            )
    finally:
        await connection.close()


def _sqlite_value(value: Any) -> Any:
    # As SQLAlchemy stores them: naive UTC text.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


def _insert_sqlite(url: str, chunks: Iterator[tuple[str, list[tuple[Any, ...]]]]) -> None:
    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        for name, rows in chunks:
            table = TABLES[name]
            columns = [c.name for c in table.columns]
            connection.executemany(
                f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                ([_sqlite_value(v) for v in row] for row in rows),
            )
        connection.commit()
    finally:
        connection.close()


class _Capture:
    """The last SQL statement of the conversation list, for its plan."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statement: tuple[str, Any] | None = None
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM conversations" in statement and "ORDER BY conversations.last_message_at DESC" in statement:
            self.statement = (statement, parameters)


async def _measure(url: str, seeded: Seeded, runs: int) -> list[Timing]:
    """Each query `runs` times after a warm-up; p50/p95 of the service call (SQL and the items)."""
    engine = service_engine(url)
    sessions = session_factory(engine)
    capture = _Capture(engine)
    agent = Viewer(restricted=True, agent_id=seeded.agent_id)
    async with sessions() as session:
        position = (
            await session.execute(
                select(Conversation.last_message_at, Conversation.id)
                .where(Conversation.tenant_id == seeded.tenant_id)
                .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                .offset(_deep(seeded))
                .limit(1)
            )
        ).one()
    deep = encode_cursor(position.last_message_at, position.id)
    queries: dict[str, tuple[Viewer, dict[str, Any]]] = {
        "first page (all)": (EVERYONE, {}),
        "deep page (cursor at half)": (EVERYONE, {"cursor": deep}),
        "all (an agent: own and queued)": (agent, {}),
        "mine (an agent)": (agent, {"tab": service.InboxTab.MINE, "user_id": seeded.agent_id}),
        "unassigned (an agent)": (agent, {"tab": service.InboxTab.UNASSIGNED}),
        "resolved": (EVERYONE, {"status": service.ConversationState.RESOLVED}),
        "search by phone (6 digits)": (EVERYONE, {"search": seeded.phone_fragment}),
        f"search by text (a common word, in {seeded.matches[seeded.word]:,} messages)": (
            EVERYONE,
            {"search": seeded.word},
        ),
        f"search by text (a rarer word, in {seeded.matches[seeded.rare_word]:,} messages)": (
            EVERYONE,
            {"search": seeded.rare_word},
        ),
        "search by name": (EVERYONE, {"search": "Gabriela Ribeiro"}),
    }
    timings = []
    try:
        for name, (viewer, options) in queries.items():
            cursor = options.pop("cursor", None)
            narrowed = service.ConversationFilter(**options)
            samples = []
            items = 0
            for run in range(runs + 3):
                async with sessions() as session:
                    started = time.perf_counter()
                    page = await service.list_conversations(
                        session, seeded.tenant_id, cursor=cursor, limit=50, viewer=viewer, narrowed=narrowed
                    )
                    if run >= 3:
                        samples.append((time.perf_counter() - started) * 1000)
                    items = len(page.items)
            samples.sort()
            timing = Timing(name, statistics.median(samples), samples[int(len(samples) * 0.95) - 1], items)
            timing.plan = await _plan(engine, capture.statement)
            timings.append(timing)
    finally:
        await engine.dispose()
    return timings


def _deep(seeded: Seeded) -> int:
    return seeded.matches.get("conversations", 100_000) // 2


def service_engine(url: str) -> AsyncEngine:
    """The engine as the API opens it."""
    from messaging_whatsapp.db import create_engine

    return create_engine(url)


async def _plan(engine: AsyncEngine, captured: tuple[str, Any] | None) -> str:
    if captured is None:
        return ""
    statement, parameters = captured
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            explain = f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}"
        else:
            explain = f"EXPLAIN QUERY PLAN {statement}"
        rows = await connection.exec_driver_sql(explain, tuple(parameters))
        lines = [" ".join(str(v) for v in row[-1:]) for row in rows]
    return "\n".join(lines)


async def run_database(kind: str, conversations: int, runs: int) -> tuple[list[Timing], float]:
    """Seed one database of `kind` (postgresql or sqlite) and measure it; returns the seed's seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "postgresql":
            with scratch_database() as url:
                return await _run(url, Path(tmp), conversations, runs)
        url = f"sqlite:///{tmp}/inbox.db"
        await asyncio.to_thread(migrate.upgrade, url)
        return await _run(url, Path(tmp), conversations, runs)


async def _run(url: str, tmp: Path, conversations: int, runs: int) -> tuple[list[Timing], float]:
    settings = Settings(_env_file=None, database_url=url, data_dir=tmp)  # type: ignore[call-arg]
    started = time.perf_counter()
    seeded = await _seed(settings, conversations)
    seeded.matches["conversations"] = conversations
    for word in (seeded.word, seeded.rare_word):
        seeded.matches[word] = await _messages_holding(url, seeded.tenant_id, word)
    engine = service_engine(url)
    async with engine.connect() as connection:
        await connection.execute(text("ANALYZE"))
        await connection.commit()
    await engine.dispose()
    seconds = time.perf_counter() - started
    return await _measure(url, seeded, runs), seconds


async def _messages_holding(url: str, tenant_id: str, word: str) -> int:
    """How many of the tenant's messages hold `word` (what the text search must look at)."""
    engine = service_engine(url)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                select(func.count()).where(
                    messages_table.c.tenant_id == tenant_id, messages_table.c.content.ilike(f"%{word}%")
                )
            )
    finally:
        await engine.dispose()
    return int(found or 0)


def record(
    results: dict[str, tuple[list[Timing], float]], conversations: int, runs: int, probe: float
) -> None:
    """Write (or replace) this benchmark's section of docs/benchmarks.md."""
    rows = []
    names = [timing.name for timing in results["postgresql"][0]]
    for index, name in enumerate(names):
        pg, lite = results["postgresql"][0][index], results["sqlite"][0][index]
        rows.append(
            f"| {name} | {pg.items} | {pg.p50_ms:.1f} | {pg.p95_ms:.1f} | "
            f"{lite.p50_ms:.1f} | {lite.p95_ms:.1f} |"
        )
    plans = "\n\n".join(
        f"{kind}, {timing.name}:\n\n```\n{timing.plan}\n```"
        for kind in ("postgresql", "sqlite")
        for timing in results[kind][0]
    )
    section = f"""{SECTION}

Run with `python -m bench.inbox_list` (part of `make bench`). Machine: {machine()}; date {today()};
speed probe {probe:,.0f} ms (see above). {conversations:,} conversations and
{conversations * MESSAGES_PER_CONVERSATION:,} messages for one tenant, and two other tenants with a
tenth of that each, bulk-loaded (PostgreSQL seeded in {results["postgresql"][1]:.0f} s, SQLite in
{results["sqlite"][1]:.0f} s with its full-text triggers firing); {OPEN_SHARE:.0%} of conversations
with an open ticket, a third of those unassigned, the rest spread over {AGENTS} agents. Each figure
is the service call `inbox.service.list_conversations` (the SQL and the page's contacts, tickets and
assignees, 50 items) in its own session, {runs} timed calls after three warm-up ones.

| query | items | PostgreSQL p50 ms | p95 ms | SQLite p50 ms | p95 ms |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Target: p95 under 50 ms on PostgreSQL and under 100 ms on SQLite; {_verdict(results)}.

How it stays fast (migration 0019):

- The list reads `conversations` alone, in the order of one index: each conversation carries what
  the list shows of its last message (`last_message_type`, `_direction`, `_preview`) and its open
  ticket (`open_ticket_id`, `assignee_id`), written by the inbound applier, the send paths and the
  ticket changes in their own transactions. The first page and a page deep in the cursor are the
  same index range scan of `(tenant_id, last_message_at, id)` (the cursor is a row comparison the
  index serves), 51 rows read whatever the depth; Mine is a range of `(tenant_id, assignee_id,
  last_message_at, id)`; Unassigned and Resolved walk the activity index and skip the rows that do
  not fit (about 3 in 4 here, fewer in a real inbox where open tickets are the recent ones). The
  page's contacts, tickets and assignees are three primary-key lookups of 50 ids.
- An agent's Mine and Unassigned tabs are within what an agent may see by construction, so they
  skip the per-conversation visibility check; an agent's All tab keeps it (an EXISTS on the
  tickets per row, by the tickets' conversation index), which is what that line measures.
- The search reads the matches through the trigram indexes: contacts whose name or phone holds
  the fragment (pg_trgm GIN indexes on PostgreSQL, an FTS5 trigram table on SQLite), a whole phone
  in the other Brazilian form by the unique phone index, and messages whose text holds it (GIN
  trigram / FTS5 trigram). Every message holding the fragment is read (the trigram index is lossy,
  PostgreSQL rechecks each row), so the cost grows with the number of matches, not with the
  inbox's size; a fragment under three characters searches names and phones only.
- Few matches (the rarer word, a phone, a name) are unioned and joined to conversations by primary
  key, and only they are sorted. A text in 1,000 or more of the tenant's messages (a probe that
  stops counting there: a few milliseconds) is served the other way round on PostgreSQL: the
  activity index is walked and each conversation tested against the matches as hashed sets,
  until the page is full (see the common word's plan: `Index Scan Backward` with two hashed
  subplans). Joining several thousand matched conversations made PostgreSQL hash a sequential
  scan of all the tenant's conversations, and that search took 66 ms at p95 on a quiet machine;
  the walk takes about half. A text that matches nothing stays on the join (a walk would read the
  whole index for nothing). SQLite's FTS5 join is within its target either way.
- Writes: the trigram indexes make each stored message a little dearer (GIN's pending list on
  PostgreSQL; an FTS5 insert per message by trigger on SQLite); the counters' UPDATE the applier
  already ran per conversation now also sets the three preview columns. The phone's trigram
  index is on an expression (its digits): PostgreSQL's trigram indexes also answer `=`, and one
  on the bare column was chosen for the worker's lookups of contacts by phone, which made the
  apply benchmark four times slower until the index moved to the expression.
- The apply benchmark (bench/apply.py, {APPLY_EVENTS:,} events, PostgreSQL), the code before
  this change and after it in turns on one machine, events/s: {APPLY_FIGURES}.
- The machine was shared with other work during this run (see the speed probe): the p50/p95 of
  the simplest queries (well under a millisecond of SQL in their plans) are mostly Python, the
  ORM and the event loop, and move with the machine's load.

### Plans (PostgreSQL: EXPLAIN ANALYZE; SQLite: EXPLAIN QUERY PLAN)

{plans}
"""
    current = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if SECTION in current:
        start = current.index(SECTION)
        following = re.search(r"\n## ", current[start + len(SECTION) :])
        end = start + len(SECTION) + following.start() + 1 if following else len(current)
        current = current[:start] + current[end:]
    DOCS.write_text(current.rstrip("\n") + "\n\n" + section)


TARGETS_MS = {"postgresql": 50.0, "sqlite": 100.0}
# The write path's check of 2026-12-05 (a one-off comparison, as bench/run.py keeps its own).
APPLY_EVENTS = 50_000
APPLY_FIGURES = (
    "before 7,299 and 6,999, after 6,641 and 6,678 (speed probe 253 to 267 ms): about 6% fewer, "
    "the trigram index entries of each message and the conversations' second activity index; the "
    "same code moved from 5,300 to 7,300 between runs on this shared machine during the day"
)


def _verdict(results: dict[str, tuple[list[Timing], float]]) -> str:
    missed = [
        f"{kind} {timing.name} ({timing.p95_ms:.0f} ms)"
        for kind, (timings, _) in results.items()
        for timing in timings
        if timing.p95_ms >= TARGETS_MS[kind]
    ]
    return "every query within it" if not missed else "over it: " + ", ".join(missed)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main() -> None:
    """Run both databases and record the section."""
    conversations = int(os.environ.get("BENCH_INBOX_CONVERSATIONS", "100000"))
    runs = int(os.environ.get("BENCH_INBOX_RUNS", "50"))
    probe = cpu_probe()
    results = {}
    for kind in ("postgresql", "sqlite"):
        _say(f"inbox list: {kind}, {conversations:,} conversations")
        results[kind] = asyncio.run(run_database(kind, conversations, runs))
        for timing in results[kind][0]:
            figures = f"p50 {timing.p50_ms:.1f} ms, p95 {timing.p95_ms:.1f} ms ({timing.items} items)"
            _say(f"  {timing.name}: {figures}")
    record(results, conversations, runs, probe)
    _say(f"written to {DOCS}")


if __name__ == "__main__":
    main()
