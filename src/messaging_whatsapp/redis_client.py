"""The Redis client every part uses: redis-py, with commands packed by hiredis.

redis-py's asyncio connections build each command's bytes in Python, about 6 us for an XADD of
a webhook entry and most of the cost of relaying a batch of events; hiredis does it in C, ten
times faster. Replies are parsed by hiredis already once it is installed.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection


def _pack(self: AbstractConnection, *args: Any) -> list[bytes]:
    # As redis-py does: a command name given with its subcommand ("XGROUP CREATE") is two words.
    if isinstance(args[0], str) and " " in args[0]:
        args = (*args[0].split(), *args[1:])
    return [hiredis.pack_command(args)]


class _Connection(Connection):
    pack_command = _pack


class _SSLConnection(SSLConnection):
    pack_command = _pack


class _UnixConnection(UnixDomainSocketConnection):
    pack_command = _pack


_PACKED_BY_HIREDIS: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _Connection,
    SSLConnection: _SSLConnection,
    UnixDomainSocketConnection: _UnixConnection,
}


def redis_client(url: str, *, decode_responses: bool = False) -> Redis:
    """A client for `url` (redis://, rediss:// or unix://) whose commands hiredis packs."""
    pool = ConnectionPool.from_url(url, decode_responses=decode_responses)
    pool.connection_class = _PACKED_BY_HIREDIS.get(pool.connection_class, pool.connection_class)
    return Redis.from_pool(pool)
