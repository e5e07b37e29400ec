"""The assignment of a chat to an agent, and its history (the `assignments` rows, from
which estimates are drawn and the two-replica test checks capacity)."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Connection


async def assign(
    conn: Conn, tenant: str, chat: asyncpg.Record, agent_id: str, how: str, previous_agent_id: str | None
) -> asyncpg.Record | None:
    """The assignment in one statement: one more open chat for an agent who is online and
    below their maximum (conditional UPDATE), the chat theirs, the history row. Returns the
    chat row with the agent's new load (agent_active, agent_max); None when the agent cannot."""
    return await conn.fetchrow(
        "WITH agent AS (UPDATE agents SET active_chats = active_chats + 1, last_assigned_at = now() "
        "  WHERE tenant = $1 AND id = $2 AND availability = 'online' AND active_chats < max_chats "
        "  RETURNING active_chats, max_chats), "
        "chat AS (UPDATE chats SET state = 'assigned', agent_id = $2, assigned_at = now() "
        "  WHERE tenant = $1 AND id = $3 AND EXISTS (SELECT 1 FROM agent) RETURNING *), "
        # clock_timestamp(): taken under the agent's row lock, so the history orders like the locks did.
        "history AS (INSERT INTO assignments (tenant, chat_id, department_id, agent_id, how, previous_agent_id, "
        "  queued_at, assigned_at) SELECT $1, chat.id, chat.department_id, $2, $4, $5, $6, clock_timestamp() "
        "  FROM chat RETURNING id), "
        "member AS (DELETE FROM chat_members WHERE tenant = $1 AND chat_id = $3 AND agent_id = $2 "
        "  AND EXISTS (SELECT 1 FROM agent)) "
        "SELECT chat.*, agent.active_chats AS agent_active, agent.max_chats AS agent_max, "
        "  (SELECT count(*) FROM history) AS recorded FROM agent, chat",
        tenant,
        agent_id,
        chat["id"],
        how,
        previous_agent_id,
        chat["queued_at"] if how in ("accepted", "assigned") else None,
    )


async def release(conn: Conn, tenant: str, chat_id: str) -> None:
    """The chat's open assignment ends (its agent's capacity: agents.release_capacity)."""
    # clock_timestamp(): taken under the agent's row lock, so the history orders like the locks did.
    await conn.execute(
        "UPDATE assignments SET released_at = clock_timestamp() WHERE tenant = $1 AND chat_id = $2 AND released_at IS NULL",
        tenant,
        chat_id,
    )
