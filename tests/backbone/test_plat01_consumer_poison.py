"""PLAT-01 (foundation item 3): the consumer parks poison in dead_letters and terminates
it (an undecodable message, a handler raising PermanentEventError, a handler failing
every time), while a transient error is redelivered and applied exactly once."""

from __future__ import annotations

import grpc
import nats
import pytest

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from kaiwa_common.events import subject
from tests.backbone import worker
from tests.backbone.support import BackboneClient, wait_consumer_settled
from tests.fixtures import auth, eventually


@pytest.mark.expected_error_logs("event parked in dead_letters", "event handler failed")
async def test_plat01_consumer_dead_letters_poison_and_retries_transient_errors(infra, names, tenant):
    prefix, durable = names["prefix"], names["durable"]
    runner = await ServiceRunner(
        worker.build_spec(names["producer"], consumer=durable), Settings(subject_prefix=prefix), port=0
    ).start()
    try:
        pool = runner.ctx.pool
        nc = await nats.connect(infra["nats_url"])
        try:
            garbage = b"\x0f not an Event envelope"
            await nc.jetstream().publish(
                subject(prefix, worker.SOURCE, worker.EVENT_TYPE), garbage, headers={"Nats-Msg-Id": f"garbage-{tenant}"}
            )
        finally:
            await nc.close()

        async with grpc.aio.insecure_channel(f"127.0.0.1:{runner.port}") as channel:
            client = BackboneClient(channel, auth(tenant, "agent", "a1"))
            ids = {kind: (await client.write(f"{kind}-{tenant}")).value for kind in ("permanent", "flaky", "boom", "fine")}

        async def settled_effects():
            parked = await pool.fetchval("SELECT count(*) FROM dead_letters")
            applied = await pool.fetchval("SELECT count(*) FROM applied WHERE tenant = $1", tenant)
            return parked == 3 and applied == 2

        await eventually(settled_effects, "poison to be parked and the rest applied", timeout=30, interval=0.1)
        await wait_consumer_settled(infra["nats_url"], prefix, durable)  # nothing left to redeliver

        parked = {r["event_id"]: r for r in await pool.fetch("SELECT * FROM dead_letters")}
        assert set(parked) == {None, ids["permanent"], ids["boom"]}
        assert bytes(parked[None]["envelope"]) == garbage and "undecodable" in parked[None]["error"]
        assert "can never be applied" in parked[ids["permanent"]]["error"]
        assert parked[ids["permanent"]]["deliveries"] == 1  # parked at once, not retried
        assert parked[ids["boom"]]["deliveries"] == 2 and "handler bug" in parked[ids["boom"]]["error"]
        assert all(r["consumer"] == durable for r in parked.values())

        applied = await pool.fetch("SELECT event_id, count(*) AS n FROM applied WHERE tenant = $1 GROUP BY 1", tenant)
        assert {r["event_id"]: r["n"] for r in applied} == {ids["flaky"]: 1, ids["fine"]: 1}
        assert worker.ATTEMPTS[f"flaky-{tenant}"] == 3  # two transient failures, then applied
        assert worker.ATTEMPTS[f"permanent-{tenant}"] == 1
    finally:
        await runner.stop(grace=1)
