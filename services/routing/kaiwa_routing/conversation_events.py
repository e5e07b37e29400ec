"""Routing's consumer of the conversation service's events: how routing learns chats and
when they leave it.

    chat_started (queued)  -> the chat is queued and routed (a bot's chat waits: state bot)
    bot_handed_over        -> the bot's chat is queued, for the department of the hand-over
    chat_ended/completed   -> its agent's slot is free, offers withdrawn, the queue pulled
    chat_reopened          -> back to its agent when they can take it, else queued

A chat to be queued for a department routing does not know becomes missed at once
(reason unknown_department; README "Unknown departments").
"""

from __future__ import annotations

import logging
import uuid

from kaiwa.events.v1 import routing_pb2 as ev

from kaiwa_common.consumer import ConsumerSpec
from kaiwa_common.errors import FailedPrecondition, PermanentEventError

from . import store
from .assignment import assign, release
from .context import Routing, queue_of, route_now
from .domain.model import ASSIGNED, BOT, ENDED, MISSED, UNKNOWN_DEPARTMENT
from .queue import enqueue
from .transfers import drop_pending_transfer

log = logging.getLogger("kaiwa.routing")

EVENTS = ["chat_started", "bot_handed_over", "chat_ended", "chat_completed", "chat_reopened"]


def consumer(r: Routing) -> ConsumerSpec:
    handlers = {
        "chat_started": on_chat_started,
        "bot_handed_over": on_bot_handed_over,
        "chat_ended": on_chat_ended,
        "chat_completed": on_chat_ended,
        "chat_reopened": on_chat_reopened,
    }

    async def on_event(event, conn):
        await handlers[event.type](r, event, conn)

    return ConsumerSpec("routing-conversation", "conversation", EVENTS, on_event)


def _chat_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise PermanentEventError(f"chat id {value!r} is not a UUID") from None


async def _department_of(conn, tenant: str, given: str) -> tuple[str | None, bool]:
    """(the department id, None for a chat without one; whether routing knows it)."""
    if not given:
        return None, True
    try:
        department_id = str(uuid.UUID(given))
    except ValueError:
        return None, False
    return department_id, await store.departments.get(conn, tenant, department_id) is not None


async def _refuse_unknown_department(r: Routing, conn, tenant: str, chat_id: str, given: str) -> None:
    """A chat that is to wait for a department routing does not know (not of this tenant,
    never created, or no id at all) becomes a missed chat at once, reason
    `unknown_department`, published as chat_missed: the conversation service ends it
    like any missed chat and ListMissedChats shows it. It never rings agents of other
    departments, and the outcome does not depend on what happens to exist later.
    Conversation asks GetDepartment before StartChat, so this only meets events from
    before that check or from a defect, hence the warning."""
    log.warning(
        "chat for a department routing does not know: missed at once",
        extra={"fields": {"tenant": tenant, "chat_id": chat_id, "department_id": given}},
    )
    await store.chats.set_missed(conn, tenant, chat_id, UNKNOWN_DEPARTMENT, 0)
    await r.outbox.add(
        conn, tenant, ev.ChatMissed(chat_id=chat_id, department_id=given, reason=UNKNOWN_DEPARTMENT, waited_seconds=0)
    )


async def on_chat_started(r: Routing, event, conn) -> None:
    p = event.chat_started
    tenant = event.tenant
    chat_id = _chat_id(p.chat_id)
    department_id, known = await _department_of(conn, tenant, p.department_id)
    if not await store.chats.insert(
        conn, tenant, chat_id, department_id, BOT, p.visitor_id, p.visitor_name, p.visitor_email, p.question
    ):
        return  # already known: a redelivery, or the chat ended before we saw it start
    if p.state == "bot":
        return  # a bot has it; its department counts at the hand-over
    if known:
        await enqueue(r, conn, tenant, chat_id, department_id, p.visitor_email)
    else:
        await _refuse_unknown_department(r, conn, tenant, chat_id, p.department_id)


async def on_bot_handed_over(r: Routing, event, conn) -> None:
    p = event.bot_handed_over
    tenant = event.tenant
    chat_id = _chat_id(p.chat_id)
    department_id, known = await _department_of(conn, tenant, p.department_id)
    await store.chats.insert(conn, tenant, chat_id, department_id, BOT, p.visitor_id, "", p.visitor_email, p.summary)
    chat = await store.chats.lock(conn, tenant, chat_id)
    if chat["state"] != BOT:
        return
    if not p.department_id:  # handed over to the department the chat started with
        department_id, known = (str(chat["department_id"]) if chat["department_id"] else None), True
    if known:
        await enqueue(r, conn, tenant, chat_id, department_id, p.visitor_email or chat["visitor_email"])
    else:
        await _refuse_unknown_department(r, conn, tenant, chat_id, p.department_id)


async def on_chat_ended(r: Routing, event, conn) -> None:
    payload = event.chat_ended if event.type == "chat_ended" else event.chat_completed
    tenant = event.tenant
    chat_id = _chat_id(payload.chat_id)
    chat = await store.chats.lock(conn, tenant, chat_id)
    if chat is None:
        await store.chats.tombstone(conn, tenant, chat_id)
        return
    if chat["state"] in (ENDED, MISSED):
        return
    queues = [queue_of(tenant, chat["department_id"])]
    if chat["state"] == ASSIGNED:
        queues += await release(conn, tenant, chat["id"], chat["agent_id"])
    await store.offers.withdraw_of_chat(conn, tenant, chat["id"])
    await drop_pending_transfer(conn, tenant, chat["id"], "chat ended")
    await store.chats.set_ended(conn, tenant, chat["id"])
    await route_now(r, conn, queues)  # freed capacity pulls the queue


async def on_chat_reopened(r: Routing, event, conn) -> None:
    """Back to the agent who had it when they are online below their maximum, else queued."""
    p = event.chat_reopened
    tenant = event.tenant
    chat_id = _chat_id(p.chat_id)
    chat = await store.chats.lock(conn, tenant, chat_id)
    if chat is None:
        department_id, _ = await _department_of(conn, tenant, p.department_id)
        await store.chats.insert(conn, tenant, chat_id, department_id, ENDED, "", "", "", "")
        chat = await store.chats.lock(conn, tenant, chat_id)
    if chat["state"] not in (ENDED, MISSED):
        return
    if chat["department_id"] is not None:
        department_id, known = str(chat["department_id"]), True
    else:
        department_id, known = await _department_of(conn, tenant, p.department_id)
    if not known:
        return await _refuse_unknown_department(r, conn, tenant, chat_id, p.department_id)
    previous = await _agent_of_event(conn, tenant, p.agent_id)
    if previous is not None and previous["availability"] == "online" and previous["active_chats"] < previous["max_chats"]:
        await store.chats.enqueue(conn, tenant, chat["id"], department_id, chat["crm"], chat["priority"])
        chat = await store.chats.lock(conn, tenant, chat_id)
        try:
            async with conn.transaction():  # savepoint: at capacity after all -> the queue
                _, queues = await assign(r, conn, tenant, chat, previous, "assigned", None)
            await route_now(r, conn, queues)
            return
        except FailedPrecondition:
            pass
    await enqueue(r, conn, tenant, chat["id"], department_id, chat["visitor_email"])


async def _agent_of_event(conn, tenant: str, agent_id: str):
    try:
        return await store.agents.get_plain(conn, tenant, str(uuid.UUID(agent_id))) if agent_id else None
    except ValueError:
        return None
