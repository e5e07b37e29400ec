"""CMD-02: agents' XMPP logins (domain/logins.py says what they are made of): the chat
user name (checked for availability, picked by the agent), the password, and the
bridge's check of both. Hashing runs in a worker thread, off the event loop."""

from __future__ import annotations

import asyncio

import asyncpg

from kaiwa_common.auth import AGENT, SERVICE, Identity
from kaiwa_common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, parse_uuid

from . import store
from .context import Routing, transaction
from .domain.logins import (
    AVAILABLE,
    NOT_AVAILABLE,
    canonical_user_name,
    check_password,
    hash_password,
    password_matches,
    user_name_problem,
)

WRONG = "wrong user name or password"


def _target(identity: Identity, agent_id: str) -> str:
    """Agents act on themselves; an admin (or a service) names the agent."""
    if identity.role == AGENT:
        if agent_id and agent_id != identity.sub:
            raise PermissionDenied("an agent sets only their own login")
        agent_id = identity.sub
    return parse_uuid(agent_id, "agent_id")


async def check_user_name(r: Routing, identity: Identity, user_name: str) -> tuple[str, bool, str, str]:
    """(the name as kept, available?, the seed's message, why not)."""
    name = canonical_user_name(user_name)
    problem = user_name_problem(user_name.strip())
    if problem:
        return name, False, NOT_AVAILABLE, problem
    async with r.pool.acquire() as conn:
        owner = await store.logins.user_name_owner(conn, identity.tenant, name)
    if owner is not None and owner != identity.sub:
        return name, False, NOT_AVAILABLE, "taken"
    return name, True, AVAILABLE, ""


async def set_user_name(r: Routing, identity: Identity, user_name: str, agent_id: str) -> asyncpg.Record:
    agent_id = _target(identity, agent_id)
    problem = user_name_problem(user_name.strip())
    if problem:
        raise InvalidArgument(f"{NOT_AVAILABLE}: {problem}", field="user_name")
    name = canonical_user_name(user_name)

    async def work(conn):
        await _agent(conn, identity.tenant, agent_id)
        owner = await store.logins.user_name_owner(conn, identity.tenant, name)
        if owner is not None and owner != agent_id:
            raise FailedPrecondition(f"{NOT_AVAILABLE}: taken")
        try:
            await store.logins.set_user_name(conn, identity.tenant, agent_id, name)
        except asyncpg.UniqueViolationError:  # taken by a concurrent call
            raise FailedPrecondition(f"{NOT_AVAILABLE}: taken") from None
        return await store.logins.of_agent(conn, identity.tenant, agent_id)

    return await transaction(r, work)


async def set_password(r: Routing, identity: Identity, password: str, agent_id: str) -> asyncpg.Record:
    agent_id = _target(identity, agent_id)
    hashed = await asyncio.to_thread(hash_password, check_password(password))

    async def work(conn):
        await _agent(conn, identity.tenant, agent_id)
        await store.logins.set_password(conn, identity.tenant, agent_id, hashed)
        return await store.logins.of_agent(conn, identity.tenant, agent_id)

    return await transaction(r, work)


async def get_login(r: Routing, identity: Identity, agent_id: str, user_name: str = "") -> asyncpg.Record:
    if user_name:
        if identity.role != SERVICE:
            raise PermissionDenied("only a service looks agents up by user name")
        async with r.pool.acquire() as conn:
            row = await store.logins.by_user_name(conn, identity.tenant, canonical_user_name(user_name))
        if row is None:
            raise NotFound(f"no agent has the user name {user_name!r}")
        return row
    agent_id = _target(identity, agent_id or (identity.sub if identity.role == AGENT else ""))
    async with r.pool.acquire() as conn:
        return await _agent(conn, identity.tenant, agent_id)


async def verify_login(r: Routing, tenant: str, user_name: str, password: str) -> asyncpg.Record:
    async with r.pool.acquire() as conn:
        row = await store.logins.by_user_name(conn, tenant, canonical_user_name(user_name))
    stored = row["password_hash"] if row is not None else ""
    if not await asyncio.to_thread(password_matches, password or "", stored):
        raise PermissionDenied(WRONG)
    return row


async def _agent(conn, tenant: str, agent_id: str) -> asyncpg.Record:
    row = await store.logins.of_agent(conn, tenant, agent_id)
    if row is None:
        raise NotFound(f"agent {agent_id} does not exist")
    return row
