"""CRM-10: the writes that wait for the CRM or that it refused; replaying a refused one."""

from __future__ import annotations

import uuid

from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import FailedPrecondition, InvalidArgument, NotFound

from ..runtime import Runtime
from ..store import writes as queue
from ..store.writes import StoredWrite


def write_ref(value: str) -> str:
    try:
        return str(uuid.UUID((value or "").strip()))
    except ValueError:
        raise InvalidArgument(f"write_id {value[:40]!r} is not a write id", field="write_id") from None


async def listed(rt: Runtime, tenant: str, include_queued: bool) -> list[StoredWrite]:
    async with rt.pool.acquire() as conn:
        return await queue.listed(conn, tenant, [queue.DEAD, queue.QUEUED] if include_queued else [queue.DEAD])


async def get(rt: Runtime, tenant: str, write_id: str) -> StoredWrite:
    async with rt.pool.acquire() as conn:
        found = await queue.get(conn, tenant, write_ref(write_id))
    if found is None:
        raise NotFound(f"write {write_id} not found")
    return found


async def replay(rt: Runtime, tenant: str, write_id: str) -> StoredWrite:
    """Queue a dead letter again and try it at once (its finished steps are kept)."""
    write_id = write_ref(write_id)
    async with unit_of_work(rt.pool) as conn:
        found = await queue.get(conn, tenant, write_id)
        if found is None:
            raise NotFound(f"write {write_id} not found")
        if not await queue.replay(conn, tenant, write_id):
            raise FailedPrecondition(f"write {write_id} is {found.state}, not a dead letter")
    await rt.runner.run_due()
    return await get(rt, tenant, write_id)
