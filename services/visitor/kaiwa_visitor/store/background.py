"""The only statement across tenants: finding identified visitors whose CRM facts are
missing or old (the refresher then works tenant by tenant, each call scoped)."""

from __future__ import annotations

import asyncpg


async def stale_crm_visitors(conn: asyncpg.Connection, refresh_after: float, limit: int) -> list[asyncpg.Record]:
    """Identified visitors never checked, or checked `refresh_after` seconds ago and
    seen in the last day (the ones agents look at)."""
    return await conn.fetch(
        "SELECT tenant, id, email FROM visitors WHERE email <> '' AND merged_into IS NULL AND (crm_checked_at IS NULL "
        "OR (crm_checked_at < now() - make_interval(secs => $1) AND last_seen_at > now() - interval '1 day')) "
        "ORDER BY crm_checked_at NULLS FIRST LIMIT $2",
        refresh_after,
        limit,
    )
