"""Reusable fixtures and helpers: tokens, in-process services on ephemeral ports."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import uuid
from typing import AsyncIterator

import grpc
import pytest

from kaiwa_common.app import ServiceRunner, ServiceSpec
from kaiwa_common.auth import mint_token
from kaiwa_common.config import Settings


class _ErrorRecords(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def unexpected_errors(lines: list[str], allowed: list[str]) -> list[str]:
    """The error lines no pattern in `allowed` explains."""
    patterns = [re.compile(p) for p in allowed]
    return [line for line in lines if not any(p.search(line) for p in patterns)]


@pytest.fixture(autouse=True)
def no_unhandled_errors(request):
    """A test fails when anything in this process logs at ERROR or above during it (an
    unhandled error in a service, a connection returned mid-transaction, ...), unless the
    test declares it with @pytest.mark.expected_error_logs("regex", ...)."""
    handler = _ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    yield
    root.removeHandler(handler)
    allowed = [p for marker in request.node.iter_markers("expected_error_logs") for p in marker.args]
    lines = [f"{r.name}: {r.getMessage()} {getattr(r, 'fields', '')}" for r in handler.records]
    unexpected = unexpected_errors(lines, allowed)
    if unexpected:
        pytest.fail("errors logged during the test:\n" + "\n".join(unexpected[:10]), pytrace=False)


@pytest.fixture(scope="module", autouse=True)
def own_subject_prefix():
    """Each test module gets streams of its own (KAIWA_SUBJECT_PREFIX), so a service started
    with a new durable consumer does not replay the events of every earlier test."""
    patch = pytest.MonkeyPatch()
    patch.setenv("KAIWA_SUBJECT_PREFIX", f"k{uuid.uuid4().hex[:10]}")
    yield
    patch.undo()


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


async def eventually(probe, what: str, timeout: float = 15.0, interval: float = 0.05):
    """Poll an eventually-consistent effect until `probe` (a plain or an async function)
    returns something truthy, and return it; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"never happened within {timeout}s: {what} (last value: {result!r})")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def events_of(tenant: str, source: str, event_type: str) -> AsyncIterator[list]:
    """Events of one tenant as the relay publishes them on <prefix>.<source>.<event_type>."""
    import nats
    from kaiwa.events.v1.envelope_pb2 import Event

    seen: list = []
    nc = await nats.connect(Settings().nats_url)

    async def on_message(msg):
        event = Event.FromString(msg.data)
        if event.tenant == tenant:
            seen.append(event)

    await nc.subscribe(f"{Settings().subject_prefix}.{source}.{event_type}", cb=on_message)
    try:
        yield seen
    finally:
        await nc.drain()
