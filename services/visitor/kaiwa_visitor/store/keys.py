"""Widget keys, visitor sessions and their secrets (PLAT-02)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from ..domain import RevokedSession, StoredSecret, WidgetKey


async def insert_widget_key(conn: asyncpg.Connection, tenant: str, key: str, label: str) -> WidgetKey:
    row = await conn.fetchrow(
        "INSERT INTO widget_keys (tenant, key, label) VALUES ($1, $2, $3) RETURNING key, label, created_at, revoked_at",
        tenant,
        key,
        label,
    )
    return WidgetKey(**row)


async def get_widget_key(conn: asyncpg.Connection, tenant: str, key: str) -> WidgetKey | None:
    row = await conn.fetchrow(
        "SELECT key, label, created_at, revoked_at FROM widget_keys WHERE tenant = $1 AND key = $2", tenant, key
    )
    return WidgetKey(**row) if row else None


async def revoke_widget_key(conn: asyncpg.Connection, tenant: str, key: str) -> WidgetKey | None:
    row = await conn.fetchrow(
        "UPDATE widget_keys SET revoked_at = coalesce(revoked_at, now()) WHERE tenant = $1 AND key = $2 "
        "RETURNING key, label, created_at, revoked_at",
        tenant,
        key,
    )
    return WidgetKey(**row) if row else None


async def start_session(conn: asyncpg.Connection, tenant: str, widget_key: str, secret_hash: bytes) -> tuple[str, datetime]:
    """A new visitor with its first session and secret: (visitor id, when the secret was issued)."""
    visitor_id, session_id = uuid.uuid4(), uuid.uuid4()
    await conn.execute("INSERT INTO visitors (tenant, id) VALUES ($1, $2)", tenant, visitor_id)
    await conn.execute(
        "INSERT INTO visitor_sessions (tenant, id, visitor_id, widget_key) VALUES ($1, $2, $3, $4)",
        tenant,
        session_id,
        visitor_id,
        widget_key,
    )
    issued_at = await conn.fetchval(
        "INSERT INTO visitor_secrets (tenant, secret_hash, session_id) VALUES ($1, $2, $3) RETURNING created_at",
        tenant,
        secret_hash,
        session_id,
    )
    return str(visitor_id), issued_at


async def lock_secret(conn: asyncpg.Connection, tenant: str, secret_hash: bytes) -> StoredSecret | None:
    """The secret with its session, both locked: a rotation and a revocation of the same
    session take turns, so neither can leave a live secret behind the other."""
    row = await conn.fetchrow(
        "SELECT s.secret_hash, s.session_id, f.visitor_id, s.created_at, s.used_at, "
        "f.revoked_at AS session_revoked_at, k.revoked_at AS key_revoked_at, clock_timestamp() AS checked_at "
        "FROM visitor_secrets s JOIN visitor_sessions f ON f.tenant = s.tenant AND f.id = s.session_id "
        "JOIN widget_keys k ON k.tenant = f.tenant AND k.key = f.widget_key "
        "WHERE s.tenant = $1 AND s.secret_hash = $2 FOR UPDATE OF s, f",
        tenant,
        secret_hash,
    )
    if row is None:
        return None
    return StoredSecret(**{**row, "session_id": str(row["session_id"]), "visitor_id": str(row["visitor_id"])})


async def rotate_secret(conn: asyncpg.Connection, tenant: str, used: StoredSecret, new_hash: bytes, widget_key: str) -> datetime:
    """Trade a locked secret for its successor; the session moves to the key presented."""
    session_id = uuid.UUID(used.session_id)
    await conn.execute(
        "UPDATE visitor_secrets SET used_at = now() WHERE tenant = $1 AND secret_hash = $2", tenant, used.secret_hash
    )
    await conn.execute(
        "UPDATE visitor_sessions SET widget_key = $3, refreshed_at = now() WHERE tenant = $1 AND id = $2",
        tenant,
        session_id,
        widget_key,
    )
    return await conn.fetchval(
        "INSERT INTO visitor_secrets (tenant, secret_hash, session_id) VALUES ($1, $2, $3) RETURNING created_at",
        tenant,
        new_hash,
        session_id,
    )


async def revoke_session(conn: asyncpg.Connection, tenant: str, session_id: str, reason: str) -> None:
    await conn.execute(
        "UPDATE visitor_sessions SET revoked_at = now(), revoked_reason = $3 "
        "WHERE tenant = $1 AND id = $2 AND revoked_at IS NULL",
        tenant,
        uuid.UUID(session_id),
        reason,
    )


async def revoke_session_of_secret(
    conn: asyncpg.Connection, tenant: str, secret_hash: bytes, reason: str
) -> RevokedSession | None:
    """Revoke the session of any of its secrets (current or used); revoking again keeps the first time."""
    row = await conn.fetchrow(
        "UPDATE visitor_sessions f SET revoked_at = coalesce(f.revoked_at, now()), "
        "revoked_reason = coalesce(f.revoked_reason, $3) FROM visitor_secrets s "
        "WHERE s.tenant = $1 AND s.secret_hash = $2 AND f.tenant = s.tenant AND f.id = s.session_id "
        "RETURNING f.visitor_id, f.revoked_at",
        tenant,
        secret_hash,
        reason,
    )
    return RevokedSession(visitor_id=str(row["visitor_id"]), revoked_at=row["revoked_at"]) if row else None


async def revoke_visitor_sessions(conn: asyncpg.Connection, tenant: str, visitor_id: str, reason: str) -> int | None:
    """Revoke every active session of a visitor: how many there were, None for no such visitor."""
    vid = uuid.UUID(visitor_id)
    if not await conn.fetchval("SELECT true FROM visitors WHERE tenant = $1 AND id = $2", tenant, vid):
        return None
    status = await conn.execute(
        "UPDATE visitor_sessions SET revoked_at = now(), revoked_reason = $3 "
        "WHERE tenant = $1 AND visitor_id = $2 AND revoked_at IS NULL",
        tenant,
        vid,
        reason,
    )
    return int(status.split()[-1])
