"""PLAT-01: an event written to the outbox reaches a durable consumer exactly once."""

from __future__ import annotations

import asyncio
import uuid

from kaiwa.events.v1.routing_pb2 import AgentAvailabilityChanged

from kaiwa_common.app import ServiceSpec
from kaiwa_common.consumer import ConsumerSpec
from kaiwa_common.db import unit_of_work
from tests.fixtures import running


def _spec(name: str, schema: str, consumers=lambda ctx: []) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        schema=schema,
        migrations=None,
        grpc_services=[],
        policy={},
        add_servicers=lambda server, ctx: None,
        consumers=consumers,
    )


async def test_plat01_outbox_event_reaches_consumer_once(tenant):
    seen: list[str] = []

    async def on_availability(event, conn):
        seen.append(event.agent_availability_changed.agent_id)

    suffix = uuid.uuid4().hex[:8]
    consumer = lambda ctx: [ConsumerSpec(f"smoke-{suffix}", "routing", ["agent_availability_changed"], on_availability)]
    async with (
        running(_spec("routing", f"smoke_producer_{suffix}")) as producer,
        running(_spec("visitor", f"smoke_consumer_{suffix}", consumer)),
    ):
        agent = str(uuid.uuid4())
        async with unit_of_work(producer.ctx.pool) as conn:
            await producer.ctx.outbox.add(conn, tenant, AgentAvailabilityChanged(agent_id=agent, availability="online"))
        for _ in range(100):
            # The relay deletes its rows once JetStream acked them, which can be after delivery.
            if agent in seen and await producer.ctx.pool.fetchval("SELECT count(*) FROM outbox") == 0:
                break
            await asyncio.sleep(0.05)
        assert seen.count(agent) == 1
        assert await producer.ctx.pool.fetchval("SELECT count(*) FROM outbox") == 0
