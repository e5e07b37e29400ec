"""Fixtures of the backbone tests: worker processes, an inspection connection, clean-up."""

from __future__ import annotations

import asyncpg
import nats
import pytest

from kaiwa_common.events import SERVICES, stream_name
from tests.backbone.support import WorkerProcess, unique


@pytest.fixture
async def db(infra):
    """A plain connection to the session database, to look at the test service's tables."""
    conn = await asyncpg.connect(infra["database_url"])
    yield conn
    await conn.close()


@pytest.fixture
async def names(infra):
    """Fresh schema, subject prefix and durable names for one test, removed from the
    session servers afterwards (so the real services' streams are never touched)."""
    chosen = {
        "prefix": unique("bb"),
        "producer": unique("bb_prod_"),
        "consumer": unique("bb_cons_"),
        "durable": unique("bb-applier-"),
    }
    yield chosen
    conn = await asyncpg.connect(infra["database_url"])
    try:
        for key in ("producer", "consumer"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{chosen[key]}" CASCADE')
    finally:
        await conn.close()
    nc = await nats.connect(infra["nats_url"])
    try:
        js = nc.jetstream()
        for source in SERVICES:
            try:
                await js.delete_stream(stream_name(chosen["prefix"], source))
            except nats.js.errors.NotFoundError:
                pass
    finally:
        await nc.close()


@pytest.fixture
async def workers(tmp_path, infra):
    """A factory of worker processes; every one still running is killed after the test."""
    started: list[WorkerProcess] = []

    def make(label: str, **kwargs) -> WorkerProcess:
        kwargs.setdefault("database_url", infra["database_url"])
        kwargs.setdefault("nats_url", infra["nats_url"])
        worker = WorkerProcess(tmp_path, label=label, **kwargs)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.kill()
