"""PLAT-01 (foundation item 8): kill -9 the relay or the consumer in the middle of a
stream of 1,500 events; after a restart every event is applied exactly once."""

from __future__ import annotations

import asyncio

import nats

from kaiwa_common.db import create_pool
from kaiwa_common.events import stream_name
from kaiwa_common.outbox import Outbox
from tests.backbone.support import applied_counts, assert_exactly_once, table_count, wait_consumer_settled
from tests.fixtures import eventually
from tests.backbone.worker import SOURCE, produce

EVENTS = 1500


async def _stream_messages(nats_url: str, prefix: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(stream_name(prefix, SOURCE))
        return info.state.messages
    finally:
        await nc.close()


async def test_plat01_relay_killed_mid_stream_delivers_each_event_once(db, names, workers, infra, tenant):
    producer_schema, consumer_schema, prefix = names["producer"], names["consumer"], names["prefix"]
    consumer = workers("consumer", schema=consumer_schema, prefix=prefix, consumer=names["durable"])
    relay = workers("relay", schema=producer_schema, prefix=prefix)
    await asyncio.gather(consumer.start_serving(), relay.start_serving())

    pool = await create_pool(infra["database_url"], producer_schema, min_size=1, max_size=2)
    try:
        outbox = Outbox(SOURCE, prefix, producer_schema)
        written: list[str] = []
        writing = asyncio.create_task(produce(pool, outbox, tenant, [f"n{i}" for i in range(EVENTS)], 10, written, pause=0.005))

        async def applied() -> int:
            return await table_count(db, consumer_schema, "applied")

        async def published() -> bool:
            committed = len(written)
            return committed - await table_count(db, producer_schema, "outbox") >= 300

        await eventually(published, "the relay to publish the first events", interval=0.01)
        relay.kill()  # mid-stream: the writer keeps committing events meanwhile
        ids = await writing
        backlog = await table_count(db, producer_schema, "outbox")
        assert backlog > 0, "the relay should have been killed before the stream was published"

        # Restart, and crash it again while it is draining the backlog in batches.
        relay.start()

        async def draining() -> int | None:
            left = await table_count(db, producer_schema, "outbox")
            return left if left < backlog else None

        left_at_second_kill = await eventually(draining, "the restarted relay to publish a batch", interval=0.005)
        relay.kill()
        assert left_at_second_kill > 0, "the second kill should land while rows are still waiting"

        await relay.start_serving()
        await eventually(lambda: _at_least(applied, EVENTS), f"all {EVENTS} events to be applied", timeout=60)
        await wait_consumer_settled(infra["nats_url"], prefix, names["durable"])
        assert await table_count(db, producer_schema, "outbox") == 0
        assert_exactly_once(await applied_counts(db, consumer_schema, tenant), ids)
        # Republished rows were dropped by JetStream's duplicate window (Nats-Msg-Id = event id).
        assert await _stream_messages(infra["nats_url"], prefix) == EVENTS
    finally:
        await pool.close()


async def test_plat01_consumer_killed_mid_stream_applies_each_event_once(db, names, workers, infra, tenant):
    producer_schema, consumer_schema, prefix = names["producer"], names["consumer"], names["prefix"]
    consumer = workers("consumer", schema=consumer_schema, prefix=prefix, consumer=names["durable"])
    relay = workers("relay", schema=producer_schema, prefix=prefix)
    await asyncio.gather(consumer.start_serving(), relay.start_serving())

    pool = await create_pool(infra["database_url"], producer_schema, min_size=1, max_size=2)
    try:
        outbox = Outbox(SOURCE, prefix, producer_schema)
        writing = asyncio.create_task(produce(pool, outbox, tenant, [f"n{i}" for i in range(EVENTS)], 10, pause=0.005))

        async def applied() -> int:
            return await table_count(db, consumer_schema, "applied")

        await eventually(lambda: _at_least(applied, 300), "the first events to be applied")
        consumer.kill()
        first_run = await applied()
        ids = await writing
        assert first_run < EVENTS, "the consumer should have been killed mid-stream"

        consumer.start()  # messages it had fetched but not acked come back after ack_wait
        await eventually(lambda: _at_least(applied, first_run + 200), "the restarted consumer to make progress")
        consumer.kill()
        second_run = await applied()
        assert second_run < EVENTS, "the second kill should land mid-stream too"

        await consumer.start_serving()
        await eventually(lambda: _at_least(applied, EVENTS), f"all {EVENTS} events to be applied", timeout=60)
        await wait_consumer_settled(infra["nats_url"], prefix, names["durable"])
        assert_exactly_once(await applied_counts(db, consumer_schema, tenant), ids)
        assert await db.fetchval(f'SELECT count(*) FROM "{consumer_schema}".processed_events') == EVENTS
    finally:
        await pool.close()


async def _at_least(count, n: int) -> bool:
    return await count() >= n
