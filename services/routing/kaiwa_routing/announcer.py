"""Queue positions reach waiting visitors: every interval, each replica walks the queues
with waiting chats and publishes the positions that changed (queue_position_changed),
which the conversation service turns into updates on the chat stream. A queue is handled
by one replica at a time (a transaction-scoped advisory try-lock)."""

from __future__ import annotations

import asyncio
import logging
import os

from kaiwa_common.db import unit_of_work

from . import store
from .router import queue_key

log = logging.getLogger("kaiwa.routing.announcer")


def interval() -> float:
    return float(os.environ.get("KAIWA_ROUTING_POSITION_INTERVAL", "1.0"))


class Announcer:
    def __init__(self, routing):
        self.routing = routing

    async def run(self, stop: asyncio.Event) -> None:
        rounds = 0
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval())
                return
            except asyncio.TimeoutError:
                pass
            try:
                await self.announce_all()
                rounds += 1
                if rounds % 30 == 0:
                    async with unit_of_work(self.routing.ctx.pool) as conn:
                        await store.forget_announcements(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("announcing queue positions failed", extra={"fields": {"error": repr(exc)}})

    async def announce_all(self) -> None:
        pool = self.routing.ctx.pool
        async with pool.acquire() as conn:
            queues = await store.queues_with_chats(conn)
        for row in queues:
            tenant, department_id = row["tenant"], str(row["department_id"]) if row["department_id"] else None
            async with unit_of_work(pool) as conn:
                mine = await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
                                           "positions:" + queue_key(tenant, department_id))
                if mine:
                    await self.routing.announce_positions(conn, tenant, department_id)
