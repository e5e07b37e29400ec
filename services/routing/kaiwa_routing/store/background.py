"""The only statements across tenants: background work that serves every tenant (the
sweep, the position announcer) finds its queues here, then works tenant by tenant."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Connection


async def queues_with_chats(conn: Conn) -> list[asyncpg.Record]:
    """(tenant, department_id) of every queue with waiting chats, in every tenant."""
    return await conn.fetch("SELECT DISTINCT tenant, department_id FROM chats WHERE state = 'queued'")


async def forget_announcements(conn: Conn) -> None:
    """Announced positions of chats that no longer wait, in every tenant (joined on the
    tenant like everything else)."""
    await conn.execute(
        "DELETE FROM queue_announcements a USING chats c WHERE c.tenant = a.tenant AND c.id = a.chat_id AND c.state <> 'queued'"
    )
