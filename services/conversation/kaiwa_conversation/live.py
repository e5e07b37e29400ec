"""CONV-14: live fan-out of a chat to its watchers, across any number of replicas.

Durable events (messages, chat snapshots, delivery statuses, queue updates) are rows
carrying the chat's sequence number. The transaction that writes them also runs
`pg_notify('kaiwa_live_<schema>', '<chat_id> <last_seq>[ <message as JSON>]')`;
PostgreSQL delivers that to every listening replica if and only if the transaction
commits, in commit order. Each replica keeps ONE listening connection (this hub) and
wakes its local watchers of that chat. A watcher that receives exactly its next
sequence number with the message attached delivers it at once; any other notification
(late, twice, out of order, or without content) makes it read (last seen, notified]
from the database, which is the source of truth, so there is never a gap, and a watcher
never moves backwards (no duplicates).
Notifications missed while the listener reconnects are covered by waking every watcher
after a reconnect and by a slow poll of chats.last_seq. Resuming = replaying from the
database after the client's last sequence number.

Ephemeral events are never stored: typing goes over core NATS on
`live.<prefix>.conversation.<tenant>.<chat_id>.typing` (outside the JetStream streams),
received through one process-wide subscription; countdown ticks are computed by each
watcher from the chat's countdown_ends_at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re

from kaiwa_common.listener import PgListener

WAKE, TYPING = "wake", "typing"


class Watcher:
    def __init__(self, chat_id: str):
        self.chat_id = chat_id
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=1000)

    def offer(self, item) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:  # a stuck client: a wake is implied by the poll anyway
            pass


def _token(value: str) -> str:
    return value if re.fullmatch(r"[A-Za-z0-9_-]+", value) else "x" + value.encode().hex()


class LiveHub:
    def __init__(self, ctx, schema: str):
        self.ctx = ctx
        self.channel = f"kaiwa_live_{schema}"
        self.watchers: dict[str, set[Watcher]] = {}
        self.root = f"live.{_token(ctx.settings.subject_prefix)}.conversation"

    @contextlib.contextmanager
    def watch(self, chat_id: str):
        watcher = Watcher(chat_id)
        self.watchers.setdefault(chat_id, set()).add(watcher)
        try:
            yield watcher
        finally:
            group = self.watchers.get(chat_id)
            if group is not None:
                group.discard(watcher)
                if not group:
                    del self.watchers[chat_id]

    def _on_notify(self, payload: str) -> None:
        """'<chat_id> <seq>[ <message row as JSON>]'."""
        group = self.watchers.get(payload[:36])
        if not group:
            return
        _, seq, data = (payload.split(" ", 2) + [""])[:3]
        row = json.loads(data) if data else None
        for watcher in group:
            watcher.offer((WAKE, int(seq), row))

    def _wake_all(self) -> None:
        for group in self.watchers.values():
            for watcher in group:
                watcher.offer((WAKE, 0, None))

    def typing_subject(self, tenant: str, chat_id: str) -> str:
        return f"{self.root}.{_token(tenant)}.{chat_id}.typing"

    async def publish_typing(self, tenant: str, chat_id: str, sender_kind: str, sender_id: str, typing: bool) -> None:
        data = json.dumps({"sender_kind": sender_kind, "sender_id": sender_id, "typing": typing}).encode()
        await self.ctx.nc.publish(self.typing_subject(tenant, chat_id), data)

    async def _on_typing(self, msg) -> None:
        chat_id = msg.subject.split(".")[-2]
        group = self.watchers.get(chat_id)
        if group:
            data = json.loads(msg.data)
            for watcher in group:
                watcher.offer((TYPING, data))

    async def run(self, stop: asyncio.Event) -> None:
        """The replica's one LISTEN connection and one NATS subscription."""
        subscription = await self.ctx.nc.subscribe(f"{self.root}.>", cb=self._on_typing)
        try:
            await PgListener(self.ctx.settings.database_url, {self.channel: self._on_notify}, on_connect=self._wake_all).run(stop)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
