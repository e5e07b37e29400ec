"""CONV-06: a tenant's settings (GetSettings, UpdateSettings): how long an open or ended
chat may stay idle before it is completed (inactivity_seconds; 0 restores the default).
The service's own configuration from the environment is config.py."""

from __future__ import annotations

from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import InvalidArgument

from . import store
from .unit_of_work import Actor, Deps

MAX_INACTIVITY = 30 * 86400


async def inactivity_seconds(deps: Deps, actor: Actor) -> int:
    async with deps.ctx.pool.acquire() as conn:
        return await store.inactivity_seconds(conn, actor.tenant)


async def update_inactivity_seconds(deps: Deps, actor: Actor, seconds: int) -> int:
    if seconds < 0 or seconds > MAX_INACTIVITY:
        raise InvalidArgument(f"inactivity_seconds must be between 1 and {MAX_INACTIVITY} (0 = default)")
    async with unit_of_work(deps.ctx.pool) as conn:
        await store.put_settings(conn, actor.tenant, seconds or store.DEFAULT_INACTIVITY)
        return await store.inactivity_seconds(conn, actor.tenant)
