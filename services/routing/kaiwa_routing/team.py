"""Team messaging (ROUT-08): direct messages between agents and a team board, listed or
streamed live (resumable after a sequence number)."""

from __future__ import annotations

from typing import AsyncIterator

import asyncpg

from kaiwa_common.auth import Identity
from kaiwa_common.errors import InvalidArgument
from kaiwa_common.idempotency import claim_request, fingerprint_of

from . import store
from .context import Routing, calling_agent, find_agent, transaction
from .wakeups import RECHECK_STREAMS, TEAM, team_key

MAX_TEXT = 4000
LIST_LIMIT = (50, 500)  # ListTeamMessages: limit 0 takes the default; above the maximum is refused
STREAM_PAGE = 500


async def send_team_message(
    r: Routing, identity: Identity, to_id: str, to_email: str, text: str, request_id: str = ""
) -> asyncpg.Record:
    """A direct message or a board post. A retry with the same request_id returns the
    message the first call sent instead of sending it twice."""
    text = (text or "").strip()
    if not text:
        raise InvalidArgument("text is required")
    if len(text) > MAX_TEXT:
        raise InvalidArgument(f"text is longer than {MAX_TEXT} characters")
    if to_id and to_email:
        raise InvalidArgument("give to_agent_id or to_agent_email, not both")
    tenant = identity.tenant

    async def work(conn):
        me = await calling_agent(conn, identity)
        claim = await claim_request(
            conn, tenant, "SendTeamMessage", request_id, fingerprint_of(str(me["id"]), to_id, to_email.strip().lower(), text)
        )
        if claim.result_id:
            return await store.team.get(conn, tenant, claim.result_id)
        to = None
        if to_id or to_email:
            target = await find_agent(conn, tenant, to_id, to_email, what="recipient")
            if target["id"] == me["id"]:
                raise InvalidArgument("cannot send a direct message to yourself")
            to = target["id"]
        row = await store.team.insert(conn, tenant, me["id"], to, text)
        await claim.record(conn, str(row["id"]))
        return row

    return await transaction(r, work)


async def list_team_messages(
    r: Routing, identity: Identity, board: bool, with_agent: str, after_seq: int, limit: int
) -> list[asyncpg.Record]:
    """The board, the direct conversation with one agent, or (neither) all the caller sees."""
    default, maximum = LIST_LIMIT
    limit = limit or default
    if not 1 <= limit <= maximum:
        raise InvalidArgument(f"limit must be between 1 and {maximum}, got {limit}")
    if after_seq < 0:
        raise InvalidArgument("after_seq cannot be negative")
    if board and with_agent:
        raise InvalidArgument("ask for the board or for one agent's conversation, not both")
    async with r.pool.acquire() as conn:
        me = await calling_agent(conn, identity)
        other = (await find_agent(conn, identity.tenant, agent_id=with_agent))["id"] if with_agent else None
        return await store.team.visible(conn, identity.tenant, me["id"], board, other, after_seq, limit)


async def team_message_stream(r: Routing, identity: Identity, after_seq: int) -> AsyncIterator[asyncpg.Record]:
    """Every message the caller sees after `after_seq`, then each new one as it is sent
    (woken by NOTIFY from any replica; the database is re-read each time)."""
    if after_seq < 0:
        raise InvalidArgument("after_seq cannot be negative")
    tenant = identity.tenant
    async with r.pool.acquire() as conn:
        agent_id = str((await calling_agent(conn, identity))["id"])
    last = after_seq
    with r.fanout.subscribe(TEAM, team_key(tenant)) as woken:
        while True:
            async with r.pool.acquire() as conn:
                rows = await store.team.visible(conn, tenant, agent_id, False, None, last, STREAM_PAGE)
            for row in rows:
                last = row["seq"]
                yield row
            if len(rows) < STREAM_PAGE:
                await woken.next(RECHECK_STREAMS)
