"""Agents: who they are, their availability and capacity, and the candidates of a pass."""

from __future__ import annotations

import uuid

import asyncpg

from ..domain.model import Candidate

Conn = asyncpg.Connection

_WITH_DEPARTMENTS = (
    "SELECT a.*, coalesce(array_agg(da.department_id ORDER BY da.department_id) "
    "FILTER (WHERE da.department_id IS NOT NULL), '{}') AS department_ids "
    "FROM agents a LEFT JOIN department_agents da ON da.tenant = a.tenant AND da.agent_id = a.id "
)


async def get(conn: Conn, tenant: str, agent_id: str) -> asyncpg.Record | None:
    """The agent with their department ids."""
    return await conn.fetchrow(_WITH_DEPARTMENTS + "WHERE a.tenant = $1 AND a.id = $2 GROUP BY a.tenant, a.id", tenant, agent_id)


async def get_plain(conn: Conn, tenant: str, agent_id: str) -> asyncpg.Record | None:
    """The agent without their departments (cheaper than `get`)."""
    return await conn.fetchrow("SELECT * FROM agents WHERE tenant = $1 AND id = $2", tenant, agent_id)


async def by_email(conn: Conn, tenant: str, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_WITH_DEPARTMENTS + "WHERE a.tenant = $1 AND a.email = $2 GROUP BY a.tenant, a.id", tenant, email)


async def list_all(conn: Conn, tenant: str, department_id: str | None) -> list[asyncpg.Record]:
    """The tenant's agents, or a department's (by e-mail)."""
    if department_id is None:
        return await conn.fetch(_WITH_DEPARTMENTS + "WHERE a.tenant = $1 GROUP BY a.tenant, a.id ORDER BY a.email", tenant)
    return await conn.fetch(
        _WITH_DEPARTMENTS + "WHERE a.tenant = $1 AND a.id IN (SELECT agent_id FROM department_agents "
        "WHERE tenant = $1 AND department_id = $2) GROUP BY a.tenant, a.id ORDER BY a.email",
        tenant,
        department_id,
    )


async def existing_ids(conn: Conn, tenant: str, ids: list[str]) -> set[str]:
    rows = await conn.fetch("SELECT id FROM agents WHERE tenant = $1 AND id = ANY($2::uuid[])", tenant, ids)
    return {str(r["id"]) for r in rows}


async def lock_by_email(conn: Conn, tenant: str, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM agents WHERE tenant = $1 AND email = $2 FOR UPDATE", tenant, email)


async def insert(conn: Conn, tenant: str, email: str, name: str, max_chats: int) -> str:
    agent_id = str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO agents (id, tenant, email, name, max_chats) VALUES ($1, $2, $3, $4, $5)",
        agent_id,
        tenant,
        email,
        name,
        max_chats,
    )
    return agent_id


async def update(conn: Conn, tenant: str, agent_id: str, name: str, max_chats: int) -> None:
    await conn.execute(
        "UPDATE agents SET name = $3, max_chats = $4 WHERE tenant = $1 AND id = $2", tenant, agent_id, name, max_chats
    )


async def set_availability(conn: Conn, tenant: str, agent_id: str, availability: str) -> str | None:
    """Sets it, holding the row FOR UPDATE until commit, and returns the previous
    availability (None: no such agent)."""
    return await conn.fetchval(
        "UPDATE agents a SET availability = $3 FROM (SELECT id, availability FROM agents WHERE tenant = $1 AND id = $2 "
        "FOR UPDATE) old WHERE a.tenant = $1 AND a.id = old.id RETURNING old.availability",
        tenant,
        agent_id,
        availability,
    )


async def lock_for_move(conn: Conn, tenant: str, agent_ids: list[str]) -> None:
    """Both agents of a move, in id order (crossing moves cannot deadlock). NO KEY UPDATE,
    like the capacity UPDATE itself: passes holding FOR KEY SHARE do not block it."""
    await conn.execute(
        "SELECT 1 FROM agents WHERE tenant = $1 AND id = ANY($2::uuid[]) ORDER BY id FOR NO KEY UPDATE", tenant, agent_ids
    )


async def release_capacity(conn: Conn, tenant: str, agent_id: str) -> None:
    """One open chat fewer (the assignment itself takes one: assignments.assign)."""
    await conn.execute("UPDATE agents SET active_chats = active_chats - 1 WHERE tenant = $1 AND id = $2", tenant, agent_id)


async def candidates(conn: Conn, tenant: str, department_id: str | None) -> list[Candidate]:
    """Online agents below their maximum, of the department (of the tenant for no department)."""
    query = (
        "SELECT a.id, a.email, a.active_chats, a.max_chats, a.last_assigned_at, {offered} AS last_offered_at, "
        "a.max_chats - a.active_chats - (SELECT count(*) FROM offers o WHERE o.tenant = a.tenant AND o.agent_id = a.id) "
        "AS free_slots "
        "FROM agents a {join} WHERE a.tenant = $1 AND a.availability = 'online' AND a.active_chats < a.max_chats"
    )
    if department_id is None:
        rows = await conn.fetch(query.format(offered="NULL::timestamptz", join=""), tenant)
    else:
        rows = await conn.fetch(
            query.format(
                offered="da.last_offered_at",
                join="JOIN department_agents da ON da.tenant = a.tenant AND da.agent_id = a.id AND da.department_id = $2",
            ),
            tenant,
            department_id,
        )
    return [
        Candidate(
            agent_id=str(r["id"]),
            email=r["email"],
            active_chats=r["active_chats"],
            max_chats=r["max_chats"],
            free_slots=r["free_slots"],
            last_assigned_at=r["last_assigned_at"],
            last_offered_at=r["last_offered_at"],
        )
        for r in rows
    ]


async def capacity_overview(conn: Conn, tenant: str, department_id: str | None) -> asyncpg.Record:
    """Online agents, their total capacity and free slots (for estimates and missed reasons)."""
    if department_id is None:
        scope, args = "", (tenant,)
    else:
        scope = "AND a.id IN (SELECT agent_id FROM department_agents WHERE tenant = $1 AND department_id = $2)"
        args = (tenant, department_id)
    return await conn.fetchrow(
        "SELECT count(*) AS online, coalesce(sum(max_chats), 0) AS capacity, "
        "coalesce(sum(max_chats - active_chats), 0) AS free FROM agents a "
        f"WHERE a.tenant = $1 AND a.availability = 'online' {scope}",
        *args,
    )
