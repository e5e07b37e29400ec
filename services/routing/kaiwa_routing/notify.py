"""Wake-ups for streams on every replica, through PostgreSQL LISTEN/NOTIFY.

A change commits with `pg_notify(channel, key)`; each replica keeps one listening
connection and wakes the streams waiting on that key. A notification only says "look
again": streams re-read the database, so a missed one (listener reconnecting) costs at
most the streams' periodic re-check, never data.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import asyncpg

log = logging.getLogger("kaiwa.routing.notify")

OFFERS = "routing_offers"   # key: <tenant>/<agent id>
TEAM = "routing_team"       # key: <tenant>


def offers_key(tenant: str, agent_id: str) -> str:
    return f"{tenant}/{agent_id}"


class Notifier:
    def __init__(self, pool_getter):
        self._get_pool = pool_getter  # the pool exists only once the service has connected
        self._waiters: dict[tuple[str, str], set[asyncio.Event]] = defaultdict(set)
        self._conn: asyncpg.Connection | None = None

    def subscribe(self, channel: str, key: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters[(channel, key)].add(event)
        return event

    def unsubscribe(self, channel: str, key: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get((channel, key))
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop((channel, key), None)

    def _on_notify(self, _conn, _pid, channel: str, payload: str) -> None:
        for event in self._waiters.get((channel, payload), ()):
            event.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            pool = self._get_pool()
            try:
                async with pool.acquire() as conn:
                    await conn.add_listener(OFFERS, self._on_notify)
                    await conn.add_listener(TEAM, self._on_notify)
                    self._wake_all()  # whatever happened while we were not listening
                    backoff = 0.1
                    while not stop.is_set() and not conn.is_closed():
                        try:
                            await asyncio.wait_for(stop.wait(), 1.0)
                        except asyncio.TimeoutError:
                            await conn.execute("SELECT 1")  # notices a dead connection
                    await conn.remove_listener(OFFERS, self._on_notify)
                    await conn.remove_listener(TEAM, self._on_notify)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listener lost, reconnecting", extra={"fields": {"error": repr(exc)}})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5)
