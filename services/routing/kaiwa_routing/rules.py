"""Assignment and priority rules (ROUT-03, ROUT-04), managed by an admin. What a rule
means and how it matches: domain/rules.py; where it applies: router.py (assignment) and
queue.enqueue (priority)."""

from __future__ import annotations

import dataclasses
import uuid

from kaiwa_common.errors import NotFound, parse_uuid
from kaiwa_common.idempotency import claim_request, fingerprint_of

from . import store
from .context import Routing, kick, transaction
from .domain.rules import Rule, validate_rule


async def upsert_rule(r: Routing, tenant: str, rule: Rule, request_id: str = "") -> Rule:
    """Creates (no id; a retry with the same request_id returns the rule it created) or
    updates by id (idempotent as it is; request_id is not needed then)."""
    validate_rule(rule.kind, rule.name, rule.order, list(rule.conditions), list(rule.agent_ids))

    async def work(conn):
        if rule.department_id and await store.departments.get(conn, tenant, rule.department_id) is None:
            raise NotFound(f"department {rule.department_id} does not exist")
        missing = set(rule.agent_ids) - await store.agents.existing_ids(conn, tenant, list(rule.agent_ids))
        if missing:
            raise NotFound(f"agent {sorted(missing)[0]} does not exist")
        if rule.id:
            if not await store.rules.exists(conn, tenant, rule.id):
                raise NotFound(f"rule {rule.id} does not exist")
            return await store.rules.upsert(conn, tenant, rule)
        claim = await claim_request(
            conn,
            tenant,
            "UpsertRule",
            request_id,
            fingerprint_of(rule.kind, rule.name, rule.order, rule.department_id, rule.conditions, rule.agent_ids),
        )
        if claim.result_id:
            created = await store.rules.get(conn, tenant, claim.result_id)
            if created is None:
                raise NotFound(f"rule {claim.result_id}, created by request {request_id!r}, has been deleted since")
            return created
        created = await store.rules.upsert(conn, tenant, dataclasses.replace(rule, id=str(uuid.uuid4())))
        await claim.record(conn, created.id)
        return created

    saved = await transaction(r, work)
    kick(r, [(tenant, rule.department_id)])
    return saved


async def list_rules(r: Routing, tenant: str, kind: str | None) -> list[Rule]:
    async with r.pool.acquire() as conn:
        return await store.rules.of_kind(conn, tenant, kind)


async def delete_rule(r: Routing, tenant: str, rule_id: str) -> None:
    rule_id = parse_uuid(rule_id, "rule_id")
    async with r.pool.acquire() as conn:
        if not await store.rules.delete(conn, tenant, rule_id):
            raise NotFound(f"rule {rule_id} does not exist")
