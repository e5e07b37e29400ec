"""Use cases of the CRM bridge: one transaction each, events through the outbox."""

from __future__ import annotations

import asyncpg
from kaiwa.events.v1.crm_pb2 import RecordCreated

from kaiwa_common.emails import valid_email
from kaiwa_common.app import ServiceContext
from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import NotFound

from .adapters import crm_for
from .domain import AttachmentInfo, Record, RecordChanges


async def find_record(ctx: ServiceContext, tenant: str, email: str) -> Record:
    email = valid_email(email)
    async with ctx.pool.acquire() as conn:
        record = await crm_for(conn, tenant).find(tenant, email)
    if record is None:
        raise NotFound(f"no lead or contact with e-mail {email}")
    return record


async def upsert_record(ctx: ServiceContext, tenant: str, changes: RecordChanges) -> Record:
    async with unit_of_work(ctx.pool) as conn:
        record, created = await crm_for(conn, tenant).upsert(tenant, changes)
        if created:
            await record_created(ctx, conn, tenant, record, chat_id="")
    return record


async def get_attachment(ctx: ServiceContext, tenant: str, attachment_id: str) -> tuple[AttachmentInfo, bytes]:
    async with ctx.pool.acquire() as conn:
        found = await crm_for(conn, tenant).attachment(tenant, attachment_id)
    if found is None:
        raise NotFound(f"attachment {attachment_id} not found")
    return found


async def record_created(ctx: ServiceContext, conn: asyncpg.Connection, tenant: str, record: Record, chat_id: str) -> None:
    await ctx.outbox.add(
        conn,
        tenant,
        RecordCreated(record_id=record.id, record_type=record.type, email=record.email, chat_id=chat_id, source=record.source),
    )
