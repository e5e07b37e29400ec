"""Visit lists (VIS-04, ROUT-04) and who is on the site now (VIS-07)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from .visits import SUMMARY

UNRANKED = 2_147_483_647  # visitors matching no priority rule come after every ranked one

# Order: the priority rule's order, lead score (highest first), newest visit first.
# Keyset position (priority, -score, started_at, id): the next page starts after it.
LIST = f"""
SELECT v.*, {SUMMARY}
FROM visits v JOIN visitors s ON s.tenant = v.tenant AND s.id = v.visitor_id
WHERE v.tenant = $1 AND v.started_at >= $2 AND s.lead_score >= $3 AND ($4 = '' OR s.crm_record_type = $4)
  AND ($5::int IS NULL OR (coalesce(s.priority, {UNRANKED}), -s.lead_score) > ($5, $6)
       OR ((coalesce(s.priority, {UNRANKED}), -s.lead_score) = ($5, $6) AND (v.started_at, v.id) < ($7, $8)))
ORDER BY coalesce(s.priority, {UNRANKED}), s.lead_score DESC, v.started_at DESC, v.id DESC
LIMIT $9
"""


async def list_visits(
    conn: asyncpg.Connection,
    tenant: str,
    since: datetime,
    min_score: int,
    record_type: str,
    after: tuple[int, int, datetime, uuid.UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    priority, neg_score, started, visit_id = after or (None, None, None, None)
    return await conn.fetch(LIST, tenant, since, min_score, record_type, priority, neg_score, started, visit_id, limit)


async def online(conn: asyncpg.Connection, tenant: str, window: float, record_types: tuple[str, ...], limit: int):
    """Visits with a page view in the last `window` seconds and not left, newest first
    (among the visits started in the last day: visits_started is the access path)."""
    return await conn.fetch(
        f"SELECT v.*, {SUMMARY} FROM visits v JOIN visitors s ON s.tenant = v.tenant AND s.id = v.visitor_id "
        "WHERE v.tenant = $1 AND v.started_at > now() - interval '1 day' "
        "AND v.last_seen_at > now() - make_interval(secs => $2) AND v.left_at IS NULL "
        "AND s.current_visit_id = v.id AND (cardinality($3::text[]) = 0 OR s.crm_record_type = ANY($3::text[])) "
        "ORDER BY v.last_seen_at DESC, v.id DESC LIMIT $4",
        tenant,
        window,
        list(record_types),
        limit,
    )


async def visit_with_visitor(conn: asyncpg.Connection, tenant: str, visit_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT v.*, {SUMMARY} FROM visits v JOIN visitors s ON s.tenant = v.tenant AND s.id = v.visitor_id "
        "WHERE v.tenant = $1 AND v.id = $2",
        tenant,
        visit_id,
    )
