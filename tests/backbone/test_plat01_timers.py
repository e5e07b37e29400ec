"""PLAT-01 / DESIGN "timers are rows": with two service processes each timer fires
exactly once; a timer that came due while every process was down fires after the
restart; a failing timer is retried and then fires once; a cancelled one never fires."""

from __future__ import annotations

from kaiwa_common.db import create_pool, unit_of_work
from kaiwa_common.timers import cancel, schedule
from tests.fixtures import eventually
from tests.backbone.worker import TIMER_KIND

TIMERS = 300


async def test_plat01_timers_fire_once_across_two_processes_and_after_restart(infra, db, names, workers, tenant):
    schema = names["producer"]
    first = workers("timers-1", schema=schema, prefix=names["prefix"], timers=True)
    second = workers("timers-2", schema=schema, prefix=names["prefix"], timers=True)
    await first.start_serving()  # migrates the schema
    await second.start_serving()
    pool = await create_pool(infra["database_url"], schema, min_size=1, max_size=2)
    try:
        async with unit_of_work(pool) as conn:
            for i in range(TIMERS):
                await schedule(conn, tenant, TIMER_KIND, f"{tenant}-k{i}", delay=0.3)

        async def fired() -> int:
            return await pool.fetchval("SELECT count(*) FROM timer_fired WHERE tenant = $1", tenant)

        await eventually(lambda: _at_least(fired, TIMERS), f"{TIMERS} timers to fire", timeout=30)
        await eventually(_no_due_timers(pool), "the timer table to be empty")
        per_key = await pool.fetch("SELECT key, count(*) AS n FROM timer_fired WHERE tenant = $1 GROUP BY key", tenant)
        assert len(per_key) == TIMERS and all(r["n"] == 1 for r in per_key)
        runners = await pool.fetch("SELECT runner, count(*) AS n FROM timer_fired WHERE tenant = $1 GROUP BY 1", tenant)
        assert len(runners) == 2, f"both processes should have fired timers: {[dict(r) for r in runners]}"

        # Every process down (kill -9); timers come due meanwhile; one is cancelled.
        first.kill()
        second.kill()
        async with unit_of_work(pool) as conn:
            await schedule(conn, tenant, TIMER_KIND, f"{tenant}-while-down", delay=0.1)
            await schedule(conn, tenant, TIMER_KIND, f"flaky-{tenant}", delay=0.1)
            await schedule(conn, tenant, TIMER_KIND, f"{tenant}-cancelled", delay=0.1)
            assert await cancel(conn, tenant, TIMER_KIND, f"{tenant}-cancelled")
        await eventually(_all_due(pool), "the timers to come due while nothing runs")
        assert await fired() == TIMERS

        await first.start_serving()

        async def keys_fired() -> dict[str, int]:
            rows = await pool.fetch(
                "SELECT key, count(*) AS n FROM timer_fired WHERE tenant = $1 AND key NOT LIKE '%-k%' GROUP BY key", tenant
            )
            return {r["key"]: r["n"] for r in rows}

        async def both_fired():
            return len(await keys_fired()) == 2

        await eventually(both_fired, "the overdue timers to fire after the restart", timeout=20)
        await eventually(_no_due_timers(pool), "the timer table to be empty")
        assert await keys_fired() == {f"{tenant}-while-down": 1, f"flaky-{tenant}": 1}
    finally:
        await pool.close()


async def _at_least(count, n: int) -> bool:
    return await count() >= n


def _no_due_timers(pool):
    async def probe() -> bool:
        return await pool.fetchval("SELECT count(*) FROM timers") == 0

    return probe


def _all_due(pool):
    async def probe() -> bool:
        return await pool.fetchval("SELECT bool_and(due_at < now()) FROM timers")

    return probe
