"""Records (CRM-01, CRM-02): find by e-mail, upsert, attachments, the chat's context."""

from __future__ import annotations

import uuid

import asyncpg

from kaiwa_common.emails import valid_email
from kaiwa_common.errors import NotFound, PermissionDenied, Unavailable

from ..adapters.builtin import BuiltinCrm
from ..domain import AttachmentInfo, Record, RecordChanges
from ..domain.codec import record_of
from ..domain.context import Context, build_context, disconnected
from ..domain.model import LEAD
from ..plays import Write
from ..runtime import Runtime
from ..store import activity, tenancy
from .common import Caller, act, find_record, licensed


async def find(rt: Runtime, tenant: str, email: str) -> Record:
    email = valid_email(email)
    async with rt.pool.acquire() as conn:
        link = await tenancy.connection(conn, tenant)
        link.require_enabled()
        record, _ = await find_record(rt, conn, tenant, link, email)
    if record is None:
        raise NotFound(f"no lead or contact with e-mail {email}")
    return record


async def upsert(rt: Runtime, caller: Caller, changes: RecordChanges) -> Record:
    """Admins and services import and update freely; an agent without a CRM user may only
    add a new lead (CRM-01)."""

    async def build(conn: asyncpg.Connection, link) -> Write:
        if not await licensed(conn, caller):
            exists = link.external or await BuiltinCrm(conn, caller.tenant).find(changes.email) is not None
            if exists or changes.type not in (None, LEAD) or changes.deals or changes.owner:
                raise PermissionDenied("agents without a CRM user of their own may only add new leads (CRM-01)")
        params = {"changes": {**changes.__dict__, "deals": [_deal(d) for d in changes.deals]}}
        return Write("upsert_record", f"upsert:{uuid.uuid4()}", params)

    outcome = await act(rt, caller.tenant, build)
    if outcome.state != "done":
        raise Unavailable(
            f"the CRM is unreachable: the change is queued (write {outcome.write_id}) and completes when it is back"
        )
    return record_of(outcome.result["record"])


async def get_attachment(rt: Runtime, tenant: str, attachment_id: str) -> tuple[AttachmentInfo, bytes]:
    async with rt.pool.acquire() as conn:
        found = await BuiltinCrm(conn, tenant).attachment(attachment_id)
    if found is None:
        raise NotFound(f"attachment {attachment_id} not found")
    return found


async def context(rt: Runtime, tenant: str, email: str, locale: str) -> Context:
    """CRM-02: visible to every chat agent, whatever the CRM's data-access settings."""
    async with rt.pool.acquire() as conn:
        link = await tenancy.connection(conn, tenant)
        if not link.enabled:
            return disconnected(locale)
        settings = await tenancy.settings(conn, tenant)
        labels = {name: label for _, name, label in await activity.custom_fields(conn, tenant) if label}
        if not email.strip():
            return build_context(None, False, settings, locale, labels)
        record, stale = await find_record(rt, conn, tenant, link, valid_email(email))
    return build_context(record, True, settings, locale, labels, stale)


def _deal(d) -> dict:
    return {**d.__dict__, "closing_date": d.closing_date.isoformat() if d.closing_date else None}
