"""Team messages: direct messages between agents and board posts (no recipient). A new
message wakes the tenant's StreamTeamMessages at commit (NOTIFY routing_team <tenant>)."""

from __future__ import annotations

import uuid

import asyncpg

from ..wakeups import TEAM, team_key

Conn = asyncpg.Connection

_WITH_SENDER = (
    "SELECT m.*, a.name AS from_name FROM team_messages m JOIN agents a ON a.tenant = m.tenant AND a.id = m.from_agent_id "
)


async def insert(conn: Conn, tenant: str, from_agent: str, to_agent: str | None, text: str) -> asyncpg.Record:
    """The message (with its sender's name); the tenant's streams are woken at commit."""
    row = await conn.fetchrow(
        "INSERT INTO team_messages (id, tenant, from_agent_id, to_agent_id, text) VALUES ($1, $2, $3, $4, $5) "
        "RETURNING *, (SELECT name FROM agents WHERE tenant = $2 AND id = $3) AS from_name",
        str(uuid.uuid4()),
        tenant,
        from_agent,
        to_agent,
        text,
    )
    await conn.execute("SELECT pg_notify($1, $2)", TEAM, team_key(tenant))
    return row


async def get(conn: Conn, tenant: str, message_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_WITH_SENDER + "WHERE m.tenant = $1 AND m.id = $2", tenant, message_id)


async def visible(
    conn: Conn, tenant: str, me: str, board: bool, with_agent: str | None, after_seq: int, limit: int
) -> list[asyncpg.Record]:
    """The board, the direct conversation with one agent, or (neither) everything visible to me."""
    if board:
        scope, args = "m.to_agent_id IS NULL", ()
    elif with_agent is not None:
        scope = "((m.from_agent_id = $4 AND m.to_agent_id = $5) OR (m.from_agent_id = $5 AND m.to_agent_id = $4))"
        args = (me, with_agent)
    else:
        scope, args = "(m.to_agent_id IS NULL OR m.to_agent_id = $4 OR m.from_agent_id = $4)", (me,)
    return await conn.fetch(
        _WITH_SENDER + f"WHERE m.tenant = $1 AND m.seq > $2 AND {scope} ORDER BY m.seq LIMIT $3", tenant, after_seq, limit, *args
    )
