"""PLAT-01 (foundation item 8): NATS or PostgreSQL going away. Writes keep being accepted
while NATS is down and everything is delivered exactly once when it is back; a
PostgreSQL restart (clean stop, then kill -9) is survived without restarting a service:
RPCs answer UNAVAILABLE meanwhile, then succeed, and relay, consumer and timers resume.

These tests start their own PostgreSQL / NATS (free ports, temp dirs): the session-wide
servers are never stopped."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import asyncpg
import grpc

from kaiwa_common.db import create_pool, unit_of_work
from kaiwa_common.devservers import LocalNats, LocalPostgres, free_port
from kaiwa_common.timers import schedule
from tests.backbone.support import (
    BackboneClient,
    applied_counts,
    assert_exactly_once,
    rpc_code,
    table_count,
    wait_consumer_settled,
)
from tests.backbone.worker import TIMER_KIND
from tests.fixtures import auth, eventually


async def _count(url: str, schema: str, table: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await table_count(conn, schema, table)
    finally:
        await conn.close()


async def test_plat01_nats_down_writes_accepted_and_delivered_once_after(db, names, workers, tmp_path, tenant):
    nats_server = LocalNats(tmp_path / "nats", free_port()).start()
    try:
        prefix, producer_schema, consumer_schema = names["prefix"], names["producer"], names["consumer"]
        consumer = workers("consumer", schema=consumer_schema, prefix=prefix, consumer=names["durable"], nats_url=nats_server.url)
        producer = workers("producer", schema=producer_schema, prefix=prefix, nats_url=nats_server.url)
        await asyncio.gather(consumer.start_serving(), producer.start_serving())

        async def applied() -> int:
            return await table_count(db, consumer_schema, "applied")

        async def outbox() -> int:
            return await table_count(db, producer_schema, "outbox")

        async with grpc.aio.insecure_channel(producer.address) as channel:
            client = BackboneClient(channel, auth(tenant, "agent", "a1"))
            ids = [(await client.write(f"before-{i}")).value for i in range(50)]
            await eventually(lambda: _equals(applied, 50), "events written before the outage to be applied")
            await eventually(lambda: _equals(outbox, 0), "the relay to delete what JetStream acknowledged")

            nats_server.stop()
            # The write path does not need NATS: every call succeeds, the outbox grows.
            during = [(await client.write(f"during-{i}")).value for i in range(300)]
            assert await outbox() == len(during)
            await eventually(
                lambda: _logged(producer, "relay could not publish"),
                "the relay to fail publishing while NATS is down",
                timeout=20,
                interval=0.2,
            )
            assert await applied() == 50

            nats_server.start()  # same port, same store directory
            ids += during
            ids += [(await client.write(f"after-{i}")).value for i in range(50)]
            await eventually(
                lambda: _equals(applied, len(ids)), "every event to be applied after NATS is back", timeout=45, interval=0.1
            )
        await wait_consumer_settled(nats_server.url, prefix, names["durable"])
        assert await outbox() == 0
        assert_exactly_once(await applied_counts(db, consumer_schema, tenant), ids)
        assert consumer.running and producer.running
    finally:
        nats_server.stop()


async def test_plat01_postgres_restart_and_crash_services_reconnect(names, workers, tmp_path, tenant):
    pg = LocalPostgres(tmp_path / "pg", free_port(), database="kaiwa", durable=True).start()
    try:
        prefix, producer_schema, consumer_schema = names["prefix"], names["producer"], names["consumer"]
        consumer = workers("consumer", schema=consumer_schema, prefix=prefix, consumer=names["durable"], database_url=pg.url)
        producer = workers("producer", schema=producer_schema, prefix=prefix, database_url=pg.url, timers=True)
        await asyncio.gather(consumer.start_serving(), producer.start_serving())

        async def applied() -> int:
            return await _count(pg.url, consumer_schema, "applied")

        ids: list[str] = []
        async with grpc.aio.insecure_channel(producer.address) as channel:
            client = BackboneClient(channel, auth(tenant, "agent", "a1"))
            for outage, take_down in (("stop", pg.stop), ("kill", pg.kill)):
                ids += [(await client.write(f"{outage}-before-{i}")).value for i in range(20)]
                written = len(ids)
                await eventually(lambda n=written: _equals(applied, n), "events before the outage to be applied")
                pool = await create_pool(pg.url, producer_schema, min_size=1, max_size=1)
                try:
                    async with unit_of_work(pool) as conn:
                        await schedule(conn, tenant, TIMER_KIND, f"due-while-down-{outage}", delay=0.3)
                        due = await conn.fetchval("SELECT due_at FROM timers WHERE key = $1", f"due-while-down-{outage}")
                finally:
                    await pool.close()

                take_down()
                codes = [await rpc_code(client.write(f"{outage}-refused-{i}", timeout=10)) for i in range(5)]
                assert codes == [grpc.StatusCode.UNAVAILABLE] * 5, codes
                while datetime.now(timezone.utc) <= due:  # the timer comes due while PostgreSQL is down
                    await asyncio.sleep(0.05)
                pg.start()

                async def write_succeeds(outage: str = outage) -> str | None:
                    try:
                        return (await client.write(f"{outage}-first-after", timeout=5)).value
                    except grpc.aio.AioRpcError as err:
                        assert err.code() == grpc.StatusCode.UNAVAILABLE, err
                        return None

                ids.append(await eventually(write_succeeds, "writes to succeed again", timeout=30, interval=0.1))
                ids += [(await client.write(f"{outage}-after-{i}")).value for i in range(20)]
                written = len(ids)
                await eventually(lambda n=written: _equals(applied, n), "relay and consumer to resume", timeout=30)
                await eventually(
                    lambda: _relay_listening(pg.url, producer_schema), "the relay to LISTEN for outbox notifications again"
                )

                async def timer_fired(outage: str = outage) -> bool:
                    return await _count(pg.url, producer_schema, "timer_fired") == (1 if outage == "stop" else 2)

                await eventually(timer_fired, "the timer that came due while down to fire")

            assert consumer.running and producer.running, "no service was restarted"
        await wait_consumer_settled(producer.env["KAIWA_NATS_URL"], prefix, names["durable"])
        conn = await asyncpg.connect(pg.url)
        try:
            assert_exactly_once(await applied_counts(conn, consumer_schema, tenant), ids)
            fired = await conn.fetch(f'SELECT key, count(*) AS n FROM "{producer_schema}".timer_fired GROUP BY key')
            assert {r["key"]: r["n"] for r in fired} == {"due-while-down-stop": 1, "due-while-down-kill": 1}
            assert await conn.fetchval(f'SELECT count(*) FROM "{producer_schema}".notes') == len(ids)
        finally:
            await conn.close()
    finally:
        pg.stop()


async def _relay_listening(url: str, schema: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query = $1", f'LISTEN "kaiwa_outbox_{schema}"') == 1
        )
    finally:
        await conn.close()


async def _equals(count, n: int) -> bool:
    return await count() == n


async def _logged(worker, text: str) -> bool:
    return text in worker.log_tail(200_000)
