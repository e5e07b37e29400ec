"""A chat as routing sees it: learned from conversation's events, queued, assigned, ended
or missed. Its row lock comes first in every transaction that takes one (see __init__)."""

from __future__ import annotations

import asyncpg

from ..wakeups import CHATS

Conn = asyncpg.Connection


async def get(conn: Conn, tenant: str, chat_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM chats WHERE tenant = $1 AND id = $2", tenant, chat_id)


async def lock(conn: Conn, tenant: str, chat_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM chats WHERE tenant = $1 AND id = $2 FOR UPDATE", tenant, chat_id)


async def try_lock(conn: Conn, tenant: str, chat_id: str) -> tuple[bool, asyncpg.Record | None]:
    """(locked, row) without waiting: (False, None) when another transaction holds the chat."""
    row = await conn.fetchrow("SELECT * FROM chats WHERE tenant = $1 AND id = $2 FOR UPDATE SKIP LOCKED", tenant, chat_id)
    if row is not None:
        return True, row
    exists = await conn.fetchval("SELECT true FROM chats WHERE tenant = $1 AND id = $2", tenant, chat_id)
    return (False, None) if exists else (True, None)


async def insert(
    conn: Conn,
    tenant: str,
    chat_id: str,
    department_id: str | None,
    state: str,
    visitor_id: str,
    visitor_name: str,
    visitor_email: str,
    question: str,
) -> bool:
    """False when routing already knows the chat (a redelivered or late event). A new chat
    wakes, at commit, the calls waiting for it (NOTIFY <tenant>/<chat id>, see arrivals.py)."""
    return bool(
        await conn.fetchval(
            "WITH added AS (INSERT INTO chats (id, tenant, department_id, state, visitor_id, visitor_name, visitor_email, "
            "  question) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, id) DO NOTHING RETURNING id), "
            "woken AS (SELECT pg_notify($9, $2 || '/' || id::text) FROM added) "
            "SELECT EXISTS (SELECT 1 FROM added) AND (SELECT count(*) FROM woken) >= 0",
            chat_id,
            tenant,
            department_id,
            state,
            visitor_id,
            visitor_name,
            visitor_email,
            question,
            CHATS,
        )
    )


async def tombstone(conn: Conn, tenant: str, chat_id: str) -> None:
    """An end that arrives before its start: remember it so the start is ignored."""
    await conn.execute(
        "WITH added AS (INSERT INTO chats (id, tenant, state, ended_at) VALUES ($1, $2, 'ended', now()) "
        "  ON CONFLICT (tenant, id) DO NOTHING RETURNING id) "
        "SELECT pg_notify($3, $2 || '/' || id::text) FROM added",
        chat_id,
        tenant,
        CHATS,
    )


async def enqueue(conn: Conn, tenant: str, chat_id: str, department_id: str | None, crm: dict | None, priority: int) -> None:
    await conn.execute(
        "UPDATE chats SET state = 'queued', department_id = $3, crm = $4, priority = $5, "
        "priority_rank = CASE WHEN $5 > 0 THEN $5 ELSE 2147483647 END, queued_at = now(), agent_id = NULL, "
        "assigned_at = NULL, ended_at = NULL, missed_reason = NULL, waited_seconds = NULL "
        "WHERE tenant = $1 AND id = $2",
        tenant,
        chat_id,
        department_id,
        crm,
        priority,
    )


async def set_ended(conn: Conn, tenant: str, chat_id: str) -> None:
    await conn.execute(
        "UPDATE chats SET state = 'ended', agent_id = NULL, ended_at = now() WHERE tenant = $1 AND id = $2", tenant, chat_id
    )


async def set_missed(conn: Conn, tenant: str, chat_id: str, reason: str, waited: int) -> None:
    await conn.execute(
        "UPDATE chats SET state = 'missed', ended_at = now(), missed_reason = $3, waited_seconds = $4 "
        "WHERE tenant = $1 AND id = $2",
        tenant,
        chat_id,
        reason,
        waited,
    )
