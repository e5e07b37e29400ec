"""Reusable fixtures and helpers: tokens, in-process services on ephemeral ports."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

import grpc
import pytest

from kaiwa_common.app import ServiceRunner, ServiceSpec
from kaiwa_common.auth import mint_token
from kaiwa_common.config import Settings


def token(tenant: str, role: str, sub: str) -> str:
    return mint_token(Settings(), tenant, role, sub)


def auth(tenant: str, role: str, sub: str) -> tuple[tuple[str, str]]:
    """Call metadata carrying a token for (tenant, role, sub)."""
    return (("authorization", f"Bearer {token(tenant, role, sub)}"),)


@contextlib.asynccontextmanager
async def running(spec: ServiceSpec, **kwargs) -> AsyncIterator[ServiceRunner]:
    """A service in this process on a free port; its peers are found via KAIWA_<SVC>_ADDR."""
    runner = await ServiceRunner(spec, Settings(), port=0, **kwargs).start()
    try:
        yield runner
    finally:
        await runner.stop(grace=1)


@contextlib.asynccontextmanager
async def channel_to(runner: ServiceRunner) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runner.port}") as ch:
        yield ch


async def status_of(call) -> grpc.StatusCode:
    """Await a call expected to fail and return its status code."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()
