"""Agents invited into a chat (participants; the owner is the chat's agent_id)."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Connection


async def add(conn: Conn, tenant: str, chat_id: str, agent_id: str, invited_by: str | None, note: str) -> bool:
    """False: the agent is in the chat already."""
    return bool(
        await conn.fetchval(
            "INSERT INTO chat_members (tenant, chat_id, agent_id, invited_by, note) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT DO NOTHING RETURNING true",
            tenant,
            chat_id,
            agent_id,
            invited_by,
            note,
        )
    )


async def of_chat(conn: Conn, tenant: str, chat_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT a.id, a.name, a.email, a.availability, m.joined_at FROM chat_members m "
        "JOIN agents a ON a.tenant = m.tenant AND a.id = m.agent_id "
        "WHERE m.tenant = $1 AND m.chat_id = $2 ORDER BY m.joined_at, a.email",
        tenant,
        chat_id,
    )


async def is_member(conn: Conn, tenant: str, chat_id: str, agent_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM chat_members WHERE tenant = $1 AND chat_id = $2 AND agent_id = $3", tenant, chat_id, agent_id
        )
    )
