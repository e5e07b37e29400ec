"""Proactive triggers and their firings (VIS-06)."""

from __future__ import annotations

import uuid

import asyncpg

from kaiwa_common.crm_conditions import Condition
from ..domain.triggers import Trigger


def trigger_of(row) -> Trigger:
    return Trigger(
        id=str(row["id"]),
        name=row["name"],
        enabled=row["enabled"],
        page_pattern=row["page_pattern"],
        landing_only=row["landing_only"],
        conditions=tuple(Condition(c["field"], c["op"], c["value"]) for c in row["conditions"]),
        delay_seconds=row["delay_seconds"],
        action=row["action"],
        message=row["message"],
        agent_id=row["agent_id"],
    )


async def list_triggers(conn: asyncpg.Connection, tenant: str) -> list[Trigger]:
    rows = await conn.fetch("SELECT * FROM triggers WHERE tenant = $1 ORDER BY created_at, id", tenant)
    return [trigger_of(r) for r in rows]


async def get_trigger(conn: asyncpg.Connection, tenant: str, trigger_id: uuid.UUID) -> Trigger | None:
    row = await conn.fetchrow("SELECT * FROM triggers WHERE tenant = $1 AND id = $2", tenant, trigger_id)
    return trigger_of(row) if row else None


async def save_trigger(conn: asyncpg.Connection, tenant: str, t: Trigger) -> bool:
    """Insert, or update the tenant's trigger of that id; False if there is none to update."""
    status = await conn.execute(
        "INSERT INTO triggers (tenant, id, name, enabled, page_pattern, landing_only, conditions, delay_seconds, action, "
        "message, agent_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
        "ON CONFLICT (tenant, id) DO UPDATE SET name = EXCLUDED.name, enabled = EXCLUDED.enabled, "
        "page_pattern = EXCLUDED.page_pattern, landing_only = EXCLUDED.landing_only, conditions = EXCLUDED.conditions, "
        "delay_seconds = EXCLUDED.delay_seconds, action = EXCLUDED.action, message = EXCLUDED.message, "
        "agent_id = EXCLUDED.agent_id, updated_at = now()",
        tenant,
        uuid.UUID(t.id),
        t.name,
        t.enabled,
        t.page_pattern,
        t.landing_only,
        [{"field": c.field, "op": c.op, "value": c.value} for c in t.conditions],
        t.delay_seconds,
        t.action,
        t.message,
        t.agent_id,
    )
    return status.endswith("1")


async def delete_trigger(conn: asyncpg.Connection, tenant: str, trigger_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("DELETE FROM triggers WHERE tenant = $1 AND id = $2 RETURNING true", tenant, trigger_id))


async def still_on_page(conn: asyncpg.Connection, tenant: str, visit_id: uuid.UUID, page_view_id: uuid.UUID) -> bool:
    """The visit's current page is still this page view, and it was not left."""
    return bool(
        await conn.fetchval(
            "SELECT true FROM visits WHERE tenant = $1 AND id = $2 AND current_page_view_id = $3 AND left_at IS NULL FOR UPDATE",
            tenant,
            visit_id,
            page_view_id,
        )
    )


async def record_firing(
    conn: asyncpg.Connection, tenant: str, visit_id: uuid.UUID, trigger_id: uuid.UUID, visitor_id: uuid.UUID,
    page_view_id: uuid.UUID, url: str,
) -> bool:  # fmt: skip
    """True the first time this trigger fires in this visit."""
    return bool(
        await conn.fetchval(
            "INSERT INTO trigger_firings (tenant, visit_id, trigger_id, visitor_id, page_view_id, url) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true",
            tenant,
            visit_id,
            trigger_id,
            visitor_id,
            page_view_id,
            url,
        )
    )


async def firing(conn: asyncpg.Connection, tenant: str, visit_id: uuid.UUID, trigger_id: uuid.UUID):
    return await conn.fetchrow(
        "SELECT f.*, t.message, t.action, t.agent_id FROM trigger_firings f JOIN triggers t ON t.tenant = f.tenant "
        "AND t.id = f.trigger_id WHERE f.tenant = $1 AND f.visit_id = $2 AND f.trigger_id = $3",
        tenant,
        visit_id,
        trigger_id,
    )
