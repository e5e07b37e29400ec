"""LISTEN/NOTIFY fan-out to live streams, across any number of replicas.

A change commits with `pg_notify(channel, payload)`; PostgreSQL delivers it to every
listening replica if and only if the transaction commits. Each replica keeps ONE
listening connection (PgListener) and hands each notification to the local subscribers
of its key. A notification only says "look again" (or carries the new row as a
shortcut): streams re-read the database, which stays the source of truth. After the
listener reconnects every subscriber gets `RESYNC`, since notifications may have been
missed meanwhile.

    fanout = Fanout(database_url, {"routing_offers": split_key})
    with fanout.subscribe("routing_offers", key) as subscription:
        item = await subscription.next(timeout=5)   # RESYNC, an item, or None on timeout
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Callable, Iterator

from .listener import PgListener

RESYNC = object()  # "notifications may have been missed: re-read everything"


def whole_payload_is_key(payload: str) -> tuple[str, str]:
    return payload, payload


class Subscription:
    def __init__(self, maxsize: int = 1000):
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=maxsize)

    def offer(self, item) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:  # a stuck reader: it re-reads on its next periodic check anyway
            pass

    async def next(self, timeout: float | None = None):
        """The next item, or None when `timeout` passes first."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None


class Fanout:
    def __init__(self, database_url: str, channels: dict[str, Callable[[str], tuple[str, object]]]):
        """channels: LISTEN channel -> parse(payload) returning (key, item for subscribers)."""
        self._database_url = database_url
        self._parsers = channels
        self._subscribers: dict[tuple[str, str], set[Subscription]] = {}

    @contextlib.contextmanager
    def subscribe(self, channel: str, key: str) -> Iterator[Subscription]:
        subscription = Subscription()
        group = self._subscribers.setdefault((channel, key), set())
        group.add(subscription)
        try:
            yield subscription
        finally:
            group.discard(subscription)
            if not group:
                self._subscribers.pop((channel, key), None)

    def publish_locally(self, channel: str, key: str, item) -> None:
        """Hand an item to this replica's subscribers of a key (tests, in-process shortcuts)."""
        for subscription in self._subscribers.get((channel, key), ()):
            subscription.offer(item)

    def _resync_all(self) -> None:
        for group in self._subscribers.values():
            for subscription in group:
                subscription.offer(RESYNC)

    def _handler(self, channel: str) -> Callable[[str], None]:
        parse = self._parsers[channel]

        def on_notify(payload: str) -> None:
            key, item = parse(payload)
            self.publish_locally(channel, key, item)

        return on_notify

    async def run(self, stop: asyncio.Event) -> None:
        """The replica's one listening connection, until `stop` is set."""
        handlers = {channel: self._handler(channel) for channel in self._parsers}
        await PgListener(self._database_url, handlers, on_connect=self._resync_all).run(stop)
