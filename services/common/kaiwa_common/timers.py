"""Timers as database rows with a deadline, fired once by whichever replica claims them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

import asyncpg
from opentelemetry import trace

from .telemetry import tracer

log = logging.getLogger("kaiwa.timers")


@dataclass(frozen=True)
class Timer:
    id: int
    tenant: str
    kind: str
    key: str
    due_at: datetime
    payload: dict
    attempts: int


TimerHandler = Callable[[Timer, asyncpg.Connection], Awaitable[None]]


async def schedule(
    conn: asyncpg.Connection,
    tenant: str,
    kind: str,
    key: str,
    due_at: datetime | None = None,
    *,
    delay: float | None = None,
    payload: dict | None = None,
) -> None:
    """Create or move the tenant's (kind, key) timer."""
    if due_at is None:
        due_at = datetime.now(timezone.utc) + timedelta(seconds=delay or 0)
    await conn.execute(
        "INSERT INTO timers (tenant, kind, key, due_at, payload) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (tenant, kind, key) DO UPDATE SET due_at = EXCLUDED.due_at, payload = EXCLUDED.payload, "
        "attempts = 0",
        tenant,
        kind,
        key,
        due_at,
        payload or {},
    )


async def cancel(conn: asyncpg.Connection, tenant: str, kind: str, key: str) -> bool:
    return (
        await conn.fetchval("DELETE FROM timers WHERE tenant = $1 AND kind = $2 AND key = $3 RETURNING true", tenant, kind, key)
        or False
    )


class TimerRunner:
    def __init__(self, pool: asyncpg.Pool, handlers: dict[str, TimerHandler], poll_interval: float = 0.2, batch: int = 50):
        self.pool = pool
        self.handlers = handlers
        self.poll_interval = poll_interval
        self.batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.0
        while not stop.is_set():
            try:
                fired = await self.fire_due()
                backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: back off instead of hammering it
                backoff = min(max(backoff * 2, self.poll_interval), 2)
                log.warning("timer loop error, retrying", extra={"fields": {"error": repr(exc), "retry_in": backoff}})
                fired = 0
            if fired < self.batch:
                try:
                    await asyncio.wait_for(stop.wait(), max(self.poll_interval, backoff))
                except asyncio.TimeoutError:
                    pass

    async def fire_due(self) -> int:
        """Fire up to `batch` due timers, each in a transaction of its own: a handler that
        locks rows (a chat, a queue) never holds them while another timer runs."""
        fired = 0
        while fired < self.batch and await self._fire_next():
            fired += 1
        return fired

    async def _fire_next(self) -> bool:
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await conn.fetchrow(
                    "SELECT * FROM timers WHERE due_at <= now() AND kind = ANY($1::text[]) "
                    "ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                    list(self.handlers),
                )
                if row is None:
                    return False
                await self._fire(conn, Timer(**dict(row)))
        return True

    async def _fire(self, conn: asyncpg.Connection, timer: Timer) -> None:
        # A span of its own, so events the handler writes start a trace instead of none.
        with tracer().start_as_current_span(
            f"timer {timer.kind}",
            attributes={"kaiwa.timer.kind": timer.kind, "kaiwa.timer.key": timer.key, "kaiwa.tenant": timer.tenant},
        ) as span:
            try:
                async with conn.transaction():  # savepoint: a failing handler leaves the timer in place
                    await conn.execute("DELETE FROM timers WHERE id = $1", timer.id)
                    await self.handlers[timer.kind](timer, conn)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, repr(exc)))
                log.exception("timer handler failed", extra={"fields": {"kind": timer.kind, "key": timer.key}})
                await conn.execute(
                    "UPDATE timers SET attempts = attempts + 1, due_at = now() + make_interval(secs => $2) WHERE id = $1",
                    timer.id,
                    min(2**timer.attempts, 60),
                )
