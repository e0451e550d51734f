"""The streams, for the operator: `stream-info`, `replay-dlq` and `purge-dlq`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from messaging_whatsapp.cli.support import JsonOption, fail, print_json, run_engine, stdout
from messaging_whatsapp.config import get_settings
from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import utcnow
from messaging_whatsapp.streams.base import StreamNames


def _streams(names: StreamNames, wanted: str | None) -> list[str]:
    """Every stream, or the one named (with or without STREAM_PREFIX)."""
    streams = names.every
    if wanted is None:
        return streams
    for stream in streams:
        if wanted in (stream, stream.removeprefix(names.prefix)):
            return [stream]
    raise fail(f"unknown stream {wanted!r}; the streams are {', '.join(streams)}")


def stream_info(
    stream: Annotated[
        str | None, typer.Option(help="Only this stream, e.g. bc:whatsapp:inbound or bc:whatsapp:dlq.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Length and pending entries of every stream (or the one named), and the DLQ."""
    streams = _streams(StreamNames(get_settings().stream_prefix), stream)

    async def work(context: EngineContext) -> list[dict[str, Any]]:
        infos = [await context.streams.info(name) for name in streams]
        now = utcnow()
        return [
            {
                "stream": info.stream,
                "length": info.length,
                "groups": [
                    {
                        "name": g.name,
                        "pending": g.pending,
                        "consumers": g.consumers,
                        "lag": g.lag,
                        # The oldest entry the group has not acknowledged, pending or unread.
                        "oldest_pending_age_seconds": (
                            None
                            if g.oldest_unacked_at is None
                            else round((now - g.oldest_unacked_at).total_seconds(), 1)
                        ),
                    }
                    for g in info.groups
                ],
            }
            for info in infos
        ]

    infos = run_engine(work)
    if as_json:
        print_json(infos)
        return
    table = Table("stream", "length", "group", "pending", "consumers", "lag", "oldest (s)")
    for info in infos:
        empty = {"name": "-", "pending": "", "consumers": "", "lag": "", "oldest_pending_age_seconds": ""}
        for group in info["groups"] or [empty]:
            table.add_row(
                info["stream"],
                str(info["length"]),
                group["name"],
                str(group["pending"]),
                str(group["consumers"]),
                "" if group["lag"] is None else str(group["lag"]),
                ""
                if group["oldest_pending_age_seconds"] is None
                else str(group["oldest_pending_age_seconds"]),
            )
    stdout.print(table)


def replay_dlq(
    limit: Annotated[int | None, typer.Option(help="Replay at most this many entries.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Move dead-lettered entries back onto the streams they came from."""

    async def work(context: EngineContext) -> int:
        return await context.streams.replay_dlq(limit)

    moved = run_engine(work)
    if as_json:
        print_json({"replayed": moved})
    else:
        stdout.print(f"replayed {moved} entr{'y' if moved == 1 else 'ies'}")


def purge_dlq(
    older_than_days: Annotated[
        float, typer.Option(help="Delete entries dead-lettered longer ago than this (0: all of them).", min=0)
    ] = 14.0,
    as_json: JsonOption = False,
) -> None:
    """Delete dead-lettered entries (raw requests: personal data). Workers delete those older than
    DLQ_RETENTION_DAYS by themselves."""

    async def work(context: EngineContext) -> int:
        return await context.streams.purge(context.names.dlq, utcnow() - timedelta(days=older_than_days))

    purged = run_engine(work)
    if as_json:
        print_json({"purged": purged})
    else:
        stdout.print(f"purged {purged} entr{'y' if purged == 1 else 'ies'} from the DLQ")
