"""Departments, and which agents belong to them (department_agents)."""

from __future__ import annotations

import uuid

import asyncpg

Conn = asyncpg.Connection


async def upsert(conn: Conn, tenant: str, name: str, strategy: str, accept_timeout: float, max_wait: float) -> asyncpg.Record:
    """Created, or updated by its name (the natural key within a tenant)."""
    return await conn.fetchrow(
        "INSERT INTO departments (id, tenant, name, strategy, accept_timeout_seconds, max_wait_seconds) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, name) DO UPDATE SET strategy = EXCLUDED.strategy, "
        "accept_timeout_seconds = EXCLUDED.accept_timeout_seconds, max_wait_seconds = EXCLUDED.max_wait_seconds "
        "RETURNING *",
        uuid.uuid4(),
        tenant,
        name,
        strategy,
        accept_timeout,
        max_wait,
    )


async def list_all(conn: Conn, tenant: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM departments WHERE tenant = $1 ORDER BY name", tenant)


async def get(conn: Conn, tenant: str, department_id: str | None) -> asyncpg.Record | None:
    """The department; None for an unknown id or for no department (None)."""
    if department_id is None:
        return None
    return await conn.fetchrow("SELECT * FROM departments WHERE tenant = $1 AND id = $2", tenant, department_id)


async def by_name(conn: Conn, tenant: str, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM departments WHERE tenant = $1 AND name = $2", tenant, name)


async def existing_ids(conn: Conn, tenant: str, ids: list[str]) -> set[str]:
    rows = await conn.fetch("SELECT id FROM departments WHERE tenant = $1 AND id = ANY($2::uuid[])", tenant, ids)
    return {str(r["id"]) for r in rows}


async def of_agent(conn: Conn, tenant: str, agent_id: str) -> list[str]:
    rows = await conn.fetch("SELECT department_id FROM department_agents WHERE tenant = $1 AND agent_id = $2", tenant, agent_id)
    return [str(r["department_id"]) for r in rows]


async def set_for_agent(conn: Conn, tenant: str, agent_id: str, department_ids: list[str]) -> None:
    await conn.execute(
        "DELETE FROM department_agents WHERE tenant = $1 AND agent_id = $2 AND NOT (department_id = ANY($3::uuid[]))",
        tenant,
        agent_id,
        department_ids,
    )
    await conn.executemany(
        "INSERT INTO department_agents (tenant, department_id, agent_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(tenant, d, agent_id) for d in department_ids],
    )


async def has_agent(conn: Conn, tenant: str, department_id: str, agent_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM department_agents WHERE tenant = $1 AND department_id = $2 AND agent_id = $3",
            tenant,
            department_id,
            agent_id,
        )
    )
