"""Departments, agents and availability (ROUT-01): upserted by an admin by their natural
keys (a department by name, an agent by e-mail); an agent sets their own availability."""

from __future__ import annotations

import asyncpg
from kaiwa.events.v1 import routing_pb2 as ev

from kaiwa_common.auth import AGENT, Identity
from kaiwa_common.emails import normalize_email
from kaiwa_common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, parse_uuid

from . import store
from .assignment import withdraw_agent_offers
from .context import Queue, Routing, agent_queues, calling_agent, department_filter, find_agent, kick, transaction
from .domain.model import AVAILABILITIES, STRATEGIES, agent_settings, department_settings


async def upsert_department(
    r: Routing, tenant: str, name: str, strategy: str, accept_timeout: float, max_wait: float
) -> asyncpg.Record:
    name, accept_timeout, max_wait = department_settings(name, accept_timeout, max_wait)
    if strategy not in STRATEGIES:
        raise InvalidArgument(f"strategy must be one of {', '.join(STRATEGIES)}")
    row = await transaction(r, lambda conn: store.departments.upsert(conn, tenant, name, strategy, accept_timeout, max_wait))
    kick(r, [(tenant, str(row["id"]))])
    return row


async def list_departments(r: Routing, tenant: str) -> list[asyncpg.Record]:
    async with r.pool.acquire() as conn:
        return await store.departments.list_all(conn, tenant)


async def get_department(r: Routing, tenant: str, department_id: str) -> asyncpg.Record:
    department_id = parse_uuid(department_id, "department_id")
    async with r.pool.acquire() as conn:
        row = await store.departments.get(conn, tenant, department_id)
    if row is None:
        raise NotFound(f"department {department_id} does not exist")
    return row


async def upsert_agent(
    r: Routing, tenant: str, email: str, name: str, department_ids: list[str], max_chats: int
) -> asyncpg.Record:
    email = normalize_email(email)
    name = agent_settings(name, max_chats)
    departments = sorted({parse_uuid(d, "department id") for d in department_ids})

    async def work(conn):
        missing = set(departments) - await store.departments.existing_ids(conn, tenant, departments)
        if missing:
            raise NotFound(f"department {sorted(missing)[0]} does not exist")
        existing = await store.agents.lock_by_email(conn, tenant, email)
        if existing is None:
            agent_id = await store.agents.insert(conn, tenant, email, name, max_chats)
        else:
            agent_id = str(existing["id"])
            if existing["active_chats"] > max_chats:
                raise FailedPrecondition(
                    f"agent {email} has {existing['active_chats']} open chats; max_chats cannot go below that"
                )
            await store.agents.update(conn, tenant, agent_id, name, max_chats)
        await store.departments.set_for_agent(conn, tenant, agent_id, departments)
        return await store.agents.get(conn, tenant, agent_id)

    for attempt in range(2):
        try:
            row = await transaction(r, work)
            break
        except asyncpg.UniqueViolationError:  # created concurrently by the same e-mail: now an update
            if attempt == 1:
                raise
    kick(r, [(tenant, d) for d in departments] + [(tenant, None)])
    return row


async def get_agent(r: Routing, tenant: str, agent_id: str) -> asyncpg.Record:
    async with r.pool.acquire() as conn:
        return await find_agent(conn, tenant, agent_id=agent_id)


async def list_agents(r: Routing, tenant: str, department_id: str) -> list[asyncpg.Record]:
    async with r.pool.acquire() as conn:
        return await store.agents.list_all(conn, tenant, await department_filter(conn, tenant, department_id))


async def set_availability(r: Routing, identity: Identity, availability: str, agent_id: str) -> asyncpg.Record:
    """An agent sets their own, an admin (or service) anyone's. Going away or offline
    withdraws the agent's offers; coming online routes their queues."""
    if availability not in AVAILABILITIES:
        raise InvalidArgument(f"availability must be one of {', '.join(AVAILABILITIES)}")
    tenant = identity.tenant
    queues: list[Queue] = []

    async def work(conn):
        if identity.role == AGENT:
            me = str((await calling_agent(conn, identity))["id"])
            if agent_id and agent_id != me:
                raise PermissionDenied("an agent sets only their own availability")
            target = me
        else:
            if not agent_id:
                raise InvalidArgument("agent_id is required when an admin sets availability")
            target = parse_uuid(agent_id, "agent_id")
        previous = await store.agents.set_availability(conn, tenant, target, availability)
        if previous is None:
            raise NotFound(f"agent {agent_id} does not exist")
        if previous != availability:
            await r.outbox.add(conn, tenant, ev.AgentAvailabilityChanged(agent_id=target, availability=availability))
        queues.extend(await agent_queues(conn, tenant, target))
        if availability != "online":  # away and offline agents get no offers
            queues.extend(await withdraw_agent_offers(conn, tenant, target))
        return await store.agents.get(conn, tenant, target)

    row = await transaction(r, work)
    kick(r, queues)
    return row
