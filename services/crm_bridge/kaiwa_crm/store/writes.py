"""CRM-10: the queue of writes to an external CRM. A write is claimed with a lease (not a
held transaction: a CRM call may take seconds), its progress is saved step by step, and
it ends done or dead (refused by the CRM, parked for an admin)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

QUEUED, DONE, DEAD = "queued", "done", "dead"
LEASE_SECONDS = 120


@dataclass(frozen=True)
class StoredWrite:
    tenant: str
    id: str
    key: str
    kind: str
    params: dict
    content: bytes
    state: str
    attempts: int
    error: str
    progress: dict
    result: dict | None
    next_attempt_at: datetime
    created_at: datetime


async def enqueue(
    conn: asyncpg.Connection, tenant: str, key: str, kind: str, params: dict, content: bytes, due_in: float = 0
) -> str:
    """The write's id; the same key again returns the first write (natural idempotency).
    `due_in`: seconds before the background runner may take it (an RPC runs it itself)."""
    write_id = await conn.fetchval(
        "INSERT INTO writes (tenant, id, key, kind, params, content, next_attempt_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7)) "
        "ON CONFLICT (tenant, key) DO NOTHING RETURNING id",
        tenant,
        uuid.uuid4(),
        key,
        kind,
        params,
        content,
        due_in,
    )
    if write_id is None:
        write_id = await conn.fetchval("SELECT id FROM writes WHERE tenant = $1 AND key = $2", tenant, key)
    return str(write_id)


async def claim_due(conn: asyncpg.Connection, limit: int) -> list[StoredWrite]:
    rows = await conn.fetch(
        "UPDATE writes w SET lease_until = now() + make_interval(secs => $2), attempts = attempts + 1, updated_at = now() "
        "FROM (SELECT tenant, id FROM writes WHERE state = 'queued' AND next_attempt_at <= now() "
        "      AND (lease_until IS NULL OR lease_until < now()) ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED) due "
        "WHERE w.tenant = due.tenant AND w.id = due.id RETURNING w.*",
        limit,
        LEASE_SECONDS,
    )
    return sorted((_write(r) for r in rows), key=lambda w: w.created_at)


async def claim(conn: asyncpg.Connection, tenant: str, write_id: str) -> StoredWrite | None:
    """This write, leased to the caller, unless it is done, dead, or someone holds it."""
    row = await conn.fetchrow(
        "UPDATE writes SET lease_until = now() + make_interval(secs => $3), attempts = attempts + 1, updated_at = now() "
        "WHERE tenant = $1 AND id = $2 AND state = 'queued' AND (lease_until IS NULL OR lease_until < now()) RETURNING *",
        tenant,
        uuid.UUID(write_id),
        LEASE_SECONDS,
    )
    return _write(row) if row else None


async def save_progress(conn: asyncpg.Connection, tenant: str, write_id: str, progress: dict) -> None:
    await conn.execute(
        "UPDATE writes SET progress = $3, updated_at = now() WHERE tenant = $1 AND id = $2",
        tenant,
        uuid.UUID(write_id),
        progress,
    )


async def finish(conn: asyncpg.Connection, tenant: str, write_id: str, result: dict) -> None:
    await conn.execute(
        "UPDATE writes SET state = 'done', result = $3, error = '', lease_until = NULL, content = '', updated_at = now() "
        "WHERE tenant = $1 AND id = $2",
        tenant,
        uuid.UUID(write_id),
        result,
    )


async def retry_later(conn: asyncpg.Connection, tenant: str, write_id: str, error: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE writes SET error = $3, next_attempt_at = $4, lease_until = NULL, updated_at = now() "
        "WHERE tenant = $1 AND id = $2",
        tenant,
        uuid.UUID(write_id),
        error,
        at,
    )


async def park(conn: asyncpg.Connection, tenant: str, write_id: str, error: str) -> None:
    await conn.execute(
        "UPDATE writes SET state = 'dead', error = $3, lease_until = NULL, updated_at = now() WHERE tenant = $1 AND id = $2",
        tenant,
        uuid.UUID(write_id),
        error,
    )


async def replay(conn: asyncpg.Connection, tenant: str, write_id: str) -> bool:
    status = await conn.execute(
        "UPDATE writes SET state = 'queued', attempts = 0, next_attempt_at = now(), lease_until = NULL, updated_at = now() "
        "WHERE tenant = $1 AND id = $2 AND state = 'dead'",
        tenant,
        uuid.UUID(write_id),
    )
    return status.endswith(" 1")


async def get(conn: asyncpg.Connection, tenant: str, write_id: str) -> StoredWrite | None:
    row = await conn.fetchrow("SELECT * FROM writes WHERE tenant = $1 AND id = $2", tenant, uuid.UUID(write_id))
    return _write(row) if row else None


async def listed(conn: asyncpg.Connection, tenant: str, states: list[str], limit: int = 200) -> list[StoredWrite]:
    rows = await conn.fetch(
        "SELECT * FROM writes WHERE tenant = $1 AND state = ANY($2::text[]) ORDER BY created_at LIMIT $3",
        tenant,
        states,
        limit,
    )
    return [_write(r) for r in rows]


async def counts(conn: asyncpg.Connection, tenant: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT state, count(*) AS n FROM writes WHERE tenant = $1 AND state <> 'done' GROUP BY state", tenant
    )
    return {r["state"]: r["n"] for r in rows}


def _write(row) -> StoredWrite:
    return StoredWrite(
        tenant=row["tenant"],
        id=str(row["id"]),
        key=row["key"],
        kind=row["kind"],
        params=row["params"],
        content=bytes(row["content"]),
        state=row["state"],
        attempts=row["attempts"],
        error=row["error"],
        progress=row["progress"],
        result=row["result"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
    )
