"""CONV-14: live fan-out of a chat to its watchers, across any number of replicas.

Durable events (messages, chat snapshots, delivery statuses, queue updates) are rows
carrying the chat's sequence number. The transaction that writes them also runs
`pg_notify('kaiwa_live_<schema>', '<chat_id> <last_seq>[ <message as JSON>]')`;
PostgreSQL delivers that to every listening replica if and only if the transaction
commits, in commit order. Each replica keeps ONE listening connection
(kaiwa_common.fanout.Fanout) and hands a `Wake` to the local subscribers of that chat.
A watcher that receives exactly its next sequence number with the message attached
delivers it at once; any other wake-up (late, twice, out of order, or without content)
makes it read (last seen, notified] from the database, which is the source of truth, so
there is never a gap, and a watcher never moves backwards (no duplicates).
Notifications missed while the listener reconnects are covered by RESYNC (every
subscriber re-reads after a reconnect) and by a slow poll of chats.last_seq (stream.py).
Resuming = replaying from the database after the client's last sequence number.

Ephemeral events are never stored: typing goes over core NATS on
`live.<prefix>.conversation.<tenant>.<chat_id>.typing` (outside the JetStream streams),
received through one process-wide subscription and handed to the same subscribers as a
`Typing`; countdown ticks are computed by each watcher from the chat's countdown_ends_at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass
from typing import ContextManager

from kaiwa_common.fanout import RESYNC, Fanout, Subscription

__all__ = ["RESYNC", "LiveHub", "Typing", "Wake"]


@dataclass(frozen=True)
class Wake:
    """The chat's events up to `seq` have committed; `row` is the message at `seq` as JSON
    when it fitted in the notification ("" otherwise)."""

    seq: int
    row: str = ""


@dataclass(frozen=True)
class Typing:
    sender_kind: str
    sender_id: str
    typing: bool


def _wake(payload: str) -> tuple[str, Wake]:
    """'<chat_id> <seq>[ <message row as JSON>]' -> (chat_id, Wake)."""
    chat_id, seq, row = (payload.split(" ", 2) + [""])[:3]
    return chat_id, Wake(int(seq), row)


def _token(value: str) -> str:
    return value if re.fullmatch(r"[A-Za-z0-9_-]+", value) else "x" + value.encode().hex()


class LiveHub:
    def __init__(self, ctx, schema: str):
        self.ctx = ctx
        self.channel = f"kaiwa_live_{schema}"  # the NOTIFY channel every chat write wakes
        self.fanout = Fanout(ctx.settings.database_url, {self.channel: _wake})
        self.root = f"live.{_token(ctx.settings.subject_prefix)}.conversation"

    def subscribe(self, chat_id: str) -> ContextManager[Subscription]:
        """This replica's subscription to a chat: Wake, Typing or RESYNC items."""
        return self.fanout.subscribe(self.channel, str(chat_id))

    def typing_subject(self, tenant: str, chat_id: str) -> str:
        return f"{self.root}.{_token(tenant)}.{chat_id}.typing"

    async def publish_typing(self, tenant: str, chat_id: str, typing: Typing) -> None:
        data = json.dumps({"sender_kind": typing.sender_kind, "sender_id": typing.sender_id, "typing": typing.typing})
        await self.ctx.nc.publish(self.typing_subject(tenant, chat_id), data.encode())

    async def _on_typing(self, msg) -> None:
        chat_id = msg.subject.split(".")[-2]
        self.fanout.publish_locally(self.channel, chat_id, Typing(**json.loads(msg.data)))

    async def run(self, stop: asyncio.Event) -> None:
        """The replica's one LISTEN connection and one NATS subscription."""
        subscription = await self.ctx.nc.subscribe(f"{self.root}.>", cb=self._on_typing)
        try:
            await self.fanout.run(stop)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
