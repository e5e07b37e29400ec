"""VIS-07 and VIS-06 live: StreamArrivals (agents: a lead or contact arrives, a trigger
asks an agent to act) and StreamPrompts (a visitor's widget: a trigger opens the chat).
Both wait on the replica's LISTEN fan-out (wakeups.py) and read what a notification
names from the database; arrivals start with the leads and contacts on the site now."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import AsyncIterator

from kaiwa_common.fanout import RESYNC

from . import store
from .context import Deps
from .domain.model import Visit
from .wakeups import ARRIVALS, PROMPTS, RECHECK

ONLINE_WINDOW = 300.0


@dataclass(frozen=True)
class ArrivalItem:
    kind: str  # arrived, notify
    visit: Visit
    initial: bool = False
    trigger_id: str = ""
    message: str = ""
    agent_id: str = ""


@dataclass(frozen=True)
class PromptItem:
    trigger_id: str
    message: str
    visit_id: str
    url: str
    fired_at: object


def _owned(visit: Visit, owner: str) -> bool:
    crm = visit.visitor.crm if visit.visitor else None
    return not owner or (crm is not None and crm.owner == owner)


async def arrivals(deps: Deps, tenant: str, owner: str) -> AsyncIterator[ArrivalItem]:
    owner = owner.strip().lower()
    with deps.fanout.subscribe(ARRIVALS, tenant) as subscription:
        async with deps.ctx.pool.acquire() as conn:
            rows = await store.online(conn, tenant, ONLINE_WINDOW, ("lead", "contact"), 500)
        for row in rows:
            visit = store.visit_of(row, with_visitor=True)
            if _owned(visit, owner):
                yield ArrivalItem("arrived", visit, initial=True)
        while True:
            item = await subscription.next(timeout=RECHECK)
            if item is None or item is RESYNC:
                continue
            visit_id, trigger_id = item
            async with deps.ctx.pool.acquire() as conn:
                row = await store.visit_with_visitor(conn, tenant, uuid.UUID(visit_id))
                fired = await store.firing(conn, tenant, uuid.UUID(visit_id), uuid.UUID(trigger_id)) if trigger_id else None
            if row is None:
                continue
            visit = store.visit_of(row, with_visitor=True)
            if fired is not None:
                yield ArrivalItem("notify", visit, trigger_id=trigger_id, message=fired["message"], agent_id=fired["agent_id"])
            elif not trigger_id and _owned(visit, owner):
                yield ArrivalItem("arrived", visit)


async def prompts(deps: Deps, tenant: str, visitor_id: str) -> AsyncIterator[PromptItem]:
    async with deps.ctx.pool.acquire() as conn:
        target = await store.resolve(conn, tenant, visitor_id)
    key = f"{tenant}/{target or visitor_id}"
    with deps.fanout.subscribe(PROMPTS, key) as subscription:
        while True:
            item = await subscription.next(timeout=RECHECK)
            if item is None or item is RESYNC:
                continue
            visit_id, trigger_id = item
            async with deps.ctx.pool.acquire() as conn:
                fired = await store.firing(conn, tenant, uuid.UUID(visit_id), uuid.UUID(trigger_id))
            if fired is not None:
                yield PromptItem(trigger_id, fired["message"], visit_id, fired["url"], fired["fired_at"])
