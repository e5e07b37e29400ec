"""Every row one tenant has in the services' databases, table by table, to show that
nothing another tenant did changed them."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.e2e.suite import Suite
from tests.fixtures import eventually

QUIET = 1.0  # seconds without a change after which a tenant's own follow-ups are done

# Rows that change on their own while nobody calls: work queues drained by the services,
# and the positions routing last announced (forgotten on its own once a chat stops waiting).
CHURNING = {"outbox", "timers", "queue_announcements"}


async def rows_of(suite: Suite, tenant: str) -> dict[str, list[str]]:
    """'schema.table' -> the tenant's rows as JSON text, sorted."""
    conn = await asyncpg.connect(suite.env["KAIWA_DATABASE_URL"])
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.columns"
            " WHERE column_name = 'tenant' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        found = {}
        for schema, table in sorted((t["table_schema"], t["table_name"]) for t in tables):
            if table in CHURNING:
                continue
            rows = await conn.fetch(f'SELECT row_to_json(t)::text AS row FROM "{schema}"."{table}" t WHERE tenant = $1', tenant)
            found[f"{schema}.{table}"] = sorted(r["row"] for r in rows)
        return found
    finally:
        await conn.close()


async def settled_rows_of(suite: Suite, tenant: str) -> dict[str, list[str]]:
    """The tenant's rows once its own follow-ups (events consumed by the other services,
    messages posted later) have landed: two readings QUIET seconds apart are the same."""
    last = await rows_of(suite, tenant)

    async def unchanged():
        nonlocal last
        await asyncio.sleep(QUIET)
        now = await rows_of(suite, tenant)
        same, last = now == last, now
        return same

    await eventually(unchanged, f"tenant {tenant}'s rows stop changing", timeout=30)
    return last
