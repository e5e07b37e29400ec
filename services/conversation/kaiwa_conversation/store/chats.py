"""Chats and their participants (asyncpg). Every query is scoped by tenant."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def insert_chat(conn: asyncpg.Connection, tenant: str, chat: dict) -> dict:
    row = await conn.fetchrow(
        "INSERT INTO chats (tenant, id, channel, state, department_id, visitor_id, visitor_name, visitor_email, "
        "question, bot_id, last_inbound_at, visitor_ip, form_fields) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), $11, $12) "
        "RETURNING *",
        tenant,
        chat["id"],
        chat["channel"],
        chat["state"],
        chat["department_id"],
        chat["visitor_id"],
        chat["visitor_name"],
        chat["visitor_email"],
        chat["question"],
        chat["bot_id"],
        chat.get("visitor_ip", ""),
        chat.get("form_fields") or {},
    )
    return dict(row)


async def request_result(conn: asyncpg.Connection, tenant: str, scope: str, request_id: str, fingerprint: str) -> str | None:
    """What an earlier call with this request id created (same request only); see
    kaiwa_common.idempotency, which claims and records these rows."""
    return await conn.fetchval(
        "SELECT result_id FROM request_ids WHERE tenant = $1 AND scope = $2 AND request_id = $3 AND fingerprint = $4",
        tenant,
        scope,
        request_id,
        fingerprint,
    )


async def get_chat(conn: asyncpg.Connection, tenant: str, chat_id: str, lock: bool = False) -> dict | None:
    row = await conn.fetchrow(
        "SELECT * FROM chats WHERE tenant = $1 AND id = $2" + (" FOR UPDATE" if lock else ""), tenant, chat_id
    )
    return dict(row) if row else None


async def get_chat_versioned(conn: asyncpg.Connection, tenant: str, chat_id) -> tuple[dict, str] | None:
    """The chat and its row version (see snapshots.py), for append_if_unchanged."""
    row = await conn.fetchrow(
        "SELECT c.*, md5(c::text) AS row_version FROM chats c WHERE tenant = $1 AND id = $2", tenant, chat_id
    )
    if row is None:
        return None
    chat = dict(row)
    return chat, chat.pop("row_version")


async def save_chat(conn: asyncpg.Connection, chat: dict, changed: set[str], notify_channel: str) -> None:
    """Write the changed fields and wake the chat's live watchers (delivered at commit)."""
    fields = sorted(changed | {"last_seq"})
    sets = ", ".join(f"{f} = ${i + 3}" for i, f in enumerate(fields))
    await conn.execute(
        f"WITH u AS (UPDATE chats SET {sets} WHERE tenant = $1 AND id = $2 RETURNING last_seq) "
        f"SELECT pg_notify('{notify_channel}', $2::text || ' ' || u.last_seq) FROM u",
        chat["tenant"],
        chat["id"],
        *[chat[f] for f in fields],
    )


async def participants(conn: asyncpg.Connection, tenant: str, chat_ids: list) -> dict[str, list[dict]]:
    rows = await conn.fetch(
        "SELECT * FROM participants WHERE tenant = $1 AND chat_id = ANY($2::uuid[]) ORDER BY joined_at, agent_id",
        tenant,
        chat_ids,
    )
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(str(r["chat_id"]), []).append(dict(r))
    return out


async def participants_of(conn: asyncpg.Connection, tenant: str, chat_id) -> list[dict]:
    """The participants of one chat, in the order they joined."""
    return (await participants(conn, tenant, [chat_id])).get(str(chat_id), [])


async def has_agent(conn, tenant: str, chat_id, agent_id: str, owner_only: bool) -> bool:
    """The chat's agent is `agent_id` (or, unless owner_only, an invited participant is)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM chats WHERE tenant = $1 AND id = $2 AND agent_id = $3) OR (NOT $4 AND EXISTS "
            "(SELECT 1 FROM participants WHERE tenant = $1 AND chat_id = $2 AND agent_id = $3 AND role <> 'former'))",
            tenant,
            chat_id,
            agent_id,
            owner_only,
        )
    )


async def upsert_participant(conn, tenant: str, chat_id, agent_id: str, name: str, role: str) -> None:
    await conn.execute(
        "INSERT INTO participants (tenant, chat_id, agent_id, name, role) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (tenant, chat_id, agent_id) DO UPDATE SET role = EXCLUDED.role, left_at = NULL, "
        "name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE participants.name END, "
        "joined_at = CASE WHEN participants.role = 'former' THEN now() ELSE participants.joined_at END",
        tenant,
        chat_id,
        agent_id,
        name,
        role,
    )


async def leave(conn, tenant: str, chat_id, agent_id: str) -> None:
    await conn.execute(
        "UPDATE participants SET role = 'former', left_at = now() "
        "WHERE tenant = $1 AND chat_id = $2 AND agent_id = $3 AND role <> 'former'",
        tenant,
        chat_id,
        agent_id,
    )


async def chats_page(
    conn,
    tenant: str,
    *,
    visitor_id: str | None = None,
    agent_id: str | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 20,
) -> list[dict]:
    if visitor_id is not None:
        source, arg = "SELECT c.* FROM chats c WHERE c.tenant = $1 AND c.visitor_id = $2", visitor_id
    else:
        source = (
            "SELECT c.* FROM chats c JOIN participants p ON p.chat_id = c.id AND p.tenant = c.tenant "
            "WHERE c.tenant = $1 AND p.agent_id = $2"
        )
        arg = agent_id
    rows = await conn.fetch(
        source + " AND ($3::timestamptz IS NULL OR (c.started_at, c.id) < ($3, $4::uuid)) "
        "ORDER BY c.started_at DESC, c.id DESC LIMIT $5",
        tenant,
        arg,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    return [dict(r) for r in rows]


async def last_seq(conn, tenant: str, chat_id) -> int | None:
    return await conn.fetchval("SELECT last_seq FROM chats WHERE tenant = $1 AND id = $2", tenant, chat_id)
