"""PostgreSQL LISTEN on a dedicated connection that survives PostgreSQL restarts.

NOTIFY inside a transaction is delivered only if it commits, which makes it the cheapest
"something committed" wake-up across replicas. The connection is kept out of the pool
(a pooled connection with listeners would be reset under us), checked every few seconds
(a half-open socket is noticed), and re-established with backoff. `on_connect` runs after
every (re)connection: notifications sent while nobody listened are lost, so callers
catch up from the database then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable

import asyncpg

log = logging.getLogger("kaiwa.listener")


class PgListener:
    def __init__(
        self,
        database_url: str,
        channels: dict[str, Callable[[str], None]],
        on_connect: Callable[[], None] = lambda: None,
        keepalive: float = 5.0,
    ):
        self.database_url = database_url
        self.channels = channels
        self.on_connect = on_connect
        self.keepalive = keepalive

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            conn = None
            try:
                conn = await asyncpg.connect(self.database_url)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                for channel, callback in self.channels.items():
                    await conn.add_listener(channel, _adapter(callback))
                self.on_connect()
                backoff = 0.1
                await self._hold(conn, lost, stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN connection lost, reconnecting", extra={"fields": {"error": repr(exc)}})
                await sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 5)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))

    async def _hold(self, conn: asyncpg.Connection, lost: asyncio.Event, stop: asyncio.Event) -> None:
        while not stop.is_set() and not lost.is_set():
            if not await sleep_unless(stop, self.keepalive, also=lost):
                await conn.execute("SELECT 1", timeout=self.keepalive)
        if lost.is_set():
            raise ConnectionError("PostgreSQL closed the LISTEN connection")


def _adapter(callback: Callable[[str], None]):
    def on_notify(_conn, _pid, _channel, payload):
        callback(payload)

    return on_notify


async def sleep_unless(stop: asyncio.Event, seconds: float, also: asyncio.Event | None = None) -> bool:
    """Sleep up to `seconds`; True if `stop` (or `also`) was set meanwhile."""
    events = [stop] + ([also] if also is not None else [])
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        return bool(done)
    finally:
        for w in waiters:
            w.cancel()
