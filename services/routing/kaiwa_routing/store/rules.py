"""Assignment and priority rules, as domain Rules."""

from __future__ import annotations

import asyncpg

from kaiwa_common.crm_conditions import Condition

from ..domain.rules import Rule

Conn = asyncpg.Connection


def _rule(row: asyncpg.Record) -> Rule:
    conditions = tuple(Condition(c["field"], c["op"], c.get("value", "")) for c in row["conditions"])
    return Rule(
        id=str(row["id"]),
        kind=row["kind"],
        name=row["name"],
        order=row["ord"],
        department_id=str(row["department_id"]) if row["department_id"] else None,
        conditions=conditions,
        agent_ids=tuple(str(a) for a in row["agent_ids"]),
    )


async def of_kind(conn: Conn, tenant: str, kind: str | None = None) -> list[Rule]:
    """The tenant's rules of a kind (None: all), by kind, order and name."""
    rows = await conn.fetch(
        "SELECT * FROM rules WHERE tenant = $1 AND ($2::text IS NULL OR kind = $2) ORDER BY kind, ord, name", tenant, kind
    )
    return [_rule(r) for r in rows]


async def get(conn: Conn, tenant: str, rule_id: str) -> Rule | None:
    row = await conn.fetchrow("SELECT * FROM rules WHERE tenant = $1 AND id = $2", tenant, rule_id)
    return _rule(row) if row else None


async def exists(conn: Conn, tenant: str, rule_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM rules WHERE tenant = $1 AND id = $2", tenant, rule_id))


async def any_exist(conn: Conn, tenant: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM rules WHERE tenant = $1)", tenant))


async def upsert(conn: Conn, tenant: str, rule: Rule) -> Rule:
    conditions = [{"field": c.field, "op": c.op, "value": c.value} for c in rule.conditions]
    row = await conn.fetchrow(
        "INSERT INTO rules (id, tenant, kind, name, ord, department_id, conditions, agent_ids) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::uuid[]) ON CONFLICT (tenant, id) DO UPDATE SET "
        "kind = EXCLUDED.kind, name = EXCLUDED.name, ord = EXCLUDED.ord, department_id = EXCLUDED.department_id, "
        "conditions = EXCLUDED.conditions, agent_ids = EXCLUDED.agent_ids RETURNING *",
        rule.id,
        tenant,
        rule.kind,
        rule.name,
        rule.order,
        rule.department_id,
        conditions,
        list(rule.agent_ids),
    )
    return _rule(row)


async def delete(conn: Conn, tenant: str, rule_id: str) -> bool:
    return bool(await conn.fetchval("DELETE FROM rules WHERE tenant = $1 AND id = $2 RETURNING true", tenant, rule_id))
