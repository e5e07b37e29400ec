"""What routing's use cases share, in one place:

- `Routing`, the small dependency object every use case takes (the service context with
  pool and outbox, routing's settings, the router, the LISTEN fan-out, chat arrivals);
- the unit of work: `transaction` (one transaction, retried on a deadlock), then routing
  passes for the queues it freed, `kick` (after commit, in the background) or `route_now`
  (inside the caller's transaction);
- the look-ups use cases start with, each raising the domain error the caller should see.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from kaiwa_common import timers
from kaiwa_common.app import ServiceContext
from kaiwa_common.auth import Identity
from kaiwa_common.db import unit_of_work
from kaiwa_common.emails import normalize_email
from kaiwa_common.errors import NotFound, PermissionDenied, parse_uuid
from kaiwa_common.fanout import Fanout

from . import store
from .arrivals import ChatArrivals, ChatNotKnownYet
from .config import RoutingSettings
from .router import Router
from .wakeups import routing_fanout

Queue = tuple[str, str | None]  # (tenant, department id or None): what a routing pass works on


@dataclass
class Routing:
    ctx: ServiceContext
    settings: RoutingSettings
    router: Router
    fanout: Fanout
    arrivals: ChatArrivals

    @property
    def pool(self) -> asyncpg.Pool:
        return self.ctx.pool

    @property
    def outbox(self):
        return self.ctx.outbox


def build(ctx: ServiceContext, settings: RoutingSettings) -> Routing:
    fanout = routing_fanout(ctx.settings.database_url)
    return Routing(ctx, settings, Router(ctx, settings.sweep_interval), fanout, ChatArrivals(ctx, fanout))


# --- the unit of work ------------------------------------------------------------------


async def transaction(r: Routing, work):
    """Run work(conn) in one transaction; retried when PostgreSQL breaks a deadlock."""
    for attempt in range(3):
        try:
            async with unit_of_work(r.pool) as conn:
                return await work(conn)
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            if attempt == 2:
                raise


def _in_order(queues) -> list[Queue]:
    """One global order (no lock cycles between passes), each queue once."""
    return sorted(set(queues), key=lambda q: (q[0], q[1] or ""))


def kick(r: Routing, queues) -> None:
    """Background passes for these queues, after the caller committed."""
    for tenant, department_id in _in_order(queues):
        r.router.kick(tenant, department_id)


async def route_now(r: Routing, conn, queues) -> None:
    """Passes inside the caller's transaction."""
    for tenant, department_id in _in_order(queues):
        await r.router.route_queue(conn, tenant, department_id)


def queue_of(tenant: str, department_id) -> Queue:
    return tenant, str(department_id) if department_id else None


async def agent_queues(conn, tenant: str, agent_id: str) -> list[Queue]:
    """The queues an agent takes chats from: their departments' and the tenant's without one."""
    return [(tenant, d) for d in await store.departments.of_agent(conn, tenant, agent_id)] + [(tenant, None)]


async def retry_timer_later(conn, timer) -> None:
    """The chat is locked by a transaction in flight: fire again shortly, never wait on it here."""
    await timers.schedule(conn, timer.tenant, timer.kind, timer.key, delay=0.05, payload=timer.payload)


def id_or_empty(value) -> str:
    return str(value) if value else ""


# --- look-ups ----------------------------------------------------------------------------


async def calling_agent(conn, identity: Identity) -> asyncpg.Record:
    """The calling agent's row (PermissionDenied: the token's subject is no agent here)."""
    try:
        agent_id = str(uuid.UUID(identity.sub))
    except ValueError:
        raise PermissionDenied(f"token subject {identity.sub!r} is not an agent of this portal") from None
    row = await store.agents.get_plain(conn, identity.tenant, agent_id)
    if row is None:
        raise PermissionDenied(f"token subject {identity.sub!r} is not an agent of this portal")
    return row


async def find_agent(conn, tenant: str, agent_id: str = "", email: str = "", what: str = "agent") -> asyncpg.Record:
    """An agent by id, else by e-mail (InvalidArgument for a malformed one, NotFound)."""
    if agent_id:
        row = await store.agents.get(conn, tenant, parse_uuid(agent_id, f"{what} id"))
        if row is None:
            raise NotFound(f"{what} {agent_id} does not exist")
        return row
    email = normalize_email(email, f"{what} email")
    row = await store.agents.by_email(conn, tenant, email)
    if row is None:
        raise NotFound(f"no agent with e-mail {email}")
    return row


async def department_filter(conn, tenant: str, department_id: str) -> str | None:
    """A list's department filter: None for none, else a department of this tenant."""
    if not department_id:
        return None
    department_id = parse_uuid(department_id, "department_id")
    if await store.departments.get(conn, tenant, department_id) is None:
        raise NotFound(f"department {department_id} does not exist")
    return department_id


async def locked_chat(conn, tenant: str, chat_id: str) -> asyncpg.Record:
    """The chat under its row lock (ChatNotKnownYet: see arrivals.py)."""
    chat = await store.chats.lock(conn, tenant, chat_id)
    if chat is None:
        raise ChatNotKnownYet(chat_id)
    return chat


async def known_chat(conn, tenant: str, chat_id: str) -> asyncpg.Record:
    chat = await store.chats.get(conn, tenant, chat_id)
    if chat is None:
        raise ChatNotKnownYet(chat_id)
    return chat
