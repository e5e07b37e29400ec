"""Offers and assignment (ROUT-02, ROUT-06): an agent's open offers (listed, or streamed
live), accepting or declining one, an offer that times out, and assigning a chat by hand
(an agent to themselves, an admin to anyone; reassigning an assigned chat)."""

from __future__ import annotations

import uuid
from typing import AsyncIterator

import asyncpg
from kaiwa.events.v1 import routing_pb2 as ev

from kaiwa_common import timers
from kaiwa_common.auth import AGENT, Identity
from kaiwa_common.errors import FailedPrecondition, InvalidArgument, PermissionDenied, parse_uuid

from . import store
from .arrivals import ChatNotKnownYet
from .assignment import assign
from .context import (
    Queue,
    Routing,
    agent_queues,
    calling_agent,
    find_agent,
    id_or_empty,
    kick,
    known_chat,
    locked_chat,
    queue_of,
    retry_timer_later,
    route_now,
    transaction,
)
from .domain.model import ASSIGNED, OFFER_TIMEOUT, QUEUED
from .transfers import drop_pending_transfer
from .wakeups import OFFERS, RECHECK_STREAMS, offers_key


async def list_offers(r: Routing, identity: Identity) -> list[asyncpg.Record]:
    async with r.pool.acquire() as conn:
        me = await calling_agent(conn, identity)
        return await store.offers.of_agent(conn, identity.tenant, str(me["id"]))


async def offer_updates(r: Routing, identity: Identity) -> AsyncIterator[tuple[asyncpg.Record, bool]]:
    """The calling agent's open offers, then every new offer and withdrawal, as
    (offer, withdrawn). Woken by NOTIFY from any replica; re-reads the offers each time."""
    tenant = identity.tenant
    async with r.pool.acquire() as conn:
        agent_id = str((await calling_agent(conn, identity))["id"])
    known: dict[str, asyncpg.Record] = {}
    with r.fanout.subscribe(OFFERS, offers_key(tenant, agent_id)) as woken:
        while True:
            async with r.pool.acquire() as conn:
                current = {str(row["chat_id"]): row for row in await store.offers.of_agent(conn, tenant, agent_id)}
            for chat_id, offer in current.items():
                if chat_id not in known:
                    yield offer, False
            for chat_id, offer in known.items():
                if chat_id not in current:
                    yield offer, True
            known = current
            await woken.next(RECHECK_STREAMS)


async def accept_chat(r: Routing, identity: Identity, chat_id: str) -> asyncpg.Record:
    """The checks, the assignment and the withdrawals in one statement (store.offers.accept)."""
    tenant = identity.tenant
    chat_uuid = parse_uuid(chat_id, "chat_id")
    try:
        me = str(uuid.UUID(identity.sub))
    except ValueError:
        me = None

    async def work(conn):
        if me is None:  # still after the chat's existence, like every other check order
            await locked_chat(conn, tenant, chat_uuid)
            raise PermissionDenied(f"token subject {identity.sub!r} is not an agent of this portal")
        row = await store.offers.accept(conn, tenant, chat_uuid, me)
        if row["outcome"] == "no_chat":
            raise ChatNotKnownYet(chat_uuid)
        _refuse_unless_accepted(row, chat_id, me, identity)
        await r.outbox.add(
            conn,
            tenant,
            ev.ChatAssigned(
                chat_id=str(row["id"]),
                agent_id=me,
                agent_name=row["agent_name"],
                previous_agent_id="",
                how="accepted",
                department_id=id_or_empty(row["department_id"]),
            ),
        )
        queues: list[Queue] = [queue_of(tenant, d) for d in row["freed_departments"]]
        if row["withdrawn"]:  # ring all: the others' slots are free again
            queues.append(queue_of(tenant, row["department_id"]))
        return row, queues

    chat, queues = await r.arrivals.run_for_chat(tenant, chat_uuid, lambda: transaction(r, work))
    kick(r, queues)
    return chat


def _refuse_unless_accepted(row: asyncpg.Record, chat_id: str, me: str, identity: Identity) -> None:
    """The refusal for each `outcome` of accept_offer (nothing was written then)."""
    outcome = row["outcome"]
    if outcome == "no_agent":
        raise PermissionDenied(f"token subject {identity.sub!r} is not an agent of this portal")
    if outcome == "not_queued":
        if row["state"] == ASSIGNED:
            who = "you" if str(row["agent_id"]) == me else "another agent"
            raise FailedPrecondition(f"chat {chat_id} is already taken by {who}")
        raise FailedPrecondition(f"chat {chat_id} is {row['state']}, not waiting for an agent")
    if outcome == "not_offered":
        raise FailedPrecondition(f"chat {chat_id} is not offered to you")
    if outcome == "agent_unable":
        if row["agent_availability"] != "online":
            raise FailedPrecondition(f"agent {row['agent_email']} is {row['agent_availability']}")
        raise FailedPrecondition(f"agent {row['agent_email']} is at their maximum of {row['agent_max']} chats")


async def decline_chat(r: Routing, identity: Identity, chat_id: str, reason: str) -> None:
    tenant = identity.tenant
    chat_id = parse_uuid(chat_id, "chat_id")
    reason = (reason or "").strip()[:500] or "declined"

    async def work(conn):
        chat = await locked_chat(conn, tenant, chat_id)
        me = str((await calling_agent(conn, identity))["id"])
        refused = await store.offers.refusal(conn, tenant, chat["id"], me)
        if refused is not None and refused["declined"]:
            raise FailedPrecondition(f"you already declined chat {chat_id}")
        if chat["state"] != QUEUED or not await store.offers.withdraw(conn, tenant, chat["id"], me):
            raise FailedPrecondition(f"chat {chat_id} is not offered to you")
        await store.offers.record_refusal(conn, tenant, chat["id"], me, reason, True)
        await timers.cancel(conn, tenant, OFFER_TIMEOUT, str(chat["id"]))
        await store.offers.wake_agent(conn, tenant, me)
        await r.outbox.add(conn, tenant, ev.OfferDeclined(chat_id=str(chat["id"]), agent_id=me, reason=reason))
        return [queue_of(tenant, chat["department_id"])] + await agent_queues(conn, tenant, me)

    kick(r, await r.arrivals.run_for_chat(tenant, chat_id, lambda: transaction(r, work)))


async def on_offer_timeout(r: Routing, timer, conn) -> None:
    """The agent did not answer in time: the chat goes to the next candidate."""
    locked, chat = await store.chats.try_lock(conn, timer.tenant, timer.key)
    if not locked:
        return await retry_timer_later(conn, timer)
    agent_id = timer.payload.get("agent_id")
    if chat is None or chat["state"] != QUEUED or not await store.offers.withdraw(conn, timer.tenant, chat["id"], agent_id):
        return
    await store.offers.record_refusal(conn, timer.tenant, chat["id"], agent_id, "timeout", False)
    await store.offers.wake_agent(conn, timer.tenant, agent_id)
    await r.outbox.add(conn, timer.tenant, ev.OfferDeclined(chat_id=timer.key, agent_id=agent_id, reason="timeout"))
    await route_now(r, conn, [queue_of(timer.tenant, chat["department_id"])])


async def get_assignment(r: Routing, tenant: str, chat_id: str) -> asyncpg.Record:
    chat_id = parse_uuid(chat_id, "chat_id")

    async def look():
        async with r.pool.acquire() as conn:
            return await known_chat(conn, tenant, chat_id)

    return await r.arrivals.run_for_chat(tenant, chat_id, look)


async def assign_chat(r: Routing, identity: Identity, chat_id: str, agent_id: str, agent_email: str) -> asyncpg.Record:
    """Assigns a waiting chat or reassigns an assigned one; a pending transfer of it ends."""
    tenant = identity.tenant
    chat_id = parse_uuid(chat_id, "chat_id")
    if agent_id and agent_email:
        raise InvalidArgument("give agent_id or agent_email, not both")

    async def work(conn):
        chat = await locked_chat(conn, tenant, chat_id)
        if agent_id or agent_email:
            target = await find_agent(conn, tenant, agent_id, agent_email)
        elif identity.role == AGENT:
            target = await calling_agent(conn, identity)
        else:
            raise InvalidArgument("agent_id or agent_email is required")
        if chat["state"] == QUEUED:
            how, previous = "assigned", None
        elif chat["state"] == ASSIGNED:
            if chat["agent_id"] == target["id"]:
                raise FailedPrecondition(f"chat {chat_id} is already assigned to {target['email']}")
            how, previous = "reassigned", str(chat["agent_id"])
        else:
            raise FailedPrecondition(f"chat {chat_id} is {chat['state']}; only waiting or assigned chats can be assigned")
        assigned, queues = await assign(r, conn, tenant, chat, target, how, previous)
        await drop_pending_transfer(conn, tenant, chat["id"], "chat was reassigned")
        return assigned, queues

    chat, queues = await r.arrivals.run_for_chat(tenant, chat_id, lambda: transaction(r, work))
    kick(r, queues)
    return chat
