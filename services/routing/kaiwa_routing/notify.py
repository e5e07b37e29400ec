"""Wake-ups for streams on every replica, through PostgreSQL LISTEN/NOTIFY.

A change commits with `pg_notify(channel, key)`; each replica keeps one listening
connection and wakes the streams waiting on that key. A notification only says "look
again": streams re-read the database, so a missed one (listener reconnecting) costs at
most the streams' periodic re-check, never data.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from kaiwa_common.listener import PgListener

from .arrivals import CHATS

OFFERS = "routing_offers"   # key: <tenant>/<agent id>
TEAM = "routing_team"       # key: <tenant>
# and arrivals.CHATS, key <tenant>/<chat id>: a chat routing has just learned.


def offers_key(tenant: str, agent_id: str) -> str:
    return f"{tenant}/{agent_id}"


class Notifier:
    def __init__(self, database_url_getter):
        self._database_url = database_url_getter  # settings are read once the service runs
        self._waiters: dict[tuple[str, str], set[asyncio.Event]] = defaultdict(set)

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

    def _wake(self, channel: str, key: str) -> None:
        for event in self._waiters.get((channel, key), ()):
            event.set()

    def _wake_all(self) -> None:
        """After a reconnection: whatever happened while nobody listened."""
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    async def run(self, stop: asyncio.Event) -> None:
        channels = {channel: (lambda key, channel=channel: self._wake(channel, key)) for channel in (OFFERS, TEAM, CHATS)}
        await PgListener(self._database_url(), channels, on_connect=self._wake_all).run(stop)
