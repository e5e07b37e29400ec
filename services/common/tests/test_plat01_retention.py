"""PLAT-01: the bookkeeping behind exactly-once (applied event ids, client request ids) is
pruned once no redelivery or retry can ask about it, by every running service."""

from __future__ import annotations

import uuid
from datetime import timedelta

from kaiwa_common.app import ServiceSpec
from kaiwa_common.events import STREAM_MAX_AGE
from kaiwa_common.retention import prune_once, retention_period
from tests.fixtures import eventually, running


def _spec(schema: str) -> ServiceSpec:
    return ServiceSpec(
        name="visitor",
        schema=schema,
        migrations=None,
        grpc_services=[],
        policy={},
        add_servicers=lambda server, ctx: None,
    )


async def _add_rows(pool, tenant: str, age: timedelta, count: int) -> None:
    for _ in range(count):
        key = uuid.uuid4().hex
        await pool.execute(
            "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ('c', $1, now() - $2::interval)",
            key,
            age,
        )
        await pool.execute(
            "INSERT INTO request_ids (tenant, scope, request_id, fingerprint, created_at) "
            "VALUES ($1, 'StartChat', $2, 'f', now() - $3::interval)",
            tenant,
            key,
            age,
        )


async def _counts(pool) -> tuple[int, int]:
    return (
        await pool.fetchval("SELECT count(*) FROM processed_events"),
        await pool.fetchval("SELECT count(*) FROM request_ids"),
    )


def test_plat01_retention_never_shorter_than_the_streams_keep_events():
    assert retention_period(1) == STREAM_MAX_AGE
    assert retention_period(30) == timedelta(days=30)


async def test_plat01_running_service_prunes_old_event_and_request_ids(tenant, monkeypatch):
    monkeypatch.setenv("KAIWA_RETENTION_INTERVAL", "0.1")
    async with running(_spec(f"retention_{uuid.uuid4().hex[:8]}")) as service:
        pool = service.ctx.pool
        await _add_rows(pool, tenant, timedelta(days=9), 3)
        await _add_rows(pool, tenant, timedelta(days=6), 2)
        await eventually(lambda: _pruned(pool), "rows older than 8 days pruned")
        assert await _counts(pool) == (2, 2)


async def _pruned(pool) -> bool:
    return await _counts(pool) == (2, 2)


async def test_plat01_pruning_deletes_in_batches_until_done(tenant, monkeypatch):
    monkeypatch.setattr("kaiwa_common.retention.BATCH", 2)
    async with running(_spec(f"retention_{uuid.uuid4().hex[:8]}")) as service:
        pool = service.ctx.pool
        # Younger than the service's own retention (8 days), so only this call prunes them.
        await _add_rows(pool, tenant, timedelta(days=7, hours=12), 5)
        await _add_rows(pool, tenant, timedelta(hours=1), 1)
        removed = await prune_once(pool, timedelta(days=7))
        assert removed == {"processed_events": 5, "request_ids": 5}
        assert await _counts(pool) == (1, 1)
