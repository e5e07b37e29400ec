"""Foundation item 9 for the shared infrastructure: a caller's mistake gets a precise
status and message, never UNKNOWN or INTERNAL, and nothing is half-written."""

from __future__ import annotations

import grpc
import pytest

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from tests.backbone.support import BackboneClient
from tests.backbone.worker import SERVICE, build_spec
from tests.fixtures import auth


@pytest.fixture
async def runner(names):
    runner = await ServiceRunner(build_spec(names["producer"]), Settings(subject_prefix=names["prefix"]), port=0).start()
    try:
        yield runner
    finally:
        await runner.stop(grace=1)


async def test_plat01_invalid_argument_from_handler_writes_nothing(runner, tenant):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runner.port}") as channel:
        client = BackboneClient(channel, auth(tenant, "agent", "a1"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.write("   ")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == "note must not be empty"
    assert await runner.ctx.pool.fetchval("SELECT count(*) FROM notes WHERE tenant = $1", tenant) == 0
    assert await runner.ctx.pool.fetchval("SELECT count(*) FROM outbox WHERE tenant = $1", tenant) == 0


async def test_plat01_undecodable_request_bytes_are_invalid_argument(runner, tenant):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runner.port}") as channel:
        raw = channel.unary_unary(f"/{SERVICE}/Write")  # bytes in, bytes out
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw(b"\x0f\xff not a StringValue", metadata=auth(tenant, "agent", "a1"), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
        assert "StringValue" in err.value.details()
        # Authentication still comes first: garbage without a token is UNAUTHENTICATED.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw(b"\x0f\xff not a StringValue", timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert await runner.ctx.pool.fetchval("SELECT count(*) FROM notes WHERE tenant = $1", tenant) == 0
