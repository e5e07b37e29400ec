"""Waiting (ROUT-04, ROUT-05): putting a chat in its queue, its position and estimated
wait, the queue as staff see it, and missed chats (the maximum wait passed, nobody took
it). Positions reaching visitors as they change: announcer.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg
from kaiwa.events.v1 import routing_pb2 as ev

from kaiwa_common import timers
from kaiwa_common.auth import VISITOR, Identity
from kaiwa_common.errors import InvalidArgument, PermissionDenied, parse_uuid

from . import crm_client, store
from .context import Routing, department_filter, known_chat, retry_timer_later
from .domain.estimate import estimated_wait
from .domain.model import DEFAULT_MAX_WAIT, MAX_WAIT, QUEUED
from .domain.rules import first_match

LIST_LIMIT = (100, 1000)  # ListQueue, ListMissedChats: limit 0 takes the default; above the maximum is refused


@dataclass(frozen=True)
class QueuePosition:
    chat: asyncpg.Record
    position: int  # 0 when the chat does not wait
    estimated_wait_seconds: int


async def enqueue(r: Routing, conn, tenant: str, chat_id, department_id: str | None, visitor_email: str) -> None:
    """Put a chat in its queue (CRM facts, priority, maximum-wait timer) and route it, in
    the caller's transaction."""
    dept = await store.departments.get(conn, tenant, department_id)
    facts = None
    if visitor_email and ((dept is not None and dept["strategy"] == "crm_owner") or await store.rules.any_exist(conn, tenant)):
        facts = await crm_client.visitor_facts(r.ctx, tenant, visitor_email, r.settings.crm_timeout)
    rule = first_match(await store.rules.of_kind(conn, tenant, "priority"), "priority", department_id, facts)
    await store.chats.enqueue(conn, tenant, chat_id, department_id, facts, rule.order if rule else 0)
    max_wait = dept["max_wait_seconds"] if dept else DEFAULT_MAX_WAIT
    await timers.schedule(conn, tenant, MAX_WAIT, str(chat_id), delay=max_wait)
    await r.router.route_queue(conn, tenant, department_id)


async def queue_position(r: Routing, identity: Identity, chat_id: str) -> QueuePosition:
    tenant = identity.tenant
    chat_id = parse_uuid(chat_id, "chat_id")

    async def look():
        async with r.pool.acquire() as conn:
            chat = await known_chat(conn, tenant, chat_id)
            if identity.role == VISITOR and chat["visitor_id"] != identity.sub:
                raise PermissionDenied("a visitor may only ask about their own chat")
            if chat["state"] != QUEUED:
                return QueuePosition(chat, 0, 0)
            position = await store.queue.position(conn, tenant, chat)
            department_id = str(chat["department_id"]) if chat["department_id"] else None
            return QueuePosition(chat, position, await estimate(conn, tenant, department_id, position))

    return await r.arrivals.run_for_chat(tenant, chat_id, look)


async def estimate(conn, tenant: str, department_id: str | None, position: int) -> int:
    """Seconds a chat at this position should wait (domain/estimate.py)."""
    handling, accept = await store.queue.handling_stats(conn, tenant, department_id)
    overview = await store.agents.capacity_overview(conn, tenant, department_id)
    return estimated_wait(position, handling, accept, overview["capacity"], overview["free"])


def _limit(limit: int) -> int:
    default, maximum = LIST_LIMIT
    limit = limit or default
    if not 1 <= limit <= maximum:
        raise InvalidArgument(f"limit must be between 1 and {maximum}, got {limit}")
    return limit


async def list_queue(r: Routing, tenant: str, department_id: str, limit: int) -> list[asyncpg.Record]:
    limit = _limit(limit)
    async with r.pool.acquire() as conn:
        return await store.queue.with_positions(conn, tenant, await department_filter(conn, tenant, department_id), limit)


async def list_missed(r: Routing, tenant: str, department_id: str, limit: int) -> list[asyncpg.Record]:
    limit = _limit(limit)
    async with r.pool.acquire() as conn:
        return await store.queue.missed(conn, tenant, await department_filter(conn, tenant, department_id), limit)


async def on_max_wait(r: Routing, timer, conn) -> None:
    """Nobody took the chat in the department's maximum wait: a missed chat, with the reason."""
    tenant = timer.tenant
    locked, chat = await store.chats.try_lock(conn, tenant, timer.key)
    if not locked:
        return await retry_timer_later(conn, timer)
    if chat is None or chat["state"] != QUEUED:
        return
    department_id = str(chat["department_id"]) if chat["department_id"] else None
    overview = await store.agents.capacity_overview(conn, tenant, department_id)
    if await store.offers.was_offered(conn, tenant, chat["id"]):
        reason = "no_agent_accepted"
    elif overview["online"] == 0:
        reason = "no_agent_online"
    else:
        reason = "all_agents_busy"
    waited = int((datetime.now(timezone.utc) - chat["queued_at"]).total_seconds())
    await store.chats.set_missed(conn, tenant, chat["id"], reason, waited)
    await store.offers.withdraw_of_chat(conn, tenant, chat["id"])
    await r.outbox.add(
        conn, tenant, ev.ChatMissed(chat_id=timer.key, department_id=department_id or "", reason=reason, waited_seconds=waited)
    )
    await r.router.route_queue(conn, tenant, department_id)
