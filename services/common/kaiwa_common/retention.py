"""Pruning of the bookkeeping rows that only matter for a while: the event ids a consumer
has applied (processed_events) and the request ids a client may retry (request_ids).

An event can only come back while its stream still holds it (STREAM_MAX_AGE), and a client
retries within minutes, so rows older than the retention (KAIWA_RETENTION_DAYS, at least the
stream's age) can never be asked about again. Dead letters are kept: an operator reads them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import asyncpg

from .events import STREAM_MAX_AGE
from .loops import every

log = logging.getLogger("kaiwa.retention")

BATCH = 5000
PRUNABLE = {"processed_events": "processed_at", "request_ids": "created_at"}


def retention_period(days: float) -> timedelta:
    """The configured retention, never shorter than a stream keeps an event."""
    return max(timedelta(days=days), STREAM_MAX_AGE)


async def prune_table(pool: asyncpg.Pool, table: str, keep: timedelta) -> int:
    """Delete the rows of `table` older than `keep`, in short batches (no long lock)."""
    column = PRUNABLE[table]
    removed = 0
    while True:
        status = await pool.execute(
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM {table} WHERE {column} < now() - $1::interval LIMIT {BATCH}))",
            keep,
        )
        count = int(status.rsplit(" ", 1)[1])
        removed += count
        if count < BATCH:
            return removed


async def prune_once(pool: asyncpg.Pool, keep: timedelta) -> dict[str, int]:
    removed = {table: await prune_table(pool, table, keep) for table in PRUNABLE}
    if any(removed.values()):
        log.info("pruned bookkeeping rows", extra={"fields": removed})
    return removed


async def run_pruning(pool: asyncpg.Pool, keep: timedelta, interval: float, stop: asyncio.Event) -> None:
    await every(interval, stop, lambda: prune_once(pool, keep), "retention")
