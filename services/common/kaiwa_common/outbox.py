"""Transactional outbox and the relay that publishes it to JetStream."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg
from google.protobuf.message import DecodeError, Message
from kaiwa.events.v1.envelope_pb2 import Event
from opentelemetry import propagate, trace

from .events import make_event, subject
from .listener import PgListener, sleep_unless
from .telemetry import context_from, tracer

log = logging.getLogger("kaiwa.outbox")


@dataclass(frozen=True)
class OutboxRow:
    event: Event
    subject: str
    envelope: bytes


class Outbox:
    """Adds a service's events to its outbox inside the caller's transaction."""

    def __init__(self, source: str, prefix: str, schema: str):
        self.source = source
        self.prefix = prefix
        self.channel = f"kaiwa_outbox_{schema}"

    def prepare(self, tenant: str, payload: Message) -> OutboxRow:
        """The outbox row for an event, for a caller that writes it inside a statement of
        its own (a hot path folding several writes into one round trip)."""
        event = make_event(self.source, tenant, payload)
        return OutboxRow(event, subject(self.prefix, self.source, event.type), event.SerializeToString())

    async def add(self, conn: asyncpg.Connection, tenant: str, payload: Message) -> Event:
        row = self.prepare(tenant, payload)
        # One round trip; the NOTIFY is delivered at commit only and wakes the relay at once.
        await conn.execute(
            "WITH o AS (INSERT INTO outbox (id, tenant, subject, envelope) VALUES ($1, $2, $3, $4)) SELECT pg_notify($5, '')",
            row.event.id,
            tenant,
            row.subject,
            row.envelope,
            self.channel,
        )
        return row.event


def _publish_span(row) -> tuple[trace.Span, dict[str, str]]:
    """A PRODUCER span in the trace of the request that wrote the event, and the NATS
    headers for the message: Nats-Msg-Id (deduplication) and the W3C trace context."""
    try:
        carrier = dict(Event.FromString(bytes(row["envelope"])).trace_context)
    except DecodeError:
        carrier = {}
    span = tracer().start_span(
        f"publish {row['subject']}",
        context=context_from(carrier),
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": row["subject"],
            "messaging.message.id": str(row["id"]),
        },
    )
    headers = {"Nats-Msg-Id": str(row["id"])}
    propagate.inject(headers, context=trace.set_span_in_context(span))
    return span, headers


class OutboxRelay:
    """Publishes outbox rows in order with Nats-Msg-Id = event id, then deletes them.

    Rows are claimed with FOR UPDATE SKIP LOCKED, so replicas share the work. A crash
    after publishing but before the delete republishes the same ids, which JetStream's
    duplicate window drops; consumers are idempotent besides.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        js,
        channel: str,
        database_url: str,
        batch: int = 256,
        poll_interval: float = 1.0,
        metrics=None,
        min_batch_interval: float = 0.005,
    ):
        self.pool = pool
        # Under load every commit's NOTIFY would claim a batch of one row (four round trips
        # and a span each). Batches start at least this far apart instead, so commits close
        # together share one; an event waits at most this long, and only when events are
        # that close.
        self.min_batch_interval = min_batch_interval
        self._last_batch_at = 0.0
        self.metrics = metrics  # kaiwa_common.metrics.Metrics, or None
        self.js = js
        self.batch = batch
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        # Woken by the NOTIFY of each committed outbox write, and after every reconnection.
        self._listener = PgListener(database_url, {channel: lambda _: self._wake.set()}, on_connect=self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        listening = asyncio.create_task(self._listener.run(stop))
        try:
            await self._publish_loop(stop)
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

    async def _publish_loop(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                too_soon = self._last_batch_at + self.min_batch_interval - loop.time()
                if too_soon > 0:
                    await sleep_unless(stop, too_soon)
                self._last_batch_at = loop.time()
                published = await self.publish_batch()
                backoff = 0.1
                if published < self.batch:
                    await self._sleep(stop, self.poll_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or PostgreSQL away: keep the rows, try again
                log.warning("relay could not publish, will retry", extra={"fields": {"error": repr(exc)}})
                await self._sleep(stop, backoff)
                backoff = min(backoff * 2, 5)

    async def publish_batch(self) -> int:
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                # Claimed and deleted in one round trip; the delete commits only once every
                # publish is acknowledged (an exception rolls it back: the rows stay).
                claimed = await conn.fetch(
                    "DELETE FROM outbox WHERE seq IN "
                    "(SELECT seq FROM outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED) "
                    "RETURNING seq, id, subject, envelope",
                    self.batch,
                )
                rows = sorted(claimed, key=lambda r: r["seq"])
                if not rows:
                    return 0
                spans = [_publish_span(r) for r in rows]
                try:
                    # Sent in order on one connection; the acks are awaited together.
                    await asyncio.gather(
                        *(
                            self.js.publish(r["subject"], bytes(r["envelope"]), timeout=5, headers=headers)
                            for r, (_, headers) in zip(rows, spans, strict=True)
                        )
                    )
                except BaseException as exc:
                    for span, _ in spans:
                        span.set_status(trace.Status(trace.StatusCode.ERROR, repr(exc)))
                    raise
                finally:
                    for span, _ in spans:
                        span.end()
        if self.metrics is not None:
            self.metrics.outbox_published.inc(len(rows))
        return len(rows)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        self._wake.clear()
        await sleep_unless(stop, seconds, also=self._wake)
