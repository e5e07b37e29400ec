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

    new_visits: list[tuple] = field(default_factory=list)  # VISIT_COLUMNS
    page_views: list[tuple] = field(default_factory=list)  # PAGE_VIEW_COLUMNS
    visit_updates: list[tuple] = field(default_factory=list)  # (id, last_seen, n, url, title, page_view_id)
    visitor_updates: list[tuple] = field(default_factory=list)  # VISITOR_UPDATE
    outbox: list[tuple] = field(default_factory=list)  # (id, subject, envelope)
    notify: list[tuple[str, str]] = field(default_factory=list)  # (channel, payload)


VISIT_COLUMNS = (
    "id uuid, visitor_id uuid, started_at timestamptz, last_seen_at timestamptz, page_view_count int, landing_url text, "
    "landing_title text, current_url text, current_title text, current_page_view_id uuid, ip inet, context jsonb"
)
PAGE_VIEW_COLUMNS = (
    "id uuid, visitor_id uuid, visit_id uuid, url text, title text, referrer text, user_agent text, ip inet, "
    "landing boolean, viewed_at timestamptz"
)


def _unnest(columns: str, alias: str, first_param: int) -> str:
    names = [c.split()[0] for c in columns.split(", ")]
    types = [c.split()[1] for c in columns.split(", ")]
    args = ", ".join(f"${first_param + i}::{t}[]" for i, t in enumerate(types))
    return f"unnest({args}) AS {alias}({', '.join(names)})"


def _columns(rows: list[tuple], width: int) -> list[list]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


_V = _unnest(VISIT_COLUMNS, "n", 2)  # $2..$13
_P = _unnest(PAGE_VIEW_COLUMNS, "p", 14)  # $14..$23
WRITE_BATCH = f"""
WITH new_visits AS (
    INSERT INTO visits (tenant, id, visitor_id, started_at, last_seen_at, page_view_count, landing_url, landing_title,
                        current_url, current_title, current_page_view_id, ip, context)
    SELECT $1, n.* FROM {_V}
), views AS (
    INSERT INTO page_views (tenant, id, visitor_id, visit_id, url, title, referrer, user_agent, ip, landing, viewed_at)
    SELECT $1, p.* FROM {_P}
), visit_updates AS (
    UPDATE visits v SET
        last_seen_at = greatest(v.last_seen_at, u.last_seen),
        page_view_count = v.page_view_count + u.n,
        current_url = CASE WHEN u.last_seen >= v.last_seen_at THEN u.url ELSE v.current_url END,
        current_title = CASE WHEN u.last_seen >= v.last_seen_at THEN u.title ELSE v.current_title END,
        current_page_view_id = CASE WHEN u.last_seen >= v.last_seen_at THEN u.pv ELSE v.current_page_view_id END,
        left_at = CASE WHEN u.last_seen >= coalesce(v.left_at, '-infinity') THEN NULL ELSE v.left_at END
    FROM unnest($24::uuid[], $25::timestamptz[], $26::int[], $27::text[], $28::text[], $29::uuid[])
         AS u(id, last_seen, n, url, title, pv)
    WHERE v.tenant = $1 AND v.id = u.id
), visitor_updates AS (
    UPDATE visitors s SET
        last_seen_at = greatest(s.last_seen_at, u.last_seen),
        first_seen_at = coalesce(s.first_seen_at, u.first_seen),
        current_visit_id = u.visit,
        visit_count = s.visit_count + u.visits,
        page_view_count = s.page_view_count + u.views,
        time_spent_seconds = s.time_spent_seconds + u.spent,
        lead_score = u.score,
        last_ip = coalesce(u.ip, s.last_ip)
    FROM unnest($30::uuid[], $31::timestamptz[], $32::timestamptz[], $33::uuid[], $34::int[], $35::int[], $36::bigint[],
                $37::int[], $38::inet[]) AS u(id, last_seen, first_seen, visit, visits, views, spent, score, ip)
    WHERE s.tenant = $1 AND s.id = u.id
), events AS (
    INSERT INTO outbox (id, tenant, subject, envelope)
    SELECT o.id, $1, o.subject, o.envelope FROM unnest($39::uuid[], $40::text[], $41::bytea[]) AS o(id, subject, envelope)
)
SELECT pg_notify(n.channel, n.payload) FROM unnest($42::text[], $43::text[]) AS n(channel, payload)
"""


async def write_batch(conn: asyncpg.Connection, tenant: str, b: BatchWrite) -> None:
    await conn.execute(
        WRITE_BATCH,
        tenant,
        *_columns(b.new_visits, 12),
        *_columns(b.page_views, 10),
        *_columns(b.visit_updates, 6),
        *_columns(b.visitor_updates, 9),
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
