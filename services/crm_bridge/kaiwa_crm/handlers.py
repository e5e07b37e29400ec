"""Use cases of the CRM bridge: one transaction each, events through the outbox."""

from __future__ import annotations

import logging

import asyncpg
from kaiwa.events.v1.crm_pb2 import RecordCreated
from kaiwa.events.v1.envelope_pb2 import Event

from kaiwa_common.app import ServiceContext
from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import InvalidArgument, NotFound, PermanentEventError

from .adapters import crm_for
from .domain import LEAD, AttachmentInfo, Record, RecordChanges, normalize_email
from .transcripts import transcript_attachment

log = logging.getLogger("kaiwa.crm")

CHAT_SOURCE = "chat"


async def find_record(ctx: ServiceContext, tenant: str, email: str) -> Record:
    email = normalize_email(email)
    async with ctx.pool.acquire() as conn:
        record = await crm_for(conn, tenant).find(tenant, email)
    if record is None:
        raise NotFound(f"no lead or contact with e-mail {email}")
    return record


async def upsert_record(ctx: ServiceContext, tenant: str, changes: RecordChanges) -> Record:
    async with unit_of_work(ctx.pool) as conn:
        record, created = await crm_for(conn, tenant).upsert(tenant, changes)
        if created:
            await _record_created(ctx, conn, tenant, record, chat_id="")
    return record


async def get_attachment(ctx: ServiceContext, tenant: str, attachment_id: str) -> tuple[AttachmentInfo, bytes]:
    async with ctx.pool.acquire() as conn:
        found = await crm_for(conn, tenant).attachment(tenant, attachment_id)
    if found is None:
        raise NotFound(f"attachment {attachment_id} not found")
    return found


async def on_chat_ended(ctx: ServiceContext, event: Event, conn: asyncpg.Connection) -> None:
    """CRM-07: a visitor who left an e-mail gets a lead (unless a record exists) with the
    chat's transcript attached. Runs in the consumer's transaction; re-delivery of the
    same chat replaces its attachment instead of adding another."""
    ended, tenant = event.chat_ended, event.tenant
    if not ended.visitor_email.strip():
        return
    try:
        email = normalize_email(ended.visitor_email, "visitor_email")
    except InvalidArgument as exc:
        raise PermanentEventError(f"chat {ended.chat_id}: {exc.message}") from None
    attachment = await transcript_attachment(ctx, tenant, ended.chat_id)
    crm = crm_for(conn, tenant)
    name = ended.visitor_name.strip()[:200]
    record, created = await crm.add_if_absent(
        tenant, RecordChanges(email=email, type=LEAD, name=name, source=CHAT_SOURCE))
    if created:
        await _record_created(ctx, conn, tenant, record, chat_id=ended.chat_id)
    if attachment is not None:
        await crm.attach(tenant, record.id, attachment)
    log.info("chat transcript attached", extra={"fields": {
        "tenant": tenant, "chat": ended.chat_id, "record": record.id, "created": created}})


async def _record_created(ctx: ServiceContext, conn: asyncpg.Connection, tenant: str, record: Record,
                          chat_id: str) -> None:
    await ctx.outbox.add(conn, tenant, RecordCreated(
        record_id=record.id, record_type=record.type, email=record.email, chat_id=chat_id, source=record.source))
