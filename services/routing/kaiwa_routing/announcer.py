"""Queue positions reach waiting visitors (ROUT-04): every `position_interval`, each
replica walks the queues with waiting chats and publishes the positions that changed
enough (queue_position_changed), which the conversation service turns into updates on the
chat stream. A queue is handled by one replica at a time (a transaction-scoped advisory
try-lock); every 30 rounds the positions of chats that no longer wait are forgotten."""

from __future__ import annotations

import asyncio

from kaiwa.events.v1 import routing_pb2 as ev

from kaiwa_common.db import unit_of_work
from kaiwa_common.loops import every

from . import store
from .context import Routing
from .domain.estimate import estimated_wait
from .router import queue_key

NEAR_THE_HEAD = 20  # every change of position is announced this near the head; further back, a move of a tenth
FORGET_EVERY = 30  # rounds between clean-ups of positions no longer needed


async def run(r: Routing, stop: asyncio.Event) -> None:
    rounds = 0

    async def round_() -> None:
        nonlocal rounds
        await announce_all(r)
        rounds += 1
        if rounds % FORGET_EVERY == 0:
            async with unit_of_work(r.pool) as conn:
                await store.background.forget_announcements(conn)

    await every(r.settings.position_interval, stop, round_, "queue positions")


async def announce_all(r: Routing) -> None:
    async with r.pool.acquire() as conn:
        queues = await store.background.queues_with_chats(conn)
    for row in queues:
        tenant, department_id = row["tenant"], str(row["department_id"]) if row["department_id"] else None
        async with unit_of_work(r.pool) as conn:
            mine = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", "positions:" + queue_key(tenant, department_id)
            )
            if mine:
                await announce_positions(r, conn, tenant, department_id)


async def announce_positions(r: Routing, conn, tenant: str, department_id: str | None) -> int:
    """Publish the queue positions (and estimates) that changed enough since last announced:
    every change in the first 20 places, further back a move of a tenth or more."""
    rows = await store.queue.with_positions(conn, tenant, department_id, 5000)
    if not rows:
        return 0
    handling, accept = await store.queue.handling_stats(conn, tenant, department_id)
    overview = await store.agents.capacity_overview(conn, tenant, department_id)
    changed = []
    for row in rows:
        last, position = row["last_position"], row["position"]
        if last is not None and (last == position or (position > NEAR_THE_HEAD and abs(last - position) < max(1, last // 10))):
            continue
        wait = estimated_wait(position, handling, accept, overview["capacity"], overview["free"])
        await r.outbox.add(
            conn, tenant, ev.QueuePositionChanged(chat_id=str(row["id"]), position=position, estimated_wait_seconds=wait)
        )
        changed.append((row["id"], position))
    await store.queue.record_announcements(conn, tenant, changed)
    return len(changed)
