"""A queue (a tenant's department, or its chats without one) in order: priority rule,
then arrival. Positions, the wait statistics behind estimates, and missed chats."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Connection


async def has_waiting(conn: Conn, tenant: str, department_id: str | None) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM chats WHERE tenant = $1 AND department_id IS NOT DISTINCT FROM $2 "
            "AND state = 'queued')",
            tenant,
            department_id,
        )
    )


async def page(
    conn: Conn, tenant: str, department_id: str | None, limit: int, after: tuple | None, without_offers: bool
) -> list[asyncpg.Record]:
    """Waiting chats in queue order after the key `after` (keyset pages: offers made
    meanwhile do not shift them); `without_offers` leaves out chats with an open offer."""
    return await conn.fetch(
        "SELECT id, department_id, crm, queued_at, priority, priority_rank FROM chats c WHERE tenant = $1 "
        "AND department_id IS NOT DISTINCT FROM $2 AND state = 'queued' "
        "AND ($4::int IS NULL OR (priority_rank, queued_at, id) > ($4, $5, $6)) "
        "AND NOT ($7 AND EXISTS (SELECT 1 FROM offers o WHERE o.tenant = c.tenant AND o.chat_id = c.id)) "
        "ORDER BY priority_rank, queued_at, id LIMIT $3",
        tenant,
        department_id,
        limit,
        *(after or (None, None, None)),
        without_offers,
    )


async def position(conn: Conn, tenant: str, chat: asyncpg.Record) -> int:
    return await conn.fetchval(
        "SELECT count(*) + 1 FROM chats WHERE tenant = $1 AND department_id IS NOT DISTINCT FROM $2 AND state = 'queued' "
        "AND (priority_rank, queued_at, id) < ($3, $4, $5)",
        tenant,
        chat["department_id"],
        chat["priority_rank"],
        chat["queued_at"],
        chat["id"],
    )


async def with_positions(conn: Conn, tenant: str, department_id: str | None, limit: int) -> list[asyncpg.Record]:
    """The waiting chats with their positions and the position last announced."""
    return await conn.fetch(
        "SELECT c.id, c.department_id, c.priority, c.queued_at, a.position AS last_position, "
        "row_number() OVER (ORDER BY c.priority_rank, c.queued_at, c.id) AS position FROM chats c "
        "LEFT JOIN queue_announcements a ON a.tenant = c.tenant AND a.chat_id = c.id "
        "WHERE c.tenant = $1 AND c.department_id IS NOT DISTINCT FROM $2 AND c.state = 'queued' "
        "ORDER BY c.priority_rank, c.queued_at, c.id LIMIT $3",
        tenant,
        department_id,
        limit,
    )


async def record_announcements(conn: Conn, tenant: str, positions: list[tuple[str, int]]) -> None:
    await conn.executemany(
        "INSERT INTO queue_announcements (chat_id, tenant, position) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant, chat_id) DO UPDATE SET position = EXCLUDED.position, at = now()",
        [(chat_id, tenant, position) for chat_id, position in positions],
    )


async def handling_stats(conn: Conn, tenant: str, department_id: str | None) -> tuple[float | None, float | None]:
    """Mean handling time and mean time-to-assign of the last 50 finished chats (see estimate.py)."""
    query = (
        "SELECT avg(extract(epoch FROM released_at - assigned_at)) AS handling, "
        "avg(extract(epoch FROM assigned_at - queued_at)) FILTER (WHERE queued_at IS NOT NULL) AS accept "
        "FROM (SELECT * FROM assignments WHERE tenant = $1 {scope} AND released_at IS NOT NULL "
        "ORDER BY released_at DESC LIMIT 50) recent"
    )
    row = None
    if department_id is not None:
        row = await conn.fetchrow(query.format(scope="AND department_id = $2"), tenant, department_id)
    if row is None or row["handling"] is None:
        row = await conn.fetchrow(query.format(scope=""), tenant)
    return (
        float(row["handling"]) if row["handling"] is not None else None,
        float(row["accept"]) if row["accept"] is not None else None,
    )


async def missed(conn: Conn, tenant: str, department_id: str | None, limit: int) -> list[asyncpg.Record]:
    """Missed chats, latest first, of a department or of the whole tenant (None)."""
    return await conn.fetch(
        "SELECT * FROM chats WHERE tenant = $1 AND state = 'missed' AND ($2::uuid IS NULL OR department_id = $2) "
        "ORDER BY ended_at DESC LIMIT $3",
        tenant,
        department_id,
        limit,
    )
