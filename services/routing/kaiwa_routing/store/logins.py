"""CMD-02: agents' XMPP logins (user name, password hash). Every statement is scoped by tenant."""

from __future__ import annotations

import asyncpg

_LOGIN = (
    "SELECT a.id AS agent_id, a.email, a.name, coalesce(l.user_name, '') AS user_name, "
    "coalesce(l.password_hash, '') AS password_hash FROM agents a "
    "LEFT JOIN agent_logins l ON l.tenant = a.tenant AND l.agent_id = a.id "
)


async def of_agent(conn, tenant: str, agent_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_LOGIN + "WHERE a.tenant = $1 AND a.id = $2", tenant, agent_id)


async def by_user_name(conn, tenant: str, user_name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_LOGIN + "WHERE a.tenant = $1 AND l.user_name = $2", tenant, user_name)


async def user_name_owner(conn, tenant: str, user_name: str) -> str | None:
    owner = await conn.fetchval("SELECT agent_id FROM agent_logins WHERE tenant = $1 AND user_name = $2", tenant, user_name)
    return str(owner) if owner else None


async def set_user_name(conn, tenant: str, agent_id: str, user_name: str) -> None:
    await conn.execute(
        "INSERT INTO agent_logins (tenant, agent_id, user_name) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant, agent_id) DO UPDATE SET user_name = EXCLUDED.user_name, updated_at = now()",
        tenant,
        agent_id,
        user_name,
    )


async def set_password(conn, tenant: str, agent_id: str, password_hash: str) -> None:
    await conn.execute(
        "INSERT INTO agent_logins (tenant, agent_id, password_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant, agent_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()",
        tenant,
        agent_id,
        password_hash,
    )
