"""Transfers of a chat to an agent or a department, and the declines of a department's
agents (a department's transfer is open until one accepts or all decline)."""

from __future__ import annotations

import uuid

import asyncpg

Conn = asyncpg.Connection


async def insert(
    conn: Conn, tenant: str, chat_id: str, from_agent: str, to_agent: str | None, to_department: str | None, note: str
) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO transfers (id, tenant, chat_id, from_agent_id, to_agent_id, to_department_id, note) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        str(uuid.uuid4()),
        tenant,
        chat_id,
        from_agent,
        to_agent,
        to_department,
        note,
    )


async def get(conn: Conn, tenant: str, transfer_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM transfers WHERE tenant = $1 AND id = $2", tenant, transfer_id)


async def lock(conn: Conn, tenant: str, transfer_id: str) -> asyncpg.Record | None:
    """The transfer under its row lock (taken after its chat's, in the chat-first lock order)."""
    return await conn.fetchrow("SELECT * FROM transfers WHERE tenant = $1 AND id = $2 FOR UPDATE", tenant, transfer_id)


async def pending_of_chat(conn: Conn, tenant: str, chat_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM transfers WHERE tenant = $1 AND chat_id = $2 AND state = 'pending'", tenant, chat_id
    )


async def finish(conn: Conn, tenant: str, transfer_id: str, state: str, answered_by: str | None, reason: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE transfers SET state = $3, answered_by = $4, decline_reason = $5, answered_at = now() "
        "WHERE tenant = $1 AND id = $2 RETURNING *",
        tenant,
        transfer_id,
        state,
        answered_by,
        reason,
    )


async def record_decline(conn: Conn, tenant: str, transfer_id: str, agent_id: str, reason: str) -> None:
    """A department member's decline (the transfer stays open to the others)."""
    await conn.execute(
        "INSERT INTO transfer_declines (tenant, transfer_id, agent_id, reason) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        tenant,
        transfer_id,
        agent_id,
        reason,
    )


async def has_declined(conn: Conn, tenant: str, transfer_id: str, agent_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM transfer_declines WHERE tenant = $1 AND transfer_id = $2 AND agent_id = $3",
            tenant,
            transfer_id,
            agent_id,
        )
    )


async def left_to_answer(conn: Conn, tenant: str, transfer: asyncpg.Record) -> int:
    """Online agents of the target department who could still accept the transfer."""
    return await conn.fetchval(
        "SELECT count(*) FROM agents a JOIN department_agents da "
        "  ON da.tenant = a.tenant AND da.agent_id = a.id AND da.department_id = $2 "
        "WHERE a.tenant = $1 AND a.availability = 'online' AND a.id <> $3 "
        "AND a.id NOT IN (SELECT agent_id FROM transfer_declines WHERE tenant = $1 AND transfer_id = $4)",
        tenant,
        transfer["to_department_id"],
        transfer["from_agent_id"],
        transfer["id"],
    )


async def waiting_for(conn: Conn, tenant: str, agent_id: str) -> list[asyncpg.Record]:
    """Pending transfers this agent may answer: to them, or to a department of theirs they
    have not declined."""
    return await conn.fetch(
        "SELECT t.* FROM transfers t WHERE t.tenant = $1 AND t.state = 'pending' AND t.from_agent_id <> $2 AND "
        "(t.to_agent_id = $2 OR (t.to_department_id IN "
        "  (SELECT department_id FROM department_agents WHERE tenant = $1 AND agent_id = $2) "
        "AND NOT EXISTS (SELECT 1 FROM transfer_declines d WHERE d.tenant = $1 AND d.transfer_id = t.id "
        "  AND d.agent_id = $2))) ORDER BY t.created_at",
        tenant,
        agent_id,
    )
