"""asyncpg pool (created inside the running loop) and the one-transaction unit of work."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

import asyncpg

log = logging.getLogger("kaiwa.db")

# Errors that mean "the database is (briefly) out of reach", not "the caller is wrong".
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # A pooled connection whose server died under it can fail this way instead of with a
    # connection error (seen after kill -9 of PostgreSQL); the pool then replaces it.
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Replaces asyncpg's reset query on release (a round trip per unit of work). Our code
    leaves no session state on pooled connections: LISTEN runs on dedicated connections
    (listener.py), settings are only SET LOCAL, advisory locks are unlocked in `finally`.
    asyncpg still rolls back an open transaction and drops listeners before this runs."""


async def create_pool(
    database_url: str, schema: str, *, min_size: int = 2, max_size: int = 20, application_name: str = "kaiwa"
) -> asyncpg.Pool:
    """A pool whose connections see `schema` first; the service's SQL needs no prefixes."""
    return await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        server_settings={"search_path": f"{schema},public", "application_name": application_name},
        command_timeout=30,
    )


async def connect_with_retry(database_url: str, schema: str, stop: asyncio.Event | None = None, **kwargs) -> asyncpg.Pool:
    delay = 0.2
    while True:
        try:
            return await create_pool(database_url, schema, **kwargs)
        except (*TRANSIENT_DB_ERRORS, asyncpg.InvalidCatalogNameError) as exc:
            # A database still being created (or restored) is waited for like one that is
            # down: health stays NOT_SERVING and the log says why.
            if stop is not None and stop.is_set():
                raise
            log.warning("database not reachable yet, retrying", extra={"fields": {"error": repr(exc)}})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)


@asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One transaction for one command: its state change and its outbox events commit together."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            yield conn
