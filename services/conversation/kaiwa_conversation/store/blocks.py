"""Conversation's copy of the block list (VIS-05) and the chats a block covers."""

from __future__ import annotations

import uuid

import asyncpg

# A block covers a chat from a blocked address (web) or a blocked thread (messaging).
COVERS = (
    "((b.kind = 'ip' AND c.visitor_ip <> '' AND c.visitor_ip::inet <<= b.network) "
    "OR (b.kind = 'thread' AND b.channel = c.channel AND b.thread_id = c.visitor_id))"
)


async def is_blocked(conn: asyncpg.Connection, tenant: str, ip: str, channel: str, visitor_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM blocks WHERE tenant = $1 AND ((kind = 'ip' AND $2 <> '' AND $2::inet <<= network) "
            "OR (kind = 'thread' AND channel = $3 AND thread_id = $4)) LIMIT 1",
            tenant,
            ip,
            channel,
            visitor_id,
        )
    )


async def add_block(
    conn: asyncpg.Connection, tenant: str, block_id: str, kind: str, network: str, channel: str, thread_id: str
) -> None:
    await conn.execute(
        "INSERT INTO blocks (tenant, id, kind, network, channel, thread_id) VALUES ($1, $2, $3, $4::cidr, $5, $6) "
        "ON CONFLICT DO NOTHING",
        tenant,
        uuid.UUID(block_id),
        kind,
        network or None,
        channel,
        thread_id,
    )


async def remove_block(conn: asyncpg.Connection, tenant: str, block_id: str) -> None:
    await conn.execute("DELETE FROM blocks WHERE tenant = $1 AND id = $2", tenant, uuid.UUID(block_id))


async def chats_covered(conn: asyncpg.Connection, tenant: str, block_id: str) -> list[uuid.UUID]:
    """Chats not ended that the block covers, in id order (the order they are locked in)."""
    rows = await conn.fetch(
        f"SELECT c.id FROM chats c JOIN blocks b ON b.tenant = c.tenant AND b.id = $2 "
        f"WHERE c.tenant = $1 AND c.state <> 'ended' AND {COVERS} ORDER BY c.id",
        tenant,
        uuid.UUID(block_id),
    )
    return [r["id"] for r in rows]


async def blocked_chats(conn: asyncpg.Connection, tenant: str) -> list[dict]:
    rows = await conn.fetch(
        "SELECT id, visitor_ip, channel, visitor_id FROM chats WHERE tenant = $1 AND visitor_blocked ORDER BY id", tenant
    )
    return [dict(r) for r in rows]
