"""VIS-05: block an address or range (web), a visitor (its last address), or a thread on
a messaging channel; unblock; list. The block and its event commit together; the
conversation service applies `visitor_blocked`/`visitor_unblocked` to its own copy of
the block list, which StartChat and SendMessage check, and writes the "visitor blocked"
system message into the open chats it covers (README "Visitor tracking")."""

from __future__ import annotations

import uuid

from kaiwa.events.v1.visitor_pb2 import VisitorBlocked, VisitorUnblocked

from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import FailedPrecondition, InvalidArgument, NotFound, parse_uuid
from kaiwa_common.paging import PageLimits, decode_time_token, encode_token

from . import store
from .context import Actor, Deps
from .domain.blocking import BlockTarget, block_target, check_reason, network_of
from .domain.model import Block

PAGES = PageLimits(default=50, limit=500)


async def block(
    deps: Deps, actor: Actor, ip: str, visitor_id: str, channel: str, thread_id: str, reason: str, chat_id: str
) -> Block:
    target = block_target(ip.strip(), visitor_id.strip(), channel, thread_id)
    reason = check_reason(reason)
    if len(chat_id) > 64:
        raise InvalidArgument("chat_id: at most 64 characters", field="chat_id")
    async with unit_of_work(deps.ctx.pool) as conn:
        if target.kind == "visitor":
            visitor_id = parse_uuid(target.visitor_id, "visitor_id")
            address = await store.last_ip(conn, actor.tenant, uuid.UUID(visitor_id))
            if address is None:
                raise NotFound(f"visitor {visitor_id} not found")
            if not address:
                raise FailedPrecondition("this visitor has no known address to block; block their thread or an ip")
            target = BlockTarget("ip", network=network_of(address), visitor_id=visitor_id)
        made, new = await store.insert_block(conn, actor.tenant, target, target.visitor_id, reason, actor.sub, chat_id.strip())
        if new:
            event = VisitorBlocked(
                block_id=made.id, kind=made.kind, network=made.network, channel=made.channel, thread_id=made.thread_id,
                visitor_id=made.visitor_id, reason=reason, agent_id=actor.sub, chat_id=made.chat_id,
            )  # fmt: skip
            await deps.ctx.outbox.add(conn, actor.tenant, event)
    return made


async def unblock(deps: Deps, actor: Actor, block_id: str) -> Block:
    block_id = parse_uuid(block_id, "block_id")
    async with unit_of_work(deps.ctx.pool) as conn:
        made, changed = await store.unblock(conn, actor.tenant, uuid.UUID(block_id), actor.sub)
        if made is None:
            raise NotFound(f"block {block_id} not found")
        if changed:
            event = VisitorUnblocked(
                block_id=made.id, kind=made.kind, network=made.network, channel=made.channel, thread_id=made.thread_id,
                agent_id=actor.sub,
            )  # fmt: skip
            await deps.ctx.outbox.add(conn, actor.tenant, event)
    return made


async def list_blocks(
    deps: Deps, tenant: str, include_unblocked: bool, page_size: int, page_token: str
) -> tuple[list[Block], str]:
    size, after = PAGES.size(page_size), decode_time_token(page_token)
    if after is not None:
        parse_uuid(after[1], "page_token")
    async with deps.ctx.pool.acquire() as conn:
        blocks = await store.list_blocks(conn, tenant, include_unblocked, after, size + 1)
    token = encode_token((blocks[size - 1].created_at, blocks[size - 1].id)) if len(blocks) > size else ""
    return blocks[:size], token
