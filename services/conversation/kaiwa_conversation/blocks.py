"""VIS-05 in conversation: its copy of the visitor service's block list, fed by the
visitor service's events (one durable consumer; effect and processed-event row in one
transaction):

    visitor_blocked    the block is copied; every chat not ended that it covers (web: the
                       address StartChat came from inside the range; messaging: the same
                       channel and thread) is flagged, so the visitor's further messages
                       are refused, and a live one gets the "visitor blocked" system
                       message naming the agent (as routing named them in the chat)
    visitor_unblocked  the copy is removed; chats no other block covers are unflagged,
                       and live ones get "visitor unblocked"

StartChat checks the copy in its transaction (start.py); SendMessage reads the chat's
flag, which it reads anyway (send.py). The window this leaves is the event's way here:
the outbox relay (woken by the commit's NOTIFY) and JetStream, normally milliseconds;
while NATS or this service is away, until the event arrives. The visitor service being
down never stops StartChat: the copy answers.
"""

from __future__ import annotations

import uuid

from kaiwa.events.v1.envelope_pb2 import Event

from kaiwa_common.consumer import ConsumerSpec
from kaiwa_common.errors import PermanentEventError

from . import store
from .domain import lifecycle as lc
from .unit_of_work import Deps, name_of, writing


async def blocked(deps: Deps, conn, tenant: str, p) -> None:
    await store.add_block(conn, tenant, p.block_id, p.kind, p.network, p.channel, p.thread_id)
    for chat_id in await store.chats_covered(conn, tenant, p.block_id):
        async with writing(deps, tenant, chat_id, conn) as w:
            if w.chat["visitor_blocked"]:
                continue
            w.set(visitor_blocked=True)
            if w.chat["state"] in lc.LIVE:
                await w.system("visitor_blocked", agent_name=await name_of(conn, w.chat, p.agent_id), reason=p.reason)
            await w.snapshot()


async def unblocked(deps: Deps, conn, tenant: str, p) -> None:
    covered = await store.chats_covered(conn, tenant, p.block_id)
    await store.remove_block(conn, tenant, p.block_id)
    for chat_id in covered:
        async with writing(deps, tenant, chat_id, conn) as w:
            chat = w.chat
            if not chat["visitor_blocked"] or await store.is_blocked(
                conn, tenant, chat["visitor_ip"], chat["channel"], chat["visitor_id"]
            ):
                continue
            w.set(visitor_blocked=False)
            if chat["state"] in lc.LIVE:
                await w.system("visitor_unblocked", agent_name=await name_of(conn, chat, p.agent_id))
            await w.snapshot()


def visitor_consumer(deps: Deps, durable: str) -> ConsumerSpec:
    async def handle(event: Event, conn) -> None:
        payload = getattr(event, event.type)
        try:
            uuid.UUID(payload.block_id)
        except ValueError:
            raise PermanentEventError(f"{event.type}: block_id {payload.block_id!r} is not a UUID") from None
        await {"visitor_blocked": blocked, "visitor_unblocked": unblocked}[event.type](deps, conn, event.tenant, payload)

    return ConsumerSpec(durable, "visitor", ["visitor_blocked", "visitor_unblocked"], handle)
