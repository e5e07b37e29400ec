"""What the use cases share: who calls (and their CRM user), acting on the tenant's CRM,
reading a record from it, record ids."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable

import asyncpg

from kaiwa_common.auth import ADMIN, AGENT, SERVICE, current_identity
from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import InvalidArgument, NotFound, PermissionDenied

from ..domain.codec import record_json, record_of
from ..domain.connection import Connection
from ..domain.errors import CrmAuthFailed, CrmUnavailable
from ..domain.model import Record
from ..plays import Write
from ..runtime import Runtime
from ..store import tenancy
from ..store.tenancy import CrmUser
from ..writes import QUEUED, Outcome, submit

_RECORD_ID = re.compile(r"^[A-Za-z0-9:._-]{1,100}$")
LICENSED_ONLY = (
    "agents without a CRM user of their own may only add leads and notify sales (CRM-01); "
    "an admin links your agent to a CRM user (UpsertCrmUser.agent_id)"
)


@dataclass(frozen=True)
class Caller:
    tenant: str
    sub: str
    role: str

    @classmethod
    def current(cls) -> "Caller":
        identity = current_identity()
        return cls(identity.tenant, identity.sub, identity.role)

    @property
    def privileged(self) -> bool:
        return self.role in (ADMIN, SERVICE)


async def crm_user(conn: asyncpg.Connection, caller: Caller) -> CrmUser | None:
    return await tenancy.user_of_agent(conn, caller.tenant, caller.sub) if caller.role in (ADMIN, AGENT) else None


async def licensed(conn: asyncpg.Connection, caller: Caller) -> bool:
    """CRM-01: may the caller do more than add leads and notify sales?"""
    return caller.privileged or await crm_user(conn, caller) is not None


async def require_licensed(conn: asyncpg.Connection, caller: Caller) -> None:
    if not await licensed(conn, caller):
        raise PermissionDenied(LICENSED_ONLY)


def record_ref(value: str, what: str = "record_id") -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidArgument(f"{what} is required", field=what)
    if not _RECORD_ID.match(value):
        raise InvalidArgument(f"{what} {value[:40]!r} is not a record id", field=what)
    return value


def text_of(value: str, what: str, limit: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidArgument(f"{what} is required", field=what)
    if len(value) > limit:
        raise InvalidArgument(f"{what} is longer than {limit} characters", field=what)
    return value


async def act(rt: Runtime, tenant: str, build: Callable[[asyncpg.Connection, Connection], Awaitable[Write]]) -> Outcome:
    """Do a write on the tenant's CRM: in this transaction (built-in CRM), or queued in it
    and tried at once (external CRM; QUEUED when the CRM is away)."""
    async with unit_of_work(rt.pool) as conn:
        link = await tenancy.connection(conn, tenant)
        link.require_enabled()
        write = await build(conn, link)
        outcome = await submit(rt, conn, tenant, link, write, by_caller=True)
    if outcome.state == QUEUED:
        outcome = await rt.runner.run_now(tenant, outcome.write_id)
    return outcome


async def find_record(
    rt: Runtime, conn: asyncpg.Connection, tenant: str, link: Connection, email: str
) -> tuple[Record | None, bool]:
    """(The record of the e-mail, whether it is stale). An external CRM's answers are
    cached for a while, and the last one answers while the CRM is away."""
    crm = await rt.crm(conn, tenant, link)
    if not link.external:
        return await crm.find(email), False
    cached = await tenancy.cached_record(conn, tenant, email)
    if cached is not None and (_now() - cached[1]).total_seconds() < rt.config.cache_ttl:
        return (record_of(cached[0]) if cached[0] else None), False
    try:
        record = await crm.find(email)
    except (CrmUnavailable, CrmAuthFailed):
        if cached is None:
            raise
        return (record_of(cached[0]) if cached[0] else None), True
    await tenancy.cache_record(conn, tenant, email, record_json(record) if record else None)
    return record, False


async def get_record(rt: Runtime, conn: asyncpg.Connection, tenant: str, link: Connection, record_id: str) -> Record:
    record = await (await rt.crm(conn, tenant, link)).get(record_ref(record_id))
    if record is None:
        raise NotFound(f"no lead or contact {record_id}")
    return record


def _now() -> datetime:
    return datetime.now(timezone.utc)
