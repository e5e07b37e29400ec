"""Per-tenant state: the CRM connection, the settings, CRM users, visitors known by
e-mail, chats' pre-chat form fields, and the cache of records read from an external CRM."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ..domain.connection import BUILTIN, Connection
from ..domain.settings import CrmSettings


@dataclass(frozen=True)
class CrmUser:
    id: str
    email: str
    name: str
    admin: bool
    agent_id: str
    key_hash: str


async def connection(conn: asyncpg.Connection, tenant: str, *, lock: bool = False) -> Connection:
    """The tenant's connection; a tenant that never connected one uses the built-in CRM."""
    row = await conn.fetchrow("SELECT * FROM connections WHERE tenant = $1" + (" FOR UPDATE" if lock else ""), tenant)
    if row is None:
        return Connection(kind=BUILTIN)
    return Connection(
        kind=row["kind"],
        enabled=row["enabled"],
        admin_email=row["admin_email"],
        key_cipher=row["key_cipher"],
        client_id=row["client_id"],
        client_secret_cipher=row["client_secret_cipher"],
        data_center=row["data_center"],
        connected_by=row["connected_by"],
        connected_at=row["connected_at"],
        status=row["status"],
    )


async def save_connection(conn: asyncpg.Connection, tenant: str, c: Connection) -> None:
    """Connect (or change the account): the cached access token is dropped with the old key."""
    await conn.execute(
        "INSERT INTO connections (tenant, kind, enabled, admin_email, key_cipher, client_id, client_secret_cipher, "
        "data_center, connected_by, connected_at) VALUES ($1, $2, true, $3, $4, $5, $6, $7, $8, now()) "
        "ON CONFLICT (tenant) DO UPDATE SET kind = EXCLUDED.kind, enabled = true, admin_email = EXCLUDED.admin_email, "
        "key_cipher = EXCLUDED.key_cipher, client_id = EXCLUDED.client_id, "
        "client_secret_cipher = EXCLUDED.client_secret_cipher, data_center = EXCLUDED.data_center, "
        "connected_by = EXCLUDED.connected_by, connected_at = now(), access_token_cipher = '', "
        "access_token_expires = NULL, api_url = '', status = 'ok', paused_until = NULL",
        tenant,
        c.kind,
        c.admin_email,
        c.key_cipher,
        c.client_id,
        c.client_secret_cipher,
        c.data_center,
        c.connected_by,
    )


async def set_enabled(conn: asyncpg.Connection, tenant: str, enabled: bool) -> None:
    await conn.execute(
        "INSERT INTO connections (tenant, kind, enabled) VALUES ($1, 'builtin', $2) "
        "ON CONFLICT (tenant) DO UPDATE SET enabled = EXCLUDED.enabled",
        tenant,
        enabled,
    )


async def access_token(conn: asyncpg.Connection, tenant: str) -> tuple[str, datetime | None, str]:
    row = await conn.fetchrow(
        "SELECT access_token_cipher, access_token_expires, api_url FROM connections WHERE tenant = $1", tenant
    )
    return (row["access_token_cipher"], row["access_token_expires"], row["api_url"]) if row else ("", None, "")


async def save_access_token(conn: asyncpg.Connection, tenant: str, cipher: str, expires: datetime, api_url: str) -> None:
    await conn.execute(
        "UPDATE connections SET access_token_cipher = $2, access_token_expires = $3, api_url = $4, status = 'ok' "
        "WHERE tenant = $1",
        tenant,
        cipher,
        expires,
        api_url,
    )


async def set_status(conn: asyncpg.Connection, tenant: str, status: str, paused_until: datetime | None = None) -> None:
    await conn.execute(
        "UPDATE connections SET status = $2, paused_until = coalesce($3, paused_until) WHERE tenant = $1",
        tenant,
        status,
        paused_until,
    )


async def paused_until(conn: asyncpg.Connection, tenant: str) -> datetime | None:
    return await conn.fetchval("SELECT paused_until FROM connections WHERE tenant = $1 AND paused_until > now()", tenant)


async def settings(conn: asyncpg.Connection, tenant: str) -> CrmSettings:
    data = await conn.fetchval("SELECT data FROM settings WHERE tenant = $1", tenant)
    return CrmSettings.from_json(data)


async def save_settings(conn: asyncpg.Connection, tenant: str, s: CrmSettings) -> None:
    await conn.execute(
        "INSERT INTO settings (tenant, data) VALUES ($1, $2) ON CONFLICT (tenant) DO UPDATE SET data = EXCLUDED.data, "
        "updated_at = now()",
        tenant,
        s.to_json(),
    )


async def next_pool_turn(conn: asyncpg.Connection, tenant: str) -> int:
    """CRM-04: the distribution pool's next turn (counted per tenant, in the caller's transaction)."""
    return await conn.fetchval(
        "INSERT INTO settings (tenant, pool_turn) VALUES ($1, 1) "
        "ON CONFLICT (tenant) DO UPDATE SET pool_turn = settings.pool_turn + 1 RETURNING pool_turn - 1",
        tenant,
    )


async def upsert_user(conn: asyncpg.Connection, tenant: str, email: str, name: str, admin: bool, agent_id: str) -> CrmUser:
    row = await conn.fetchrow(
        "INSERT INTO crm_users (tenant, id, email, name, admin, agent_id) VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (tenant, lower(email)) DO UPDATE SET name = EXCLUDED.name, admin = EXCLUDED.admin, "
        "agent_id = EXCLUDED.agent_id RETURNING *",
        tenant,
        uuid.uuid4(),
        email,
        name,
        admin,
        agent_id,
    )
    return _user(row)


async def users(conn: asyncpg.Connection, tenant: str) -> list[CrmUser]:
    return [_user(r) for r in await conn.fetch("SELECT * FROM crm_users WHERE tenant = $1 ORDER BY lower(email)", tenant)]


async def user_of_agent(conn: asyncpg.Connection, tenant: str, agent_id: str) -> CrmUser | None:
    if not agent_id:
        return None
    row = await conn.fetchrow("SELECT * FROM crm_users WHERE tenant = $1 AND agent_id = $2", tenant, agent_id)
    return _user(row) if row else None


async def user_by_email(conn: asyncpg.Connection, tenant: str, email: str) -> CrmUser | None:
    row = await conn.fetchrow("SELECT * FROM crm_users WHERE tenant = $1 AND lower(email) = lower($2)", tenant, email)
    return _user(row) if row else None


async def first_admin(conn: asyncpg.Connection, tenant: str) -> CrmUser | None:
    row = await conn.fetchrow("SELECT * FROM crm_users WHERE tenant = $1 AND admin ORDER BY created_at, id LIMIT 1", tenant)
    return _user(row) if row else None


async def set_key_hash(conn: asyncpg.Connection, tenant: str, user_id: str, key_hash: str) -> None:
    await conn.execute("UPDATE crm_users SET key_hash = $3 WHERE tenant = $1 AND id = $2", tenant, uuid.UUID(user_id), key_hash)


async def remember_visitor(
    conn: asyncpg.Connection, tenant: str, visitor_id: str, email: str, name: str, agent: str = ""
) -> None:
    await conn.execute(
        "INSERT INTO known_visitors (tenant, visitor_id, email, name, last_agent) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (tenant, visitor_id) DO UPDATE SET email = EXCLUDED.email, "
        "name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE known_visitors.name END, "
        "last_agent = CASE WHEN EXCLUDED.last_agent <> '' THEN EXCLUDED.last_agent ELSE known_visitors.last_agent END, "
        "updated_at = now()",
        tenant,
        visitor_id,
        email,
        name,
        agent,
    )


async def known_visitor(conn: asyncpg.Connection, tenant: str, visitor_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM known_visitors WHERE tenant = $1 AND visitor_id = $2", tenant, visitor_id)


async def save_chat_form(conn: asyncpg.Connection, tenant: str, chat_id: str, fields: dict[str, str]) -> None:
    """CRM-08: a chat's pre-chat form fields, as chat_started gave them (first one kept)."""
    await conn.execute(
        "INSERT INTO chat_form_fields (tenant, chat_id, fields) VALUES ($1, $2, $3) ON CONFLICT (tenant, chat_id) DO NOTHING",
        tenant,
        chat_id,
        fields,
    )


async def chat_form(conn: asyncpg.Connection, tenant: str, chat_id: str) -> dict[str, str]:
    if not chat_id:
        return {}
    found = await conn.fetchval("SELECT fields FROM chat_form_fields WHERE tenant = $1 AND chat_id = $2", tenant, chat_id)
    return found or {}


async def cached_record(conn: asyncpg.Connection, tenant: str, email: str) -> tuple[dict | None, datetime] | None:
    row = await conn.fetchrow(
        "SELECT record, fetched_at FROM record_cache WHERE tenant = $1 AND email_key = lower($2)", tenant, email
    )
    return (row["record"], row["fetched_at"]) if row else None


async def cache_record(conn: asyncpg.Connection, tenant: str, email: str, record: dict | None) -> None:
    await conn.execute(
        "INSERT INTO record_cache (tenant, email_key, record) VALUES ($1, lower($2), $3) "
        "ON CONFLICT (tenant, email_key) DO UPDATE SET record = EXCLUDED.record, fetched_at = now()",
        tenant,
        email,
        record,
    )


async def forget_record(conn: asyncpg.Connection, tenant: str, email: str) -> None:
    await conn.execute("DELETE FROM record_cache WHERE tenant = $1 AND email_key = lower($2)", tenant, email)


def _user(row) -> CrmUser:
    return CrmUser(str(row["id"]), row["email"], row["name"], row["admin"], row["agent_id"], row["key_hash"])
