"""PLAT-01 (foundation item 3): grpc.health.v1 is NOT_SERVING until PostgreSQL and NATS
are reachable and SERVING after; reflection lists the service; on SIGTERM the service
turns NOT_SERVING, lets an in-flight call finish and exits 0."""

from __future__ import annotations

import asyncio
import signal

import grpc
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kaiwa_common.devservers import LocalNats, LocalPostgres, free_port
from tests.backbone.support import NOT_SERVING, SERVING, BackboneClient, rpc_code, table_count
from tests.backbone.worker import SERVICE
from tests.fixtures import auth, eventually


async def _reflect(channel: grpc.aio.Channel, request: reflection_pb2.ServerReflectionRequest):
    call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(iter([request]), timeout=5)
    async for response in call:
        return response


async def _waiting_for_nats(db, worker, schema: str) -> None:
    """The service has its database (its migrations are in) and is now waiting for NATS."""

    async def migrated() -> bool:
        return await db.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".slow_calls')

    await eventually(migrated, "the service to connect to PostgreSQL and migrate", timeout=20)
    await worker.wait_health(NOT_SERVING)


async def test_plat01_health_waits_for_nats_then_sigterm_drains_in_flight_call(db, names, workers, tmp_path, tenant):
    nats_server = LocalNats(tmp_path / "nats", free_port())  # not started yet
    try:
        worker = workers("svc", schema=names["producer"], prefix=names["prefix"], nats_url=nats_server.url).start()
        await _waiting_for_nats(db, worker, names["producer"])
        assert await worker.health() == NOT_SERVING
        assert await worker.health(SERVICE) == NOT_SERVING
        async with grpc.aio.insecure_channel(worker.address) as channel:
            client = BackboneClient(channel, auth(tenant, "agent", "a1"))
            with_token = await rpc_code(client.write("too early"))
            assert with_token == grpc.StatusCode.UNAVAILABLE

            nats_server.start()
            await worker.wait_health(SERVING)
            assert await worker.health(SERVICE) == SERVING

            # Reflection, without a token: lists the service and can describe it.
            listed = await _reflect(channel, reflection_pb2.ServerReflectionRequest(list_services=""))
            names_listed = {s.name for s in listed.list_services_response.service}
            assert {SERVICE, "grpc.health.v1.Health"} <= names_listed
            described = await _reflect(channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE))
            files = [
                descriptor_pb2.FileDescriptorProto.FromString(raw)
                for raw in described.file_descriptor_response.file_descriptor_proto
            ]
            methods = {m.name for f in files for s in f.service for m in s.method}
            assert {"Write", "Whoami", "Slow", "Ping"} <= methods

            # SIGTERM while a call is in flight and a health watcher is connected.
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
            assert (await watch.read()).status == SERVING
            slow = asyncio.ensure_future(client.slow(1.5))

            async def slow_call_started() -> bool:
                return await table_count(db, names["producer"], "slow_calls") == 1

            await eventually(slow_call_started, "the slow call to be in flight")
            worker.proc.send_signal(signal.SIGTERM)
            assert (await watch.read()).status == NOT_SERVING
            watch.cancel()
            assert await rpc_code(client.write("after SIGTERM")) == grpc.StatusCode.UNAVAILABLE
            await slow  # the in-flight call completes normally
        assert await worker.wait_exit() == 0
        assert "stopped" in worker.log_tail()
    finally:
        nats_server.stop()


async def test_plat01_sigterm_while_waiting_for_nats_exits_cleanly(db, names, workers):
    unused = free_port()  # nothing listens here
    worker = workers("svc", schema=names["producer"], prefix=names["prefix"], nats_url=f"nats://127.0.0.1:{unused}").start()
    await _waiting_for_nats(db, worker, names["producer"])
    worker.proc.send_signal(signal.SIGTERM)
    assert await worker.wait_exit() == 0


async def test_plat01_health_waits_for_postgres(names, workers, tmp_path, tenant):
    pg = LocalPostgres(tmp_path / "pg", free_port(), database="kaiwa")  # not started yet
    try:
        worker = workers("svc", schema=names["producer"], prefix=names["prefix"], database_url=pg.url).start()
        await worker.wait_health(NOT_SERVING)
        async with grpc.aio.insecure_channel(worker.address) as channel:
            client = BackboneClient(channel, auth(tenant, "agent", "a1"))
            assert await rpc_code(client.write("too early")) == grpc.StatusCode.UNAVAILABLE
            assert await worker.health(SERVICE) == NOT_SERVING
            pg.start()
            await worker.wait_health(SERVING)
            assert await rpc_code(client.write("now")) == grpc.StatusCode.OK
    finally:
        pg.stop()
