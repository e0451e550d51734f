"""Database engine, sessions and the declarative base shared by every domain's models.

One code base runs on SQLite (embedded, WAL) and PostgreSQL (scaled); the URL alone decides.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    column,
    event,
    func,
    select,
    text,
    values,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.selectable import CTE
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


_last_id = (0, 0)


def new_id() -> str:
    """A new primary key: a UUIDv7 as text, portable across both databases.

    Time-ordered ids land at the right edge of every primary-key index instead of a random page,
    which keeps inserts cheap as tables grow (random UUIDv4 keys made batch inserts slow down
    with the table's size). Within one process they also keep creation order inside a
    millisecond (RFC 9562's monotonic random), so rows added together list in the order given.
    Formatted by hand: bulk imports make hundreds of thousands.
    """
    global _last_id
    milliseconds = time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF
    last_ms, last_random = _last_id
    if milliseconds <= last_ms and last_random < (1 << 74) - 1:
        milliseconds, random_bits = last_ms, last_random + 1
    else:
        random_bits = int.from_bytes(os.urandom(10), "big") >> 7  # 73 bits: room to count up
    _last_id = (milliseconds, random_bits)
    # 48 bits of time, version 7, 12 bits, the RFC 4122 variant, 62 bits.
    high = f"{milliseconds:012x}7{random_bits >> 62:03x}"
    low = f"{0x8000_0000_0000_0000 | random_bits & 0x3FFF_FFFF_FFFF_FFFF:016x}"
    return f"{high[:8]}-{high[8:12]}-{high[12:]}-{low[:4]}-{low[4:]}"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints the same on both."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class IdMixin:
    """A text UUID primary key."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)


class TimestampMixin:
    """Creation and last-change times."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def async_url(database_url: str) -> str:
    """Map a user-facing URL (`sqlite:///path`, `postgresql://...`) to its async driver URL."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported DATABASE_URL scheme {url.drivername!r}: use sqlite or postgresql")
    return url.render_as_string(hide_password=False)


def is_sqlite(database_url: str) -> bool:
    """True when the URL names a SQLite database."""
    return make_url(database_url).get_backend_name() == "sqlite"


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """Create the async engine; on SQLite, make the directory and turn on WAL and a busy timeout."""
    url = async_url(database_url)
    if not is_sqlite(database_url):
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        kwargs.setdefault("pool_pre_ping", True)
        # Plans cached on a connection (prepared statements, foreign-key checks) were made for the
        # tables as they were then: one made while a table was empty keeps scanning it as it grows
        # (seen in bench/: a 2 ms lookup took 900 ms). Our statements are small and fixed-shape,
        # so planning each execution costs little and always fits the data. Their data is hot
        # and on SSDs: an index lookup costs about what a sequential read does (random_page_cost
        # 1.1, the usual setting there), so a batch of ids is looked up, not the table scanned.
        kwargs.setdefault(
            "connect_args",
            {"server_settings": {"plan_cache_mode": "force_custom_plan", "random_page_cost": "1.1"}},
        )
        return create_async_engine(url, **kwargs)
    db_path = make_url(url).database
    if db_path and db_path != ":memory:":
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def session_factory(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep objects usable after commit (no lazy reloads in async code), each
    carrying `info` (Session.info) for the rules that need a process-wide resource."""
    return async_sessionmaker(engine, expire_on_commit=False, info=info or {})


def is_postgresql(session: AsyncSession) -> bool:
    """True when the session talks to PostgreSQL."""
    return session.get_bind().dialect.name == "postgresql"


async def checkpoint_sqlite(engine: AsyncEngine, *, truncate: bool = False) -> None:
    """On SQLite, copy the write-ahead log's pages into the database file now, so zeroed pages of
    deleted rows reach it: a passive checkpoint never waits (retention's batches); `truncate`
    waits for readers and then empties the log, so no old copy of a deleted row stays on disk (an
    erasure). A no-op on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return
    mode = "TRUNCATE" if truncate else "PASSIVE"
    async with engine.connect() as connection:
        await connection.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})")


async def take_sqlite_writer(session: AsyncSession) -> None:
    """On SQLite, make this transaction the one writer now, until it ends (BEGIN IMMEDIATE).

    The driver begins a transaction only at its first write, so what a transaction reads before
    that is not held: another writer may commit a change to it in between. After this, nothing
    read can change before the commit. A transaction that has written already holds the lock.
    Nothing to do on PostgreSQL.
    """
    if is_postgresql(session):
        return
    connection = await session.connection()
    driver_connection = (await connection.get_raw_connection()).driver_connection
    if driver_connection is None or driver_connection.in_transaction:
        return
    await connection.exec_driver_sql("BEGIN IMMEDIATE")


@asynccontextmanager
async def secure_deletes(connection: AsyncConnection) -> AsyncIterator[None]:
    """On SQLite, overwrite with zeros what the statements inside delete (PRAGMA secure_delete), so
    deleted personal data does not linger in the file's free space; the connection's own setting
    is restored after (pooled connections serve the hot paths, where zeroing costs I/O). Nothing
    to do on PostgreSQL, whose deleted rows stay until (auto)vacuum reclaims their space."""
    if connection.dialect.name != "sqlite":
        yield
        return
    previous = int((await connection.exec_driver_sql("PRAGMA secure_delete")).scalar() or 0)
    await connection.exec_driver_sql("PRAGMA secure_delete = ON")
    try:
        yield
    finally:
        await connection.exec_driver_sql(f"PRAGMA secure_delete = {previous}")


def insert_for(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """A dialect-specific INSERT (PostgreSQL or SQLite) that supports ON CONFLICT clauses."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Yield a session that commits on success and rolls back on error."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# Batches vary in size, and a statement with a bound parameter per value changes shape with
# them: PostgreSQL then parses and plans hundreds of parameters for every batch (more than it
# takes to run the statement). On PostgreSQL a batch therefore travels as one array per column,
# unnested into rows, so each statement keeps one shape and is prepared once.


def _array_item(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    if isinstance(type_, NullType):
        return String()
    return Text() if isinstance(type_, JSON) else type_


def unnest_rows(columns: Sequence[tuple[str, TypeEngine[Any]]], rows: Sequence[Sequence[Any]]) -> Select[Any]:
    """PostgreSQL: SELECT the rows from unnest(one array parameter per column).

    A column with one value in every row (the batch's tenant, stage times still NULL) travels as
    one parameter instead of an array of copies: encoding and sending parameters is most of what
    a batch costs the client. The first column is always an array, so unnest has the row count.
    """
    arrays: list[tuple[str, TypeEngine[Any], Any]] = []
    constants: dict[str, Any] = {}
    for index, (name, type_) in enumerate(columns):
        values = [row[index] for row in rows]
        if isinstance(type_, JSON):
            values = [None if value is None else json.dumps(value) for value in values]
        item = _array_item(type_)
        if index > 0 and _one_value(values):
            constants[name] = bindparam(f"rows_{name}", values[0], type_=item)
        else:
            arrays.append((name, item, bindparam(f"rows_{name}", values, type_=ARRAY(item))))
    unnested = (
        func.unnest(*[array for _, _, array in arrays])
        .table_valued(*[column(name, item) for name, item, _ in arrays])
        .render_derived(with_types=False)
    )
    selected = []
    for name, type_ in columns:
        value = constants[name] if name in constants else unnested.c[name]
        selected.append((cast(value, JSON) if isinstance(type_, JSON) else value).label(name))
    return select(*selected)


def _one_value(values: Sequence[Any]) -> bool:
    first = values[0]
    return all(value is first or (type(value) is type(first) and value == first) for value in values)


# SQLite's default cap on a statement's bound variables is 32766.
SQLITE_MAX_VARIABLES = 32_000


def rows_table(
    session: AsyncSession,
    name: str,
    columns: Sequence[tuple[str, TypeEngine[Any]]],
    rows: Sequence[Sequence[Any]],
) -> CTE:
    """`rows` as a named table to join in one statement (UPDATE ... FROM), whatever their number.

    PostgreSQL gets one array per column (one statement shape for any batch); SQLite a VALUES list.
    """
    if is_postgresql(session):
        return unnest_rows(columns, rows).cte(name)
    if len(rows) * len(columns) > SQLITE_MAX_VARIABLES:
        raise ValueError(f"{len(rows)} rows of {len(columns)} columns exceed SQLite's bound-variable cap")
    return (
        values(*[column(column_name, type_) for column_name, type_ in columns], name=name)
        .data([tuple(row) for row in rows])
        .cte(name)
    )


def insert_rows(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]]
) -> tuple[postgresql.Insert | sqlite.Insert, list[dict[str, Any]] | None]:
    """An INSERT of `rows` and the parameters to execute it with (None: they are inside it)."""
    insert = insert_for(session, table)
    if not is_postgresql(session):
        return insert, rows  # executemany; SQLite prepares every statement anyway
    columns = [c for c in table.columns if c.name in rows[0]]
    source = unnest_rows(
        [(c.name, c.type) for c in columns], [[row[c.name] for c in columns] for row in rows]
    )
    return insert.from_select([c.name for c in columns], source), None


async def ensure_rows(
    session: AsyncSession, table: Table, key: Sequence[str], rows: Sequence[dict[str, Any]]
) -> dict[tuple[Any, ...], str]:
    """The id of each row's unique `key`, inserting the rows not stored yet (with a new id unless
    they carry one); stored rows are left untouched (an upsert would write a new version of each
    and re-check its foreign keys later)."""
    if not rows:
        return {}
    wanted = {tuple(row[name] for name in key): row for row in rows}
    ids = await stored_ids(session, table, key, list(wanted))
    missing = [row for row_key, row in wanted.items() if row_key not in ids]
    if missing:
        ids.update(await insert_new_rows(session, table, key, missing))
    return ids


async def insert_new_rows(
    session: AsyncSession, table: Table, key: Sequence[str], rows: Sequence[dict[str, Any]]
) -> dict[tuple[Any, ...], str]:
    """Insert rows the caller found missing (with a new id unless they carry one); returns the id of
    each row's unique `key`, the stored one where another writer inserted it meanwhile."""
    if not rows:
        return {}
    columns = [table.c[name] for name in key]
    insert, params = insert_rows(session, table, [{"id": new_id(), **row} for row in rows])
    inserted = await session.execute(
        insert.on_conflict_do_nothing(index_elements=list(key)).returning(table.c.id, *columns), params
    )
    ids = {tuple(found[1:]): found[0] for found in inserted}
    raced = [row_key for row_key in (tuple(row[name] for name in key) for row in rows) if row_key not in ids]
    if raced:
        ids.update(await stored_ids(session, table, key, raced))
    return ids


async def stored_ids(
    session: AsyncSession, table: Table, key: Sequence[str], keys: list[tuple[Any, ...]]
) -> dict[tuple[Any, ...], str]:
    """The id of each of these values of the unique `key` that is stored."""
    if not keys:
        return {}
    columns = [table.c[name] for name in key]
    wanted = rows_table(session, f"{table.name}_wanted", [(c.name, c.type) for c in columns], keys)
    query = select(table.c.id, *columns).join(wanted, and_(*[c == wanted.c[c.name] for c in columns]))
    return {tuple(found[1:]): found[0] for found in await session.execute(query)}


def one_of(session: AsyncSession, target: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """`target IN values`, as `= ANY(array)` on PostgreSQL so the statement keeps one shape."""
    if is_postgresql(session):
        array = bindparam(None, list(values), type_=ARRAY(_array_item(target.type)))
        matches: ColumnElement[bool] = target == any_(array)
        return matches
    contained: ColumnElement[bool] = target.in_(list(values))
    return contained


# Set in a session's info while generic_plans is in effect.
_GENERIC_PLANS = "generic_plans"


@asynccontextmanager
async def generic_plans(session: AsyncSession) -> AsyncIterator[None]:
    """Let PostgreSQL reuse plans for the statements inside (bulk inserts).

    Our connections plan every execution afresh (see create_engine), which also re-plans the
    foreign-key check of every inserted row: about half the cost of a bulk insert. Those checks
    are primary-key lookups, whose generic plan is always right; the setting is restored after.
    """
    if not is_postgresql(session):
        yield
        return
    await session.execute(text("SET LOCAL plan_cache_mode = auto"))
    session.info[_GENERIC_PLANS] = True
    try:
        yield
    finally:
        session.info.pop(_GENERIC_PLANS, None)
    # Restored only after success: a failed statement aborted the transaction, which takes the
    # setting with it, and a statement sent now would only hide the failure behind its own.
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


@asynccontextmanager
async def custom_plans(session: AsyncSession) -> AsyncIterator[None]:
    """Plan the statements inside for their own parameters, even within generic_plans.

    For lookups in a table that grows while a connection lives (tickets during a campaign): a
    generic plan chosen while it was small kept scanning it, 150 ms a lookup at 40,000 tickets.
    """
    if not session.info.get(_GENERIC_PLANS):
        yield
        return
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    yield
    await session.execute(text("SET LOCAL plan_cache_mode = auto"))
