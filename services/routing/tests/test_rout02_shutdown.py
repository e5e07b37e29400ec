"""ROUT-02 at shutdown: a routing pass running when the service stops ends its transaction
(it commits what it offered), and is never cancelled twice. The two-replica test's
teardown once found "Resetting connection with an active transaction" (asyncio, error) in
a replica's log: the router cancelled its passes, then the shutdown cancelled the worker
waiting for them, which cancelled the passes again while they were rolling back, so a
connection went back to the pool inside its transaction. (no_unhandled_errors in
tests/fixtures.py fails these tests on that log line.)"""

from __future__ import annotations

import asyncio
import contextlib

from kaiwa.routing.v1 import routing_pb2 as pb
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from kaiwa_routing.main import SPEC
from kaiwa_routing.router import queue_key
from services.routing.tests.kit import Kit
from tests.fixtures import channel_to, eventually


async def _passes_waiting(db, lock_key: str) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 "
        "AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)",
        lock_key,
    )


@contextlib.asynccontextmanager
async def _routing_with_a_pass_held(bus, db, tenant: str):
    """A routing service of this test's own whose background pass of a queue with a waiting
    chat is inside its transaction, waiting for the queue's lock, which this test holds
    (release it with the yielded transaction's rollback)."""
    runner = await ServiceRunner(SPEC, Settings(), port=0).start()
    try:
        async with channel_to(runner) as channel:
            kit = Kit(RoutingServiceStub(channel), bus, tenant)
            sales = await kit.department("Sales")
            agent = await kit.agent("a@example.com", [sales.id], online=False)
            chat = await kit.start_chat(sales.id)
            await kit.wait_state(chat, pb.ASSIGNMENT_STATE_QUEUED)
            lock_key = "routing:" + queue_key(tenant, sales.id)
            held = db.transaction()
            await held.start()
            await db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", lock_key)
            try:
                # The agent coming online starts a background pass, which waits for the lock.
                await kit.stub.SetAvailability(
                    pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE), metadata=kit.as_agent(agent.id)
                )
                await eventually(lambda: _passes_waiting(db, lock_key), "a pass waiting inside its transaction")
                yield runner, held
            finally:
                if db.is_in_transaction():
                    await held.rollback()
    finally:
        await runner.stop(grace=0.2)


async def test_rout02_stopping_the_service_lets_a_running_pass_commit(bus, db, tenant):
    async with _routing_with_a_pass_held(bus, db, tenant) as (runner, held):
        stopping = asyncio.ensure_future(runner.stop(grace=0.2))
        await asyncio.sleep(0.5)  # the service is stopping; the pass still waits
        await held.rollback()
        await stopping
    # The pass ended its transaction: it committed its offer.
    assert await db.fetchval("SELECT count(*) FROM offers WHERE tenant = $1", tenant) == 1


async def test_rout02_cancelling_the_routers_close_never_cancels_a_pass_again(bus, db, tenant):
    async with _routing_with_a_pass_held(bus, db, tenant) as (runner, held):
        router = runner.ctx.routing.router
        closing = asyncio.ensure_future(router.close())
        await asyncio.sleep(0)
        closing.cancel()  # what the service's shutdown does to the worker that runs close()
        await asyncio.gather(closing, return_exceptions=True)
        await held.rollback()
        await router.close()
    assert await db.fetchval("SELECT count(*) FROM offers WHERE tenant = $1", tenant) == 1
