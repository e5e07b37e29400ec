"""Transfers (ROUT-06): the chat's agent hands it to an agent (by e-mail) or a department
(by name) with a note; the target accepts or declines (a department's transfer is open
to its online agents until one accepts or all decline); no answer within the accept
timeout counts as a decline. A declined chat stays with its agent, or goes back to the
queue when that agent has gone offline."""

from __future__ import annotations

import asyncpg
from kaiwa.events.v1 import routing_pb2 as ev

from kaiwa_common import timers
from kaiwa_common.auth import AGENT, Identity
from kaiwa_common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, parse_uuid
from kaiwa_common.idempotency import claim_request, fingerprint_of

from . import store
from .assignment import assign, release
from .context import (
    Queue,
    Routing,
    calling_agent,
    find_agent,
    id_or_empty,
    kick,
    locked_chat,
    retry_timer_later,
    route_now,
    transaction,
)
from .domain.model import ASSIGNED, DEFAULT_ACCEPT_TIMEOUT, TRANSFER_TIMEOUT, note_text
from .queue import enqueue


async def transfer_chat(
    r: Routing, identity: Identity, chat_id: str, to_email: str, to_department: str, note: str, request_id: str = ""
) -> asyncpg.Record:
    """A transfer waiting for its target's answer. A retry with the same request_id
    returns the transfer the first call created (as it is now) instead of a second one."""
    tenant = identity.tenant
    chat_id = parse_uuid(chat_id, "chat_id")
    if bool(to_email) == bool(to_department):
        raise InvalidArgument("give exactly one of to_agent_email and to_department_name")
    note = note_text(note)
    fingerprint = fingerprint_of(identity.role, identity.sub, chat_id, to_email.strip().lower(), to_department.strip(), note)

    async def work(conn):
        chat = await locked_chat(conn, tenant, chat_id)
        claim = await claim_request(conn, tenant, "TransferChat", request_id, fingerprint)
        if claim.result_id:
            return await store.transfers.get(conn, tenant, claim.result_id)
        if chat["state"] != ASSIGNED:
            raise FailedPrecondition(f"chat {chat_id} is {chat['state']}; only an assigned chat can be transferred")
        owner = str(chat["agent_id"])
        if identity.role == AGENT and str((await calling_agent(conn, identity))["id"]) != owner:
            raise PermissionDenied("only the agent who has the chat can transfer it")
        if await store.transfers.pending_of_chat(conn, tenant, chat["id"]) is not None:
            raise FailedPrecondition(f"chat {chat_id} already has a transfer waiting for an answer")
        to_agent = to_dept = None
        if to_email:
            to_agent = await find_agent(conn, tenant, email=to_email)
            _check_can_take(to_agent, owner)
            dept = await store.departments.get(conn, tenant, chat["department_id"])  # its accept timeout applies
        else:
            dept = to_dept = await store.departments.by_name(conn, tenant, to_department.strip())
            if dept is None:
                raise NotFound(f"no department named {to_department!r}")
            if not [c for c in await store.agents.candidates(conn, tenant, str(dept["id"])) if c.agent_id != owner]:
                raise FailedPrecondition(f"no agent of department {dept['name']} is online with a free slot")
        row = await store.transfers.insert(
            conn,
            tenant,
            chat["id"],
            owner,
            str(to_agent["id"]) if to_agent else None,
            str(to_dept["id"]) if to_dept else None,
            note,
        )
        await claim.record(conn, str(row["id"]))
        timeout = dept["accept_timeout_seconds"] if dept else DEFAULT_ACCEPT_TIMEOUT
        await timers.schedule(conn, tenant, TRANSFER_TIMEOUT, str(row["id"]), delay=timeout)
        await r.outbox.add(
            conn,
            tenant,
            ev.TransferRequested(
                chat_id=str(chat["id"]),
                from_agent_id=owner,
                to_agent_id=id_or_empty(row["to_agent_id"]),
                to_agent_name=to_agent["name"] if to_agent else "",
                to_department_id=id_or_empty(row["to_department_id"]),
                to_department_name=to_dept["name"] if to_dept else "",
                note=note,
                transfer_id=str(row["id"]),
            ),
        )
        return row

    return await r.arrivals.run_for_chat(tenant, chat_id, lambda: transaction(r, work))


def _check_can_take(target: asyncpg.Record, owner: str) -> None:
    if str(target["id"]) == owner:
        raise InvalidArgument("cannot transfer a chat to the agent who already has it")
    if target["availability"] != "online":
        raise FailedPrecondition(f"agent {target['email']} is {target['availability']}")
    if target["active_chats"] >= target["max_chats"]:
        raise FailedPrecondition(f"agent {target['email']} is at their maximum of {target['max_chats']} chats")


async def answer_transfer(r: Routing, identity: Identity, transfer_id: str, accept: bool, reason: str) -> asyncpg.Record:
    tenant = identity.tenant
    transfer_id = parse_uuid(transfer_id, "transfer_id")
    reason = (reason or "").strip()[:500]
    queues: list[Queue] = []

    async def work(conn):
        found = await store.transfers.get(conn, tenant, transfer_id)
        if found is None:
            raise NotFound(f"transfer {transfer_id} does not exist")
        chat = await store.chats.lock(conn, tenant, found["chat_id"])
        t = await store.transfers.lock(conn, tenant, found["id"])
        me = await calling_agent(conn, identity)
        await _check_may_answer(conn, tenant, t, me)
        if not accept:
            if t["to_department_id"] is not None:
                await store.transfers.record_decline(conn, tenant, t["id"], me["id"], reason)
                if await store.transfers.left_to_answer(conn, tenant, t) > 0:
                    return t  # others of the department may still take it
            return await _declined(r, conn, tenant, t, chat, reason or "declined", me, queues)
        queues.extend((await assign(r, conn, tenant, chat, me, "transferred", str(t["from_agent_id"])))[1])
        await timers.cancel(conn, tenant, TRANSFER_TIMEOUT, str(t["id"]))
        return await store.transfers.finish(conn, tenant, t["id"], "accepted", me["id"], "")

    row = await transaction(r, work)
    kick(r, queues)
    return row


async def _check_may_answer(conn, tenant: str, t: asyncpg.Record, me: asyncpg.Record) -> None:
    my_id = str(me["id"])
    if t["state"] != "pending":
        raise FailedPrecondition(f"transfer {t['id']} was already {t['state']}")
    if t["to_agent_id"] is not None and str(t["to_agent_id"]) != my_id:
        raise PermissionDenied("this transfer is addressed to another agent")
    if t["to_department_id"] is not None:
        if my_id == str(t["from_agent_id"]) or not await store.departments.has_agent(
            conn, tenant, t["to_department_id"], me["id"]
        ):
            raise PermissionDenied("this transfer is addressed to a department you are not in")
        if await store.transfers.has_declined(conn, tenant, t["id"], me["id"]):
            raise FailedPrecondition(f"you already declined transfer {t['id']}")


async def _declined(
    r: Routing,
    conn,
    tenant: str,
    t: asyncpg.Record,
    chat: asyncpg.Record,
    reason: str,
    answered_by: asyncpg.Record | None,
    queues: list[Queue],
) -> asyncpg.Record:
    """The chat stays with its agent, or goes back to the queue when that agent has gone
    offline. `answered_by`: the agent who declined (None: nobody answered in time)."""
    await timers.cancel(conn, tenant, TRANSFER_TIMEOUT, str(t["id"]))
    row = await store.transfers.finish(conn, tenant, t["id"], "declined", answered_by["id"] if answered_by else None, reason)
    previous = await store.agents.get_plain(conn, tenant, t["from_agent_id"])
    returned = previous["availability"] == "offline" and chat["state"] == ASSIGNED and chat["agent_id"] == t["from_agent_id"]
    if returned:
        queues.extend(await release(conn, tenant, chat["id"], t["from_agent_id"]))
        department_id = str(chat["department_id"]) if chat["department_id"] else None
        await enqueue(r, conn, tenant, chat["id"], department_id, chat["visitor_email"])
    target = answered_by
    if target is None and t["to_agent_id"] is not None:
        target = await store.agents.get_plain(conn, tenant, t["to_agent_id"])
    department = await store.departments.get(conn, tenant, t["to_department_id"])
    await r.outbox.add(
        conn,
        tenant,
        ev.TransferDeclined(
            chat_id=str(chat["id"]),
            from_agent_id=str(t["from_agent_id"]),
            to_agent_id=id_or_empty(target and target["id"]),
            to_agent_name=target["name"] if target else "",
            note=t["note"],
            reason=reason,
            returned_to_queue=returned,
            transfer_id=str(t["id"]),
            to_department_id=id_or_empty(t["to_department_id"]),
            to_department_name=department["name"] if department else "",
        ),
    )
    return row


async def on_transfer_timeout(r: Routing, timer, conn) -> None:
    """Nobody answered within the accept timeout: declined ("timeout")."""
    found = await store.transfers.get(conn, timer.tenant, timer.key)
    if found is None or found["state"] != "pending":
        return
    locked, chat = await store.chats.try_lock(conn, timer.tenant, found["chat_id"])
    if not locked:
        return await retry_timer_later(conn, timer)
    t = await store.transfers.lock(conn, timer.tenant, found["id"])
    if t["state"] != "pending":
        return
    queues: list[Queue] = []
    await _declined(r, conn, timer.tenant, t, chat, "timeout", None, queues)
    await route_now(r, conn, queues)


async def drop_pending_transfer(conn, tenant: str, chat_id, reason: str) -> None:
    """The chat's pending transfer, if any, ends declined (the chat was reassigned or ended)."""
    pending = await store.transfers.pending_of_chat(conn, tenant, chat_id)
    if pending is not None:
        await store.transfers.finish(conn, tenant, pending["id"], "declined", None, reason)
        await timers.cancel(conn, tenant, TRANSFER_TIMEOUT, str(pending["id"]))


async def list_transfers(r: Routing, identity: Identity) -> list[asyncpg.Record]:
    """Pending transfers the calling agent may answer."""
    async with r.pool.acquire() as conn:
        me = await calling_agent(conn, identity)
        return await store.transfers.waiting_for(conn, identity.tenant, str(me["id"]))
