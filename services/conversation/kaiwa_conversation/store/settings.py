"""A tenant's settings (CONV-06 inactivity expiry) and canned responses (CONV-10)."""

from __future__ import annotations


DEFAULT_INACTIVITY = 1800


async def inactivity_seconds(conn, tenant: str) -> int:
    value = await conn.fetchval("SELECT inactivity_seconds FROM settings WHERE tenant = $1", tenant)
    return value or DEFAULT_INACTIVITY


async def put_settings(conn, tenant: str, inactivity: int) -> None:
    await conn.execute(
        "INSERT INTO settings (tenant, inactivity_seconds) VALUES ($1, $2) ON CONFLICT (tenant) "
        "DO UPDATE SET inactivity_seconds = EXCLUDED.inactivity_seconds, updated_at = now()",
        tenant,
        inactivity,
    )


async def put_canned(conn, tenant: str, shortcut: str, text: str, by: str) -> dict:
    return dict(
        await conn.fetchrow(
            "INSERT INTO canned_responses (tenant, shortcut, text, updated_by) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (tenant, shortcut) DO UPDATE SET text = EXCLUDED.text, updated_by = EXCLUDED.updated_by, "
            "updated_at = now() RETURNING *",
            tenant,
            shortcut,
            text,
            by,
        )
    )


async def canned(conn, tenant: str, shortcut: str) -> dict | None:
    row = await conn.fetchrow("SELECT * FROM canned_responses WHERE tenant = $1 AND shortcut = $2", tenant, shortcut)
    return dict(row) if row else None


async def list_canned(conn, tenant: str, prefix: str) -> list[dict]:
    rows = await conn.fetch(
        "SELECT * FROM canned_responses WHERE tenant = $1 AND starts_with(shortcut, $2) ORDER BY shortcut", tenant, prefix
    )
    return [dict(r) for r in rows]


async def delete_canned(conn, tenant: str, shortcut: str) -> bool:
    return bool(
        await conn.fetchval("DELETE FROM canned_responses WHERE tenant = $1 AND shortcut = $2 RETURNING true", tenant, shortcut)
    )
