"""Writing what visitors do (VIS-01): the visitors of a batch locked in one statement,
everything the batch causes written in one more (data-modifying CTEs: new visits, page
views, visit and visitor updates, outbox events, NOTIFYs), leaves in a third."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

COLUMNS = (
    "id, merged_into, last_seen_at, current_visit_id, visit_count, page_view_count, time_spent_seconds, chat_count, "
    "email, visitor_type, crm_record_type, crm_owner, crm_facts, clock_timestamp() AS now, "
    "(SELECT visit_timeout_seconds FROM tracking_settings WHERE tenant = $1) AS timeout"
)
STATE = f"SELECT {COLUMNS} FROM visitors WHERE tenant = $1 AND id = ANY($2::uuid[]) ORDER BY id FOR UPDATE"
# Created on first sight, locked and read in one statement (DO UPDATE locks an existing row).
UPSERT = (
    "INSERT INTO visitors AS v (tenant, id) SELECT $1, x FROM unnest($2::uuid[]) x ORDER BY x "
    f"ON CONFLICT (tenant, id) DO UPDATE SET tenant = EXCLUDED.tenant RETURNING {COLUMNS}"
)


async def lock_visitors(
    conn: asyncpg.Connection, tenant: str, ids: list[uuid.UUID], create: list[uuid.UUID]
) -> dict[str, asyncpg.Record]:
    """The visitors of a batch (those in `create` made on first sight), and those they were
    merged into, locked in id order; each with the database clock as `now` (one clock
    for all replicas) and the tenant's idle timeout (None: the default); by id as text."""
    if len(create) == len(ids):
        rows = {str(r["id"]): r for r in await conn.fetch(UPSERT, tenant, ids)}
    else:
        await conn.execute(
            "INSERT INTO visitors (tenant, id) SELECT $1, x FROM unnest($2::uuid[]) x ON CONFLICT DO NOTHING", tenant, create
        )
        rows = {str(r["id"]): r for r in await conn.fetch(STATE, tenant, ids)}
    survivors = [r["merged_into"] for r in rows.values() if r["merged_into"] and str(r["merged_into"]) not in rows]
    if survivors:
        rows.update({str(r["id"]): r for r in await conn.fetch(STATE, tenant, survivors)})
    return rows


@dataclass
class BatchWrite:
    """Column arrays of one batch (each list is one unnest() argument)."""

    visits: list[tuple] = field(default_factory=list)  # VISIT_COLUMNS: new visits, and changes to others
    page_views: list[tuple] = field(default_factory=list)  # PAGE_VIEW_COLUMNS
    visitors: list[tuple] = field(default_factory=list)  # VISITOR_COLUMNS: changes (sums and latest values)
    outbox: list[tuple] = field(default_factory=list)  # (id, subject, envelope)
    notify: list[tuple[str, str]] = field(default_factory=list)  # (channel, payload)


VISIT_COLUMNS = (
    "id uuid, visitor_id uuid, started_at timestamptz, last_seen_at timestamptz, page_view_count int, landing_url text, "
    "landing_title text, current_url text, current_title text, current_page_view_id uuid, ip text, context jsonb"
)
PAGE_VIEW_COLUMNS = (
    "id uuid, visitor_id uuid, visit_id uuid, url text, title text, referrer text, user_agent text, ip text, "
    "landing boolean, viewed_at timestamptz"
)
VISITOR_COLUMNS = (
    "id uuid, last_seen_at timestamptz, first_seen_at timestamptz, current_visit_id uuid, visit_count int, "
    "page_view_count int, time_spent_seconds bigint, lead_score int, last_ip text"
)


def _unnest(columns: str, alias: str, first_param: int) -> str:
    names = [c.split()[0] for c in columns.split(", ")]
    types = [c.split()[1] for c in columns.split(", ")]
    args = ", ".join(f"${first_param + i}::{t}[]" for i, t in enumerate(types))
    return f"unnest({args}) AS {alias}({', '.join(names)})"


def _columns(rows: list[tuple], width: int) -> list[list]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


# Visits and visitors are written with INSERT ... ON CONFLICT DO UPDATE: each row found
# through the primary key, whatever the planner believes about the tenant's share of
# the table (an UPDATE ... FROM join, planned on statistics of a table growing faster
# than autovacuum analyses it, hashed the tenant's whole table: 26 ms for 1,000 visits).
WRITE_BATCH = f"""
WITH visits_written AS (
    INSERT INTO visits AS v (tenant, id, visitor_id, started_at, last_seen_at, page_view_count, landing_url,
                             landing_title, current_url, current_title, current_page_view_id, ip, context)
    SELECT $1, n.id, n.visitor_id, n.started_at, n.last_seen_at, n.page_view_count, n.landing_url, n.landing_title,
           n.current_url, n.current_title, n.current_page_view_id, n.ip::inet, n.context
    FROM {_unnest(VISIT_COLUMNS, "n", 2)}
    ON CONFLICT (tenant, id) DO UPDATE SET
        last_seen_at = greatest(v.last_seen_at, EXCLUDED.last_seen_at),
        page_view_count = v.page_view_count + EXCLUDED.page_view_count,
        current_url = CASE WHEN EXCLUDED.last_seen_at >= v.last_seen_at THEN EXCLUDED.current_url ELSE v.current_url END,
        current_title = CASE WHEN EXCLUDED.last_seen_at >= v.last_seen_at THEN EXCLUDED.current_title ELSE v.current_title END,
        current_page_view_id = CASE WHEN EXCLUDED.last_seen_at >= v.last_seen_at
                               THEN EXCLUDED.current_page_view_id ELSE v.current_page_view_id END,
        left_at = CASE WHEN EXCLUDED.last_seen_at >= coalesce(v.left_at, '-infinity') THEN NULL ELSE v.left_at END
), views AS (
    INSERT INTO page_views (tenant, id, visitor_id, visit_id, url, title, referrer, user_agent, ip, landing, viewed_at)
    SELECT $1, p.id, p.visitor_id, p.visit_id, p.url, p.title, p.referrer, p.user_agent, p.ip::inet, p.landing, p.viewed_at
    FROM {_unnest(PAGE_VIEW_COLUMNS, "p", 14)}
), visitors_written AS (
    INSERT INTO visitors AS s (tenant, id, last_seen_at, first_seen_at, current_visit_id, visit_count, page_view_count,
                               time_spent_seconds, lead_score, last_ip)
    SELECT $1, u.id, u.last_seen_at, u.first_seen_at, u.current_visit_id, u.visit_count, u.page_view_count,
           u.time_spent_seconds, u.lead_score, u.last_ip::inet
    FROM {_unnest(VISITOR_COLUMNS, "u", 24)}
    ON CONFLICT (tenant, id) DO UPDATE SET
        last_seen_at = greatest(s.last_seen_at, EXCLUDED.last_seen_at),
        first_seen_at = coalesce(s.first_seen_at, EXCLUDED.first_seen_at),
        current_visit_id = EXCLUDED.current_visit_id,
        visit_count = s.visit_count + EXCLUDED.visit_count,
        page_view_count = s.page_view_count + EXCLUDED.page_view_count,
        time_spent_seconds = s.time_spent_seconds + EXCLUDED.time_spent_seconds,
        lead_score = EXCLUDED.lead_score,
        last_ip = coalesce(EXCLUDED.last_ip, s.last_ip)
), events AS (
    INSERT INTO outbox (id, tenant, subject, envelope)
    SELECT o.id, $1, o.subject, o.envelope FROM unnest($33::uuid[], $34::text[], $35::bytea[]) AS o(id, subject, envelope)
)
SELECT pg_notify(n.channel, n.payload) FROM unnest($36::text[], $37::text[]) AS n(channel, payload)
"""


async def write_batch(conn: asyncpg.Connection, tenant: str, b: BatchWrite) -> None:
    await conn.execute(
        WRITE_BATCH,
        tenant,
        *_columns(b.visits, 12),
        *_columns(b.page_views, 10),
        *_columns(b.visitors, 9),
        *_columns(b.outbox, 3),
        *_columns(b.notify, 2),
    )


async def leave_pages(
    conn: asyncpg.Connection, tenant: str, leaves: list[tuple[int, uuid.UUID, uuid.UUID | None, datetime]]
) -> dict[int, uuid.UUID]:
    """Leave beacons (index, visitor, page view or None for its last, when): the page view
    left, by index; indexes missing from the answer named no page view of theirs."""
    rows = await conn.fetch(
        """
        WITH l AS (
            UPDATE page_views p SET left_at = greatest(p.viewed_at, u.at)
            FROM unnest($2::int[], $3::uuid[], $4::uuid[], $5::timestamptz[]) AS u(idx, visitor, pv, at)
            WHERE p.tenant = $1 AND p.visitor_id = u.visitor AND p.id = coalesce(u.pv, (
                SELECT q.id FROM page_views q WHERE q.tenant = $1 AND q.visitor_id = u.visitor
                ORDER BY q.viewed_at DESC, q.id DESC LIMIT 1))
            RETURNING u.idx, p.id, p.visit_id, p.left_at
        ), v AS (
            UPDATE visits v SET left_at = l.left_at FROM l
            WHERE v.tenant = $1 AND v.id = l.visit_id AND v.current_page_view_id = l.id
        )
        SELECT idx, id FROM l
        """,
        tenant,
        *_columns(leaves, 4),
    )
    return {r["idx"]: r["id"] for r in rows}
