"""Transactional outbox and the relay that publishes it to JetStream."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from google.protobuf.message import Message
from kaiwa.events.v1.envelope_pb2 import Event

from .db import TRANSIENT_DB_ERRORS
from .events import make_event, subject

log = logging.getLogger("kaiwa.outbox")


class Outbox:
    """Adds a service's events to its outbox inside the caller's transaction."""

    def __init__(self, source: str, prefix: str, schema: str):
        self.source = source
        self.prefix = prefix
        self.channel = f"kaiwa_outbox_{schema}"

    async def add(self, conn: asyncpg.Connection, tenant: str, payload: Message) -> Event:
        event = make_event(self.source, tenant, payload)
        await conn.execute(
            "INSERT INTO outbox (id, tenant, subject, envelope) VALUES ($1, $2, $3, $4)",
            event.id, tenant, subject(self.prefix, self.source, event.type), event.SerializeToString())
        # Delivered at commit only: wakes the relay without polling delay.
        await conn.execute("SELECT pg_notify($1, '')", self.channel)
        return event


class OutboxRelay:
    """Publishes outbox rows in order with Nats-Msg-Id = event id, then deletes them.

    Rows are claimed with FOR UPDATE SKIP LOCKED, so replicas share the work. A crash
    after publishing but before the delete republishes the same ids, which JetStream's
    duplicate window drops; consumers are idempotent besides.
    """

    def __init__(self, pool: asyncpg.Pool, js, channel: str, batch: int = 256, poll_interval: float = 1.0):
        self.pool = pool
        self.js = js
        self.channel = channel
        self.batch = batch
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                await self._ensure_listener()
                published = await self.publish_batch()
                backoff = 0.1
                if published < self.batch:
                    await self._sleep(stop, self.poll_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or PostgreSQL away: keep the rows, try again
                log.warning("relay could not publish, will retry", extra={"fields": {"error": repr(exc)}})
                await self._drop_listener()
                await self._sleep(stop, backoff)
                backoff = min(backoff * 2, 5)
        await self._drop_listener()

    async def publish_batch(self) -> int:
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                rows = await conn.fetch(
                    "SELECT seq, id, subject, envelope FROM outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                    self.batch)
                if not rows:
                    return 0
                # Sent in order on one connection; the acks are awaited together.
                await asyncio.gather(*(
                    self.js.publish(r["subject"], bytes(r["envelope"]), timeout=5,
                                    headers={"Nats-Msg-Id": str(r["id"])})
                    for r in rows))
                await conn.execute("DELETE FROM outbox WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows])
        return len(rows)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        self._wake.clear()
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        conn = await self.pool.acquire()
        await conn.add_listener(self.channel, self._on_notify)
        self._listener = conn

    def _on_notify(self, *_args) -> None:
        self._wake.set()

    async def _drop_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is None:
            return
        try:
            if not conn.is_closed():
                await conn.remove_listener(self.channel, self._on_notify)
        except Exception:
            pass
        try:
            await self.pool.release(conn)
        except Exception:
            pass
