"""JetStream consumers of other services' events."""

from __future__ import annotations

import logging

import asyncpg
from kaiwa.events.v1.envelope_pb2 import Event

from kaiwa_common.emails import valid_email
from kaiwa_common.app import ServiceContext
from kaiwa_common.consumer import ConsumerSpec
from kaiwa_common.errors import InvalidArgument, PermanentEventError

from .adapters import crm_for
from .domain import LEAD, RecordChanges
from .domain.model import MAX_NAME
from .handlers import record_created
from .transcripts import transcript_attachment

log = logging.getLogger("kaiwa.crm")

CHAT_SOURCE = "chat"


def consumers(ctx: ServiceContext, durable: str) -> list[ConsumerSpec]:
    async def chat_ended(event: Event, conn: asyncpg.Connection) -> None:
        await on_chat_ended(ctx, event, conn)

    return [ConsumerSpec(durable, "conversation", ["chat_ended"], chat_ended)]


async def on_chat_ended(ctx: ServiceContext, event: Event, conn: asyncpg.Connection) -> None:
    """CRM-07: a visitor who left an e-mail gets a lead (unless a record exists) with the
    chat's transcript attached. Runs in the consumer's transaction; re-delivery of the
    same chat replaces its attachment instead of adding another."""
    ended, tenant = event.chat_ended, event.tenant
    if not ended.visitor_email.strip():
        return
    try:
        email = valid_email(ended.visitor_email, "visitor_email")
    except InvalidArgument as exc:
        raise PermanentEventError(f"chat {ended.chat_id}: {exc.message}") from None
    attachment = await transcript_attachment(ctx, tenant, ended.chat_id)  # before any lock is taken
    crm = crm_for(conn, tenant)
    record, created = await crm.add_if_absent(
        tenant, RecordChanges(email=email, type=LEAD, name=ended.visitor_name.strip()[:MAX_NAME], source=CHAT_SOURCE)
    )
    if created:
        await record_created(ctx, conn, tenant, record, chat_id=ended.chat_id)
    if attachment is not None:
        await crm.attach(tenant, record.id, attachment)
    log.info(
        "chat transcript attached",
        extra={"fields": {"tenant": tenant, "chat": ended.chat_id, "record": record.id, "created": created}},
    )
