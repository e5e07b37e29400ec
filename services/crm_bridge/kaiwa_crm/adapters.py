"""CRM adapters behind one interface (CRM-10).

The built-in CRM keeps records in this service's PostgreSQL schema and works inside the
caller's transaction, so a record change and its outbox event commit together. A SaaS
CRM adapter (a later issue) implements the same methods over the CRM's REST API.
"""

from __future__ import annotations

from typing import Protocol

import asyncpg

from kaiwa_common.errors import NotFound

from . import store
from .domain import AttachmentInfo, NewAttachment, Record, RecordChanges, merged_fields, merged_type


class CrmAdapter(Protocol):
    kind: str

    async def find(self, tenant: str, email: str) -> Record | None: ...

    async def upsert(self, tenant: str, changes: RecordChanges) -> tuple[Record, bool]:
        """Create or update the record of changes.email; returns (record, created)."""

    async def add_if_absent(self, tenant: str, changes: RecordChanges) -> tuple[Record, bool]:
        """Create the record unless the e-mail already has one (left unchanged)."""

    async def attach(self, tenant: str, record_id: str, attachment: NewAttachment) -> AttachmentInfo: ...

    async def attachment(self, tenant: str, attachment_id: str) -> tuple[AttachmentInfo, bytes] | None: ...


class BuiltinCrm:
    """The default CRM: tables in the `crm` schema, used through the caller's connection."""

    kind = "builtin"

    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn

    async def find(self, tenant: str, email: str) -> Record | None:
        return await store.find_record(self.conn, tenant, email)

    async def upsert(self, tenant: str, changes: RecordChanges) -> tuple[Record, bool]:
        record, created = await self._lock_or_create(tenant, changes)
        if not created:
            await store.update_record(
                self.conn,
                tenant,
                record.id,
                type=merged_type(record.type, changes.type),
                name=changes.name or record.name,
                fields=merged_fields(record.fields, changes.fields),
                owner=changes.owner or record.owner,
                source=changes.source or record.source,
            )
        for deal in changes.deals:
            if not deal.id:
                await store.insert_deal(self.conn, tenant, record.id, deal)
            elif not await store.update_deal(self.conn, tenant, record.id, deal):
                raise NotFound(f"deal {deal.id} is not a deal of the record for {changes.email}")
        return await store.get_record(self.conn, tenant, record.id), created

    async def add_if_absent(self, tenant: str, changes: RecordChanges) -> tuple[Record, bool]:
        record, created = await self._lock_or_create(tenant, changes)
        if created and changes.deals:
            return await self.upsert(tenant, changes)
        return record, created

    async def attach(self, tenant: str, record_id: str, attachment: NewAttachment) -> AttachmentInfo:
        attachment_id = await store.upsert_attachment(self.conn, tenant, record_id, attachment)
        info, _ = await store.get_attachment(self.conn, tenant, attachment_id)
        return info

    async def attachment(self, tenant: str, attachment_id: str) -> tuple[AttachmentInfo, bytes] | None:
        return await store.get_attachment(self.conn, tenant, attachment_id)

    async def _lock_or_create(self, tenant: str, changes: RecordChanges) -> tuple[Record, bool]:
        """The record of the e-mail, locked for this transaction, created when missing.

        Concurrent creators of the same e-mail meet at the unique index: the loser's
        INSERT waits for the winner and then finds (and locks) its record.
        """
        created_id = await store.insert_record(
            self.conn,
            tenant,
            type=merged_type(None, changes.type),
            email=changes.email,
            name=changes.name,
            fields=merged_fields({}, changes.fields),
            owner=changes.owner,
            source=changes.source,
        )
        if created_id:
            return await store.get_record(self.conn, tenant, created_id), True
        return await store.find_record(self.conn, tenant, changes.email, lock=True), False


def crm_for(conn: asyncpg.Connection, tenant: str) -> CrmAdapter:
    """The CRM a tenant uses. Only the built-in CRM exists so far; connecting a SaaS CRM
    account per tenant (CRM-01) will choose its adapter here."""
    return BuiltinCrm(conn)
