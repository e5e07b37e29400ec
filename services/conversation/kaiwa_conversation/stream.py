"""CONV-14: StreamChat: one watcher's view of a chat, from `after_seq` on, live.

    subscribe (live.py) ─▶ read last_seq ─▶ replay (after_seq, last_seq] from the database
        ─▶ wait: Wake(seq, row) in order ─▶ deliver the row as it came (no read)
                 Wake out of order / no row ─▶ read up to seq
                 RESYNC (listener reconnected) or 5 s quiet ─▶ re-read last_seq
                 Typing ─▶ pass on (not one's own; never an agent's to a messaging
                           channel's customer)
        while a countdown runs: a Tick every second

Subscribing before the first read means nothing committed in between can be missed;
durable events go out in sequence order exactly once, each with its seq, and what
this watcher may not see keeps its seq with no content (`Stored(kind="hidden")`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import AsyncIterator

from kaiwa_common.auth import SERVICE, VISITOR
from kaiwa_common.errors import InvalidArgument

from . import store
from .history import visible
from .live import RESYNC, Typing, Wake
from .unit_of_work import Actor, Deps, now, read_chat

REPLAY_BATCH = 500
POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Stored:
    """A durable event: kind message, chat (a snapshot), status, queue, or hidden."""

    seq: int
    kind: str
    data: dict


@dataclass(frozen=True)
class Tick:
    seconds_left: int
    ends_at: datetime


async def follow(deps: Deps, actor: Actor, chat_id: str, after_seq: int) -> AsyncIterator[Stored | Typing | Tick]:
    if after_seq < 0:
        raise InvalidArgument("after_seq must not be negative")
    chat, _ = await read_chat(deps, actor, chat_id)
    if after_seq > chat["last_seq"]:
        raise InvalidArgument(f"after_seq {after_seq} is ahead of the chat (last_seq {chat['last_seq']})")
    tenant, last = actor.tenant, after_seq
    countdown_ends = chat["countdown_ends_at"]
    next_tick = now()
    # CONV-14: on messaging channels the customer is never shown that an agent is typing.
    customer_side = actor.role in (VISITOR, SERVICE) and chat["channel"] != "web"
    with deps.hub.subscribe(chat["id"]) as subscription:
        async with deps.ctx.pool.acquire() as conn:
            target = await store.last_seq(conn, tenant, chat["id"])
        while True:
            while last < target:  # replay, or fill the gap up to what was notified
                async with deps.ctx.pool.acquire() as conn:
                    rows = await store.events_between(conn, tenant, chat["id"], last, min(target, last + REPLAY_BATCH))
                if not rows:
                    break
                for seq, kind, data in rows:
                    if kind == "chat":
                        countdown_ends = _when(data.get("countdown_ends_at"))
                    last = seq
                    yield _stored(actor, seq, kind, data)
            if countdown_ends is not None and now() >= next_tick:
                left = math.ceil((countdown_ends - now()).total_seconds())
                if left >= 0:
                    yield Tick(left, countdown_ends)
                next_tick = now() + timedelta(seconds=1)
            timeout = (next_tick - now()).total_seconds() if countdown_ends is not None else POLL_SECONDS
            item = await subscription.next(max(timeout, 0.01))
            if item is None or item is RESYNC:  # a quiet spell, or the listener reconnected
                async with deps.ctx.pool.acquire() as conn:
                    target = max(target, await store.last_seq(conn, tenant, chat["id"]) or 0)
            elif isinstance(item, Wake):
                if item.row and item.seq == last + 1 and target <= item.seq:  # in order: no database read
                    last = target = item.seq
                    yield _stored(actor, item.seq, "message", json.loads(item.row))
                target = max(target, item.seq)
            elif isinstance(item, Typing) and item.sender_id != actor.sub:
                if not (customer_side and item.sender_kind == "agent"):
                    yield item


def _stored(actor: Actor, seq: int, kind: str, data: dict) -> Stored:
    if kind == "message" and not visible(actor.role, data):
        return Stored(seq, "hidden", {})
    return Stored(seq, kind, data)


def _when(value) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value) if isinstance(value, str) else value
