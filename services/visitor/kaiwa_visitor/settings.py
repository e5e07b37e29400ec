"""The tenant's tracking settings: the idle timeout that ends a visit (VIS-01), the time
zone of "today" and the lead score of "top" (VIS-04)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import InvalidArgument

from . import store
from .context import Deps
from .domain.model import TrackingSettings


async def get_settings(deps: Deps, tenant: str) -> TrackingSettings:
    async with deps.ctx.pool.acquire() as conn:
        return await store.get_settings(conn, tenant, deps.settings)


async def update_settings(deps: Deps, tenant: str, minutes: int, time_zone: str, top: int) -> TrackingSettings:
    """Zero or empty keeps the current value."""
    if minutes and not 1 <= minutes <= 1440:
        raise InvalidArgument("visit_timeout_minutes must be between 1 and 1440", field="visit_timeout_minutes")
    if top and not 1 <= top <= 100:
        raise InvalidArgument("top_lead_score must be between 1 and 100", field="top_lead_score")
    time_zone = time_zone.strip()
    if time_zone:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidArgument(f"time_zone {time_zone[:60]!r} is not an IANA time zone", field="time_zone") from None
    async with unit_of_work(deps.ctx.pool) as conn:
        now = await store.get_settings(conn, tenant, deps.settings)
        new = TrackingSettings(minutes or now.visit_timeout_minutes, time_zone or now.time_zone, top or now.top_lead_score)
        await store.save_settings(conn, tenant, new)
    return new
