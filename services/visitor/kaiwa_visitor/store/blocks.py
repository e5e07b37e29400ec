"""Blocks (VIS-05)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from ..domain.model import Block
from ..domain.blocking import BlockTarget


def block_of(row) -> Block:
    return Block(
        id=str(row["id"]),
        kind=row["kind"],
        network=str(row["network"]) if row["network"] is not None else "",
        channel=row["channel"],
        thread_id=row["thread_id"],
        visitor_id=str(row["visitor_id"]) if row["visitor_id"] else "",
        reason=row["reason"],
        blocked_by=row["blocked_by"],
        created_at=row["created_at"],
        chat_id=row["chat_id"],
        unblocked_at=row["unblocked_at"],
        unblocked_by=row["unblocked_by"],
    )


async def last_ip(conn: asyncpg.Connection, tenant: str, visitor_id: uuid.UUID) -> str | None:
    """A visitor's last known address ("" if none), None for an unknown visitor."""
    row = await conn.fetchrow(
        "SELECT coalesce(t.last_ip, s.last_ip) AS ip FROM visitors s LEFT JOIN visitors t "
        "ON t.tenant = s.tenant AND t.id = s.merged_into WHERE s.tenant = $1 AND s.id = $2",
        tenant,
        visitor_id,
    )
    if row is None:
        return None
    return str(row["ip"]) if row["ip"] is not None else ""


async def insert_block(
    conn: asyncpg.Connection, tenant: str, t: BlockTarget, visitor_id: str, reason: str, by: str, chat_id: str
) -> tuple[Block, bool]:
    """(the block, True) or, if one is active for the same range or thread, (it, False)."""
    row = await conn.fetchrow(
        "INSERT INTO blocks (tenant, id, kind, network, channel, thread_id, visitor_id, reason, blocked_by, chat_id) "
        "VALUES ($1, $2, $3, $4::cidr, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING *",
        tenant,
        uuid.uuid4(),
        t.kind,
        t.network or None,
        t.channel,
        t.thread_id,
        uuid.UUID(visitor_id) if visitor_id else None,
        reason,
        by,
        chat_id,
    )
    if row is not None:
        return block_of(row), True
    row = await conn.fetchrow(
        "SELECT * FROM blocks WHERE tenant = $1 AND unblocked_at IS NULL AND kind = $2 "
        "AND network IS NOT DISTINCT FROM $3::cidr AND channel = $4 AND thread_id = $5",
        tenant,
        t.kind,
        t.network or None,
        t.channel,
        t.thread_id,
    )
    return block_of(row), False


async def unblock(conn: asyncpg.Connection, tenant: str, block_id: uuid.UUID, by: str) -> tuple[Block | None, bool]:
    """(the block, True if this call unblocked it); (None, False) for no such block."""
    row = await conn.fetchrow(
        "UPDATE blocks SET unblocked_at = now(), unblocked_by = $3 WHERE tenant = $1 AND id = $2 "
        "AND unblocked_at IS NULL RETURNING *",
        tenant,
        block_id,
        by,
    )
    if row is not None:
        return block_of(row), True
    row = await conn.fetchrow("SELECT * FROM blocks WHERE tenant = $1 AND id = $2", tenant, block_id)
    return (block_of(row) if row else None), False


async def list_blocks(
    conn: asyncpg.Connection, tenant: str, include_unblocked: bool, after: tuple[datetime, str] | None, limit: int
) -> list[Block]:
    when, ident = after or (None, None)
    rows = await conn.fetch(
        "SELECT * FROM blocks WHERE tenant = $1 AND ($2 OR unblocked_at IS NULL) "
        "AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid)) ORDER BY created_at DESC, id DESC LIMIT $5",
        tenant,
        include_unblocked,
        when,
        ident,
        limit,
    )
    return [block_of(r) for r in rows]
