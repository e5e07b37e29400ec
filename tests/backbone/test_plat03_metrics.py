"""PLAT-03: a service serves Prometheus metrics over HTTP: RPCs by method and code with
latency, the outbox backlog and its oldest row's age, consumer lag, redeliveries and dead
letters, timers due, and (routing) waiting chats by department, sampled at scrape time."""

from __future__ import annotations

import uuid

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from kaiwa_common.devservers import free_port
from tests.backbone.support import BackboneClient
from tests.backbone.worker import build_spec
from tests.fixtures import auth, eventually

WRITE = "/kaiwa.backbone.v1.Backbone/Write"
UNLISTED = "/kaiwa.backbone.v1.Backbone/Unlisted"


async def scrape(port: int) -> dict[tuple[str, tuple], float]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.mark.expected_error_logs("no access policy for method", "event parked in dead_letters")
async def test_plat03_metrics_rpc_outbox_consumer_timers_and_waiting_chats(names, tenant, db):
    schema = names["producer"]
    port = free_port()
    runner = await ServiceRunner(
        build_spec(schema, consumer=names["durable"], timers=True),
        Settings(subject_prefix=names["prefix"]),
        port=0,
        metrics_port=port,
    ).start()
    durable = names["durable"]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runner.port}") as channel:
            client = BackboneClient(channel, auth(tenant, "agent", "a1"))
            for note in ("one", "two", "permanent-1", "flaky-1"):
                await client.write(note)
            counted = [r.value async for r in client._count(client._wrappers.Int64Value(value=3), metadata=client.metadata)]
            assert len(counted) == 3
            try:
                await client._unlisted(client._empty.Empty(), metadata=client.metadata, timeout=5)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.PERMISSION_DENIED
            try:
                await client.write("anonymous", metadata=())
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED

        # Routing's waiting chats, from a table shaped like routing's own (this test service
        # is named "routing"); a timer of a kind nobody fires stays due.
        dept_a, dept_b = str(uuid.uuid4()), str(uuid.uuid4())
        await db.execute(f'CREATE TABLE "{schema}".chats (tenant text, department_id uuid, state text, queued_at timestamptz)')
        await db.execute(
            f"INSERT INTO \"{schema}\".chats VALUES ($1, $2, 'queued', now() - interval '90 seconds'), "
            f"($1, $2, 'queued', now()), ($1, $3, 'queued', now()), ($1, $3, 'assigned', NULL)",
            tenant,
            dept_a,
            dept_b,
        )
        await db.execute(
            f'INSERT INTO "{schema}".timers (tenant, kind, key, due_at) '
            "VALUES ($1, 'bb_nobody', 'k', now() - interval '1 minute')",
            tenant,
        )

        async def settled():
            s = await scrape(port)
            done = (
                value(s, "kaiwa_dead_letters", consumer=durable) == 1
                and (value(s, "kaiwa_consumer_redeliveries_total", consumer=durable) or 0) >= 2
                and value(s, "kaiwa_consumer_pending", consumer=durable, stream=f"{names['prefix']}_ROUTING".upper()) == 0
                and value(s, "kaiwa_outbox_backlog") == 0
            )
            return s if done else None

        s = await eventually(settled, "the events to be consumed and the metrics to show it", timeout=30)
        assert value(s, "kaiwa_rpc_handled_total", method=WRITE, code="OK") == 4
        assert value(s, "kaiwa_rpc_handled_total", method=WRITE, code="UNAUTHENTICATED") == 1
        assert value(s, "kaiwa_rpc_handled_total", method="/kaiwa.backbone.v1.Backbone/Count", code="OK") == 1
        assert value(s, "kaiwa_rpc_handled_total", method=UNLISTED, code="PERMISSION_DENIED") == 1
        assert value(s, "kaiwa_rpc_duration_seconds_count", method=WRITE, code="OK") == 4
        assert value(s, "kaiwa_rpc_duration_seconds_sum", method=WRITE, code="OK") > 0
        assert value(s, "kaiwa_rpc_duration_seconds_bucket", method=WRITE, code="OK", le="+Inf") == 4
        assert not any(name.startswith("kaiwa_rpc") and "grpc.health" in str(labels) for name, labels in s)
        assert value(s, "kaiwa_outbox_published_total") == 4
        assert value(s, "kaiwa_consumer_dead_letters_total", consumer=durable) == 1
        assert value(s, "kaiwa_timers_due", kind="bb_nobody") == 1
        assert value(s, "kaiwa_routing_waiting_chats", tenant=tenant, department=dept_a) == 2
        assert value(s, "kaiwa_routing_waiting_chats", tenant=tenant, department=dept_b) == 1
        assert value(s, "kaiwa_routing_oldest_wait_seconds", tenant=tenant, department=dept_a) >= 89
        assert value(s, "kaiwa_metrics_sample_ok") == 1

        # A row the relay cannot publish (no stream takes its subject): the backlog and its
        # age are what an alert on a stuck outbox watches.
        await db.execute(
            f'INSERT INTO "{schema}".outbox (id, tenant, subject, envelope, created_at) '
            "VALUES ($1, $2, 'nowhere.stuck', '\\x00', now() - interval '5 minutes')",
            uuid.uuid4(),
            tenant,
        )
        s = await scrape(port)
        assert value(s, "kaiwa_outbox_backlog") == 1
        assert value(s, "kaiwa_outbox_oldest_age_seconds") >= 299
    finally:
        await runner.stop(grace=1)
    # The endpoint goes with the service.
    try:
        await scrape(port)
    except httpx.HTTPError:
        pass
    else:
        raise AssertionError("metrics endpoint still up after stop")


def test_plat03_metrics_port_from_settings(monkeypatch):
    monkeypatch.delenv("KAIWA_METRICS_PORT", raising=False)
    monkeypatch.delenv("KAIWA_ROUTING_METRICS_PORT", raising=False)
    assert Settings().metrics_port("routing") == 0  # off unless asked
    monkeypatch.setenv("KAIWA_METRICS_PORT", "9464")
    assert Settings().metrics_port("routing") == 9464
    monkeypatch.setenv("KAIWA_ROUTING_METRICS_PORT", "9501")
    assert Settings().metrics_port("routing") == 9501
    assert Settings().metrics_port("visitor") == 9464
    monkeypatch.setenv("KAIWA_STREAM_REPLICAS", "3")
    assert Settings().stream_replicas == 3
