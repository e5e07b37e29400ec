"""CRM-01: connecting the tenant's CRM, changing the account, disabling, re-enabling; the
CRM's users and which Kaiwa agent each one is."""

from __future__ import annotations

from kaiwa_common.db import unit_of_work
from kaiwa_common.emails import normalize_email, valid_email
from kaiwa_common.errors import InvalidArgument, PermissionDenied

from ..domain.connection import BUILTIN, ZOHO, Connection, refused, valid_data_center, valid_key
from ..domain.errors import CrmAuthFailed
from ..runtime import Runtime
from ..secrets import hash_key, key_matches
from ..store import tenancy
from ..store import writes as queue
from ..store.tenancy import CrmUser
from .common import Caller, crm_user, text_of


async def connect(
    rt: Runtime, caller: Caller, kind: str, admin_email: str, key: str, client_id: str, client_secret: str, data_center: str
) -> Connection:
    """A CRM admin connects in one step; anyone else with the CRM admin's e-mail and key;
    otherwise the seed's refusal. Connecting again changes the account."""
    if kind == ZOHO:
        link = await _zoho(rt, caller, admin_email, key, client_id, client_secret, data_center)
    else:
        link = await _builtin(rt, caller, admin_email, key)
    async with unit_of_work(rt.pool) as conn:
        await tenancy.save_connection(conn, caller.tenant, link)
        await conn.execute("UPDATE writes SET next_attempt_at = now() WHERE tenant = $1 AND state = 'queued'", caller.tenant)
        return await tenancy.connection(conn, caller.tenant)


async def _builtin(rt: Runtime, caller: Caller, admin_email: str, key: str) -> Connection:
    async with rt.pool.acquire() as conn:
        if not key.strip():
            me = await crm_user(conn, caller)
            if me is None or not me.admin:
                raise refused()
            return Connection(kind=BUILTIN, admin_email=me.email, connected_by=caller.sub)
        email = normalize_email(admin_email, "admin_email")
        admin = await tenancy.user_by_email(conn, caller.tenant, email)
    if admin is None or not admin.admin or not admin.key_hash or not key_matches(valid_key(key), admin.key_hash):
        raise refused("the e-mail is not a CRM admin's, or the integration key is not that admin's key")
    return Connection(kind=BUILTIN, admin_email=admin.email, key_cipher=rt.box.seal(key.strip()), connected_by=caller.sub)


async def _zoho(
    rt: Runtime, caller: Caller, admin_email: str, key: str, client_id: str, client_secret: str, data_center: str
) -> Connection:
    if not key.strip() or not admin_email.strip():
        raise refused()
    email = valid_email(admin_email, "admin_email")
    key = valid_key(key)
    client_id = text_of(client_id, "client_id", 200)
    client_secret = text_of(client_secret, "client_secret", 500)
    link = Connection(
        kind=ZOHO,
        admin_email=email,
        key_cipher=rt.box.seal(key),
        client_id=client_id,
        client_secret_cipher=rt.box.seal(client_secret),
        data_center=valid_data_center(data_center),
        connected_by=caller.sub,
    )
    client = rt.zoho_client(caller.tenant, link, refresh_token=key, client_secret=client_secret)
    try:
        answer = await client.call("GET", "/users", params={"type": "AdminUsers"})
    except CrmAuthFailed as exc:
        raise refused(exc.message) from None
    admins = {str(u.get("email", "")).lower() for u in (answer.body or {}).get("users") or []}
    if email.lower() not in admins:
        raise refused(f"{email} is not an administrator of the Zoho CRM account")
    return link


async def get(rt: Runtime, tenant: str) -> tuple[Connection, dict[str, int]]:
    async with rt.pool.acquire() as conn:
        return await tenancy.connection(conn, tenant), await queue.counts(conn, tenant)


async def set_enabled(rt: Runtime, tenant: str, enabled: bool) -> tuple[Connection, dict[str, int]]:
    async with unit_of_work(rt.pool) as conn:
        await tenancy.set_enabled(conn, tenant, enabled)
        if enabled:  # writes kept while disabled go now
            await conn.execute("UPDATE writes SET next_attempt_at = now() WHERE tenant = $1 AND state = 'queued'", tenant)
            await conn.execute("SELECT pg_notify($1, '')", f"kaiwa_crm_writes_{rt.schema}")
        return await tenancy.connection(conn, tenant), await queue.counts(conn, tenant)


async def upsert_user(rt: Runtime, tenant: str, email: str, name: str, admin: bool, agent_id: str) -> CrmUser:
    email = valid_email(email)
    name = text_of(name, "name", 200, required=False)
    agent_id = text_of(agent_id, "agent_id", 200, required=False)
    async with unit_of_work(rt.pool) as conn:
        other = await tenancy.user_of_agent(conn, tenant, agent_id)
        if other is not None and other.email.lower() != email.lower():
            raise InvalidArgument(f"agent {agent_id} already uses the CRM user {other.email}", field="agent_id")
        return await tenancy.upsert_user(conn, tenant, email, name, admin, agent_id)


async def users(rt: Runtime, tenant: str) -> list[CrmUser]:
    async with rt.pool.acquire() as conn:
        return await tenancy.users(conn, tenant)


async def set_integration_key(rt: Runtime, caller: Caller, key: str) -> str:
    """The built-in CRM's "create a ZSC key": only a CRM admin, for themselves."""
    key = valid_key(key)
    async with unit_of_work(rt.pool) as conn:
        me = await crm_user(conn, caller)
        if me is None or not me.admin:
            raise PermissionDenied("only a CRM admin sets the integration key (your agent is not linked to a CRM admin)")
        await tenancy.set_key_hash(conn, caller.tenant, me.id, hash_key(key))
    return me.email
