"""Who a visitor is (VIS-03): identity, merging, CRM facts, scores, chats, priorities."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

SCORE_INPUTS = "id, visit_count, page_view_count, time_spent_seconds, chat_count, email, visitor_type"


async def lock_identity(
    conn: asyncpg.Connection, tenant: str, visitor_id: uuid.UUID, email: str, create: bool
) -> tuple[asyncpg.Record | None, asyncpg.Record | None]:
    """(the visitor `visitor_id` stands for, the live visitor holding `email` if another),
    both locked in id order; (None, None) for an unknown visitor unless `create`."""
    if create:
        await conn.execute("INSERT INTO visitors (tenant, id) VALUES ($1, $2) ON CONFLICT DO NOTHING", tenant, visitor_id)
    target = await conn.fetchval(
        "SELECT coalesce(merged_into, id) FROM visitors WHERE tenant = $1 AND id = $2", tenant, visitor_id
    )
    if target is None:
        return None, None
    rows = await conn.fetch(
        "SELECT * FROM visitors WHERE tenant = $1 AND (id = $2 OR (email = $3 AND merged_into IS NULL)) ORDER BY id FOR UPDATE",
        tenant,
        target,
        email,
    )
    this = next(r for r in rows if r["id"] == target)
    other = next((r for r in rows if r["id"] != target), None)
    return this, other


async def merge(conn: asyncpg.Connection, tenant: str, source: uuid.UUID, target: uuid.UUID) -> None:
    """Move `source`'s history to `target`, sum its counts, and make `source` stand for it."""
    for table in ("visits", "page_views", "visit_chats", "trigger_firings"):
        await conn.execute(f"UPDATE {table} SET visitor_id = $3 WHERE tenant = $1 AND visitor_id = $2", tenant, source, target)
    await conn.execute(
        """
        UPDATE visitors t SET
            visit_count = t.visit_count + s.visit_count,
            page_view_count = t.page_view_count + s.page_view_count,
            time_spent_seconds = t.time_spent_seconds + s.time_spent_seconds,
            chat_count = t.chat_count + s.chat_count,
            first_seen_at = least(t.first_seen_at, s.first_seen_at),
            last_seen_at = greatest(t.last_seen_at, s.last_seen_at),
            current_visit_id = CASE WHEN t.last_seen_at IS NULL OR s.last_seen_at > t.last_seen_at
                               THEN s.current_visit_id ELSE t.current_visit_id END,
            last_ip = CASE WHEN t.last_seen_at IS NULL OR s.last_seen_at > t.last_seen_at
                      THEN coalesce(s.last_ip, t.last_ip) ELSE t.last_ip END,
            name = CASE WHEN t.name = '' THEN s.name ELSE t.name END,
            phone = CASE WHEN t.phone = '' THEN s.phone ELSE t.phone END
        FROM visitors s WHERE t.tenant = $1 AND t.id = $3 AND s.tenant = $1 AND s.id = $2
        """,
        tenant,
        source,
        target,
    )
    await conn.execute(
        "UPDATE visitors SET merged_into = $3, email = '', current_visit_id = NULL, visit_count = 0, page_view_count = 0, "
        "time_spent_seconds = 0, chat_count = 0 WHERE tenant = $1 AND (id = $2 OR merged_into = $2)",
        tenant,
        source,
        target,
    )


async def set_identity(
    conn: asyncpg.Connection, tenant: str, visitor_id: uuid.UUID, name: str, email: str, phone: str, source: str
) -> None:
    await conn.execute(
        "UPDATE visitors SET email = $3, name = CASE WHEN $4 = '' THEN name ELSE $4 END, "
        "phone = CASE WHEN $5 = '' THEN phone ELSE $5 END, identified_at = coalesce(identified_at, now()), "
        "identity_source = $6, crm_checked_at = CASE WHEN email = $3 THEN crm_checked_at END "
        "WHERE tenant = $1 AND id = $2",
        tenant,
        visitor_id,
        email,
        name,
        phone,
        source,
    )


async def set_crm(
    conn: asyncpg.Connection,
    tenant: str,
    visitor_id: uuid.UUID,
    record_id: str,
    record_type: str,
    owner: str,
    visitor_type: str,
    facts: dict | None,
) -> None:
    """The CRM facts fetched just now (empty record: none in the CRM); priorities are
    computed again on the next list (priority_rules cleared)."""
    await conn.execute(
        "UPDATE visitors SET crm_record_id = $3, crm_record_type = $4, crm_owner = $5, visitor_type = $6, "
        "crm_facts = $7, crm_checked_at = now(), priority = NULL, priority_rules = '' WHERE tenant = $1 AND id = $2",
        tenant,
        visitor_id,
        record_id,
        record_type,
        owner,
        visitor_type,
        facts,
    )


async def score_inputs(conn: asyncpg.Connection, tenant: str, visitor_id: uuid.UUID) -> asyncpg.Record:
    return await conn.fetchrow(f"SELECT {SCORE_INPUTS} FROM visitors WHERE tenant = $1 AND id = $2", tenant, visitor_id)


async def set_score(conn: asyncpg.Connection, tenant: str, visitor_id: uuid.UUID, score: int) -> None:
    await conn.execute("UPDATE visitors SET lead_score = $3 WHERE tenant = $1 AND id = $2", tenant, visitor_id, score)


async def record_chat(
    conn: asyncpg.Connection, tenant: str, chat_id: str, visitor_id: uuid.UUID, started_at: datetime
) -> uuid.UUID | None:
    """VIS-01's chat action, in the visitor's current visit; None if the visitor is not
    tracked here (or the chat was recorded already)."""
    row = await conn.fetchrow(
        "SELECT coalesce(merged_into, id) AS id FROM visitors WHERE tenant = $1 AND id = $2", tenant, visitor_id
    )
    if row is None:
        return None
    target = row["id"]
    visit = await conn.fetchrow(
        "SELECT v.id, v.current_url, v.current_title FROM visitors s JOIN visits v ON v.tenant = s.tenant "
        "AND v.id = s.current_visit_id WHERE s.tenant = $1 AND s.id = $2 FOR UPDATE OF s",
        tenant,
        target,
    )
    inserted = await conn.fetchval(
        "INSERT INTO visit_chats (tenant, chat_id, visitor_id, visit_id, url, title, started_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true",
        tenant,
        chat_id,
        target,
        visit["id"] if visit else None,
        visit["current_url"] if visit else "",
        visit["current_title"] if visit else "",
        started_at,
    )
    if not inserted:
        return None
    await conn.execute("UPDATE visitors SET chat_count = chat_count + 1 WHERE tenant = $1 AND id = $2", tenant, target)
    if visit:
        await conn.execute("UPDATE visits SET chatted = true WHERE tenant = $1 AND id = $2", tenant, visit["id"])
    return target


async def forget_crm_of_email(
    conn: asyncpg.Connection, tenant: str, email: str, record_id: str, record_type: str
) -> list[uuid.UUID]:
    """crm_bridge created a record for this e-mail: the link now, the rest on the next
    refresh. The visitors changed."""
    rows = await conn.fetch(
        "UPDATE visitors SET crm_record_id = $3, crm_record_type = $4, "
        "visitor_type = CASE WHEN visitor_type = 'unknown' THEN $4 ELSE visitor_type END, crm_checked_at = NULL "
        "WHERE tenant = $1 AND email = $2 AND merged_into IS NULL RETURNING id",
        tenant,
        email,
        record_id,
        record_type,
    )
    return [r["id"] for r in rows]


async def priorities_to_compute(conn: asyncpg.Connection, tenant: str, version: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, crm_facts FROM visitors WHERE tenant = $1 AND crm_facts IS NOT NULL AND merged_into IS NULL "
        "AND priority_rules <> $2",
        tenant,
        version,
    )


async def set_priorities(conn: asyncpg.Connection, tenant: str, version: str, ranks: list[tuple[uuid.UUID, int | None]]) -> None:
    await conn.execute(
        "UPDATE visitors s SET priority = u.priority, priority_rules = $2 "
        "FROM unnest($3::uuid[], $4::int[]) AS u(id, priority) WHERE s.tenant = $1 AND s.id = u.id",
        tenant,
        version,
        [r[0] for r in ranks],
        [r[1] for r in ranks],
    )
