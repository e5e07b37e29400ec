"""A tenant's tracking settings (idle timeout, time zone, top threshold)."""

from __future__ import annotations

import asyncpg

from ..domain.model import TrackingSettings


async def get_settings(conn: asyncpg.Connection, tenant: str, defaults) -> TrackingSettings:
    row = await conn.fetchrow(
        "SELECT visit_timeout_seconds, time_zone, top_lead_score FROM tracking_settings WHERE tenant = $1", tenant
    )
    if row is None:
        return TrackingSettings(visit_timeout_minutes=int(defaults.visit_timeout.total_seconds() // 60))
    return TrackingSettings(row["visit_timeout_seconds"] // 60, row["time_zone"], row["top_lead_score"])


async def save_settings(conn: asyncpg.Connection, tenant: str, s: TrackingSettings) -> None:
    await conn.execute(
        "INSERT INTO tracking_settings (tenant, visit_timeout_seconds, time_zone, top_lead_score) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (tenant) DO UPDATE SET visit_timeout_seconds = EXCLUDED.visit_timeout_seconds, "
        "time_zone = EXCLUDED.time_zone, top_lead_score = EXCLUDED.top_lead_score, updated_at = now()",
        tenant,
        s.visit_timeout_minutes * 60,
        s.time_zone,
        s.top_lead_score,
    )
