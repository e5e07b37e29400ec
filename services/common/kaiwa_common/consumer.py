"""Durable JetStream pull consumers that apply each event exactly once.

The effect and a (consumer, event id) row commit in one transaction; the message is
acked after the commit. Transient errors are nak'ed with a delay; poison messages (that
can never be applied) are parked in dead_letters and terminated.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

import asyncpg
from google.protobuf.message import DecodeError
from kaiwa.events.v1.envelope_pb2 import Event
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace

from .db import TRANSIENT_DB_ERRORS
from .errors import PermanentEventError, Unavailable
from .events import stream_name, subject
from .telemetry import context_from, tracer

log = logging.getLogger("kaiwa.consumer")

Handler = Callable[[Event, asyncpg.Connection], Awaitable[None]]

TRANSIENT_ERRORS = TRANSIENT_DB_ERRORS + (Unavailable,)


@dataclass
class ConsumerSpec:
    name: str  # durable name, unique per consuming service
    source: str  # producing service, e.g. "conversation"
    event_types: list[str]  # e.g. ["chat_started", "chat_ended"]
    handler: Handler
    max_attempts: int = 5  # for unexpected errors; transient ones retry forever
    ack_wait: float = 30.0  # seconds before a message delivered to a dead process is redelivered


class EventConsumer:
    def __init__(self, pool: asyncpg.Pool, js, prefix: str, spec: ConsumerSpec, batch: int = 64, metrics=None):
        self.pool = pool
        self.metrics = metrics  # kaiwa_common.metrics.Metrics, or None
        self.js = js
        self.prefix = prefix
        self.spec = spec
        self.batch = batch
        self.stream = stream_name(prefix, spec.source)

    async def ensure(self) -> None:
        config = ConsumerConfig(
            durable_name=self.spec.name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subjects=[subject(self.prefix, self.spec.source, t) for t in self.spec.event_types],
            ack_wait=self.spec.ack_wait,
            max_ack_pending=1000,
            max_deliver=-1,
        )
        await self.js.add_consumer(self.stream, config)

    async def run(self, stop: asyncio.Event) -> None:
        subscription = None
        backoff = 0.1
        try:
            while not stop.is_set():
                try:
                    if subscription is None:
                        await self.ensure()
                        subscription = await self.js.pull_subscribe_bind(durable=self.spec.name, stream=self.stream)
                    try:
                        messages = await subscription.fetch(self.batch, timeout=1.0)
                    except asyncio.TimeoutError:
                        continue
                    for msg in messages:
                        await self.process(msg)
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "consumer loop error, retrying", extra={"fields": {"consumer": self.spec.name, "error": repr(exc)}}
                    )
                    await _unsubscribe(subscription)
                    subscription = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5)
        finally:
            # Messages that arrived after a fetch timed out wait unprocessed in the subscription;
            # left subscribed, they hold nc.drain() up until its timeout. Unacked, they come back.
            await _unsubscribe(subscription)

    async def process(self, msg) -> None:
        try:
            event = Event.FromString(msg.data)
        except DecodeError as exc:
            await self._dead_letter(msg, None, f"undecodable event: {exc}")
            return
        # The relay's publish span (NATS headers) if present, else the writer's (envelope).
        headers = msg.headers or {}
        span_context = context_from(headers if "traceparent" in headers else event.trace_context)
        with tracer().start_as_current_span(
            f"consume {event.type}",
            context=span_context,
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.consumer": self.spec.name, "messaging.message.id": event.id},
        ):
            await self._apply(msg, event)

    async def _apply(self, msg, event: Event) -> None:
        deliveries = msg.metadata.num_delivered
        if deliveries > 1 and self.metrics is not None:
            self.metrics.redeliveries.labels(self.spec.name).inc()
        try:
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    first_time = await conn.fetchval(
                        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                        self.spec.name,
                        event.id,
                    )
                    if first_time:
                        await self.spec.handler(event, conn)
        except PermanentEventError as exc:
            await self._dead_letter(msg, event, str(exc))
            return
        except TRANSIENT_ERRORS as exc:
            log.warning(
                "transient error, redelivering",
                extra={"fields": {"consumer": self.spec.name, "event": event.id, "error": repr(exc)}},
            )
            await msg.nak(delay=min(0.2 * 2 ** min(deliveries, 5), 10))
            return
        except Exception as exc:
            if deliveries >= self.spec.max_attempts:
                await self._dead_letter(msg, event, f"failed {deliveries} times: {exc!r}")
            else:
                log.exception("event handler failed", extra={"fields": {"consumer": self.spec.name, "event": event.id}})
                await msg.nak(delay=min(0.2 * 2**deliveries, 10))
            return
        await msg.ack()

    async def _dead_letter(self, msg, event: Event | None, error: str) -> None:
        log.error("event parked in dead_letters", extra={"fields": {"consumer": self.spec.name, "error": error}})
        try:
            async with self.pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO dead_letters (consumer, event_id, subject, envelope, error, deliveries) "
                    "VALUES ($1, $2, $3, $4, $5, $6)",
                    self.spec.name,
                    event.id if event else None,
                    msg.subject,
                    msg.data,
                    error,
                    msg.metadata.num_delivered,
                )
        except TRANSIENT_DB_ERRORS:
            await msg.nak(delay=1.0)  # cannot record it now: keep it for later
            return
        await msg.term()
        if self.metrics is not None:
            self.metrics.dead_lettered.labels(self.spec.name).inc()


async def _unsubscribe(subscription) -> None:
    if subscription is None:
        return
    try:
        await subscription.unsubscribe()
    except Exception:
        pass
