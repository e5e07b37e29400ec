"""The steps every way of giving a chat to an agent shares (assigning, reassigning,
accepting a transfer, a reopened chat going back to its agent), and of taking it back.

Capacity and ownership are settled by the database: the assignment is one conditional
`UPDATE agents ... WHERE active_chats < max_chats AND availability = 'online'` plus the
chat row update (store.assignments.assign), under the chat's row lock, in the caller's
transaction; constraints (capacity CHECK, one open assignment per chat) back it up.
"""

from __future__ import annotations

import asyncpg
from kaiwa.events.v1 import routing_pb2 as ev

from kaiwa_common import timers
from kaiwa_common.errors import FailedPrecondition

from . import store
from .context import Queue, Routing, agent_queues, id_or_empty, queue_of
from .domain.model import OFFER_TIMEOUT


async def assign(
    r: Routing, conn, tenant: str, chat: asyncpg.Record, target: asyncpg.Record, how: str, previous_agent_id: str | None
) -> tuple[asyncpg.Record, list[Queue]]:
    """Give a locked chat to an agent (from `previous_agent_id`, if it had one); returns the
    chat now and the queues to route again. FailedPrecondition when the agent cannot take
    it: the caller's transaction then rolls back whatever came before."""
    agent_id = str(target["id"])
    offers_taken = await store.offers.withdraw_of_chat(conn, tenant, chat["id"])
    queues: list[Queue] = []
    if previous_agent_id:
        # Two agents: lock both in id order, so crossing moves cannot deadlock.
        await store.agents.lock_for_move(conn, tenant, [agent_id, previous_agent_id])
        queues += await release(conn, tenant, chat["id"], previous_agent_id)
    assigned = await store.assignments.assign(conn, tenant, chat, agent_id, how, previous_agent_id)
    if assigned is None:
        if target["availability"] != "online":
            raise FailedPrecondition(f"agent {target['email']} is {target['availability']}")
        raise FailedPrecondition(f"agent {target['email']} is at their maximum of {target['max_chats']} chats")
    await r.outbox.add(
        conn,
        tenant,
        ev.ChatAssigned(
            chat_id=str(chat["id"]),
            agent_id=agent_id,
            agent_name=target["name"],
            previous_agent_id=previous_agent_id or "",
            how=how,
            department_id=id_or_empty(chat["department_id"]),
        ),
    )
    if any(a != agent_id for a in offers_taken):  # the others' slots are free again
        queues.append(queue_of(tenant, chat["department_id"]))
    if assigned["agent_active"] >= assigned["agent_max"]:  # full now: their open offers go to others
        queues += await withdraw_agent_offers(conn, tenant, agent_id)
    return assigned, queues


async def release(conn, tenant: str, chat_id, agent_id) -> list[Queue]:
    """The agent no longer has the chat: one slot free, the assignment ends. Returns the
    agent's queues (the free slot may take a waiting chat)."""
    await store.agents.release_capacity(conn, tenant, agent_id)
    await store.assignments.release(conn, tenant, chat_id)
    return await agent_queues(conn, tenant, str(agent_id))


async def withdraw_agent_offers(conn, tenant: str, agent_id: str) -> list[Queue]:
    """Every open offer of an agent (gone away, or full), with its timer; the agent's
    StreamOffers is woken. Returns the queues of those chats, to route again."""
    queues = []
    for row in await store.offers.withdraw_of_agent(conn, tenant, agent_id):
        await timers.cancel(conn, tenant, OFFER_TIMEOUT, str(row["chat_id"]))
        queues.append(queue_of(tenant, row["department_id"]))
    await store.offers.wake_agent(conn, tenant, agent_id)
    return queues
