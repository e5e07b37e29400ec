"""Invitations and members (ROUT-07): the chat's agents invite another agent, who joins
as a participant (not counted against capacity) while the owner keeps the chat; members
are the owner and the participants, with their presence."""

from __future__ import annotations

import asyncpg
from kaiwa.events.v1 import routing_pb2 as ev

from kaiwa_common.auth import AGENT, VISITOR, Identity
from kaiwa_common.errors import FailedPrecondition, InvalidArgument, PermissionDenied, parse_uuid

from . import store
from .context import Routing, calling_agent, find_agent, known_chat, locked_chat, transaction
from .domain.model import ASSIGNED, note_text


async def invite_agent(r: Routing, identity: Identity, chat_id: str, email: str, agent_id: str, note: str) -> asyncpg.Record:
    """Its natural key is (chat, agent): a retry is refused as "already in this chat",
    never a second membership, so it takes no request id."""
    tenant = identity.tenant
    chat_id = parse_uuid(chat_id, "chat_id")
    if bool(email) == bool(agent_id):
        raise InvalidArgument("give exactly one of agent_email and agent_id")
    note = note_text(note)

    async def work(conn):
        chat = await locked_chat(conn, tenant, chat_id)
        if chat["state"] != ASSIGNED:
            raise FailedPrecondition(f"chat {chat_id} is {chat['state']}; agents can be invited into assigned chats only")
        by = str(chat["agent_id"])
        if identity.role == AGENT:
            me = await calling_agent(conn, identity)
            if me["id"] != chat["agent_id"] and not await store.members.is_member(conn, tenant, chat["id"], me["id"]):
                raise PermissionDenied("only the chat's agents can invite others into it")
            by = str(me["id"])
        target = await find_agent(conn, tenant, agent_id, email)
        if target["id"] == chat["agent_id"]:
            raise InvalidArgument(f"agent {target['email']} already has this chat")
        if target["availability"] != "online":
            raise FailedPrecondition(f"agent {target['email']} is {target['availability']}")
        if not await store.members.add(conn, tenant, chat["id"], target["id"], by, note):
            raise FailedPrecondition(f"agent {target['email']} is already in this chat")
        await r.outbox.add(
            conn,
            tenant,
            ev.AgentInvited(
                chat_id=str(chat["id"]), agent_id=str(target["id"]), agent_name=target["name"], by_agent_id=by, note=note
            ),
        )
        return target

    return await r.arrivals.run_for_chat(tenant, chat_id, lambda: transaction(r, work))


async def list_members(r: Routing, identity: Identity, chat_id: str) -> tuple[asyncpg.Record | None, list[asyncpg.Record]]:
    """(the owner, None while nobody has the chat; the participants)."""
    tenant = identity.tenant
    chat_id = parse_uuid(chat_id, "chat_id")

    async def look():
        async with r.pool.acquire() as conn:
            chat = await known_chat(conn, tenant, chat_id)
            if identity.role == VISITOR and chat["visitor_id"] != identity.sub:
                raise PermissionDenied("a visitor may only see the members of their own chat")
            owner = await store.agents.get(conn, tenant, chat["agent_id"]) if chat["agent_id"] else None
            return owner, await store.members.of_chat(conn, tenant, chat["id"])

    return await r.arrivals.run_for_chat(tenant, chat_id, look)
