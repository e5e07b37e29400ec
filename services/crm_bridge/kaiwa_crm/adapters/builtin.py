"""The built-in CRM (the default): tables in this service's schema, used through the
caller's connection, so a record change and its outbox events commit together."""

from __future__ import annotations

import uuid
from dataclasses import replace

import asyncpg

from kaiwa_common.errors import FailedPrecondition, NotFound

from ..domain import AttachmentInfo, DealChange, NewAttachment, Record, RecordChanges, merged_fields, merged_type
from ..domain.activity import (
    Activity,
    ChatActivity,
    Conversion,
    NewDeal,
    NewNote,
    NewRecord,
    NewTask,
    Note,
    Task,
    Visit,
    VisitPage,
)
from ..domain.model import CONTACT, LEAD, Deal
from ..store import activity, records


class BuiltinCrm:
    kind = "builtin"

    def __init__(self, conn: asyncpg.Connection, tenant: str):
        self.conn = conn
        self.tenant = tenant

    async def find(self, email: str) -> Record | None:
        return await records.find_record(self.conn, self.tenant, email)

    async def get(self, record_id: str) -> Record | None:
        if not _is_uuid(record_id):
            return None
        return await records.get_record(self.conn, self.tenant, record_id)

    async def upsert(self, changes: RecordChanges) -> tuple[Record, bool]:
        record, created = await self._lock_or_create(changes)
        if not created:
            await records.update_record(
                self.conn,
                self.tenant,
                record.id,
                type=merged_type(record.type, changes.type),
                name=changes.name or record.name,
                fields=merged_fields(record.fields, changes.fields),
                owner=changes.owner or record.owner,
                source=changes.source or record.source,
            )
        for deal in changes.deals:
            if not deal.id:
                await records.insert_deal(self.conn, self.tenant, record.id, deal)
            elif not await records.update_deal(self.conn, self.tenant, record.id, deal):
                raise NotFound(f"deal {deal.id} is not a deal of the record for {changes.email}")
        return await self._reload(record.id), created

    async def create(self, new: NewRecord) -> tuple[Record, bool]:
        account_id = await records.account_id(self.conn, self.tenant, new.account) if new.account else None
        created_id = await records.insert_record(
            self.conn,
            self.tenant,
            type=new.type,
            email=new.email,
            name=new.name,
            fields={k: v for k, v in new.fields.items() if v},
            owner=new.owner,
            source=new.source,
            label=new.label,
            account_id=account_id,
        )
        if created_id:
            return await self._reload(created_id), True
        return await records.find_record(self.conn, self.tenant, new.email), False

    async def update_fields(self, record: Record, fields: dict[str, str]) -> Record:
        locked = await records.get_record(self.conn, self.tenant, record.id, lock=True)
        if locked is None:
            raise NotFound(f"record {record.id} not found")
        await records.set_fields(self.conn, self.tenant, record.id, merged_fields(locked.fields, fields))
        return await self._reload(record.id)

    async def add_note(self, record: Record, note: NewNote) -> Note:
        return await activity.add_note(self.conn, self.tenant, record.id, note)

    async def list_notes(self, record: Record) -> list[Note]:
        return await activity.list_notes(self.conn, self.tenant, record.id)

    async def add_task(self, record: Record, task: NewTask) -> Task:
        return await activity.add_task(self.conn, self.tenant, record.id, task)

    async def attach(self, record: Record, attachment: NewAttachment) -> AttachmentInfo:
        attachment_id = await records.upsert_attachment(self.conn, self.tenant, record.id, attachment)
        info, _ = await records.get_attachment(self.conn, self.tenant, attachment_id)
        return info

    async def attachment(self, attachment_id: str) -> tuple[AttachmentInfo, bytes] | None:
        return await records.get_attachment(self.conn, self.tenant, attachment_id)

    async def add_chat_activity(self, record: Record, a: ChatActivity) -> None:
        await activity.add_activity(self.conn, self.tenant, record.id, None, a)
        for deal in record.open_deals:
            await activity.add_activity(self.conn, self.tenant, record.id, deal.id, a)

    async def record_visit(self, record: Record, page: VisitPage) -> None:
        await activity.add_visit_page(self.conn, self.tenant, record.id, page)

    async def convert_lead(self, record: Record, conversion: Conversion) -> tuple[Record, Deal | None]:
        locked = await records.get_record(self.conn, self.tenant, record.id, lock=True)
        if locked is None:
            raise NotFound(f"record {record.id} not found")
        if locked.type != LEAD:
            if conversion.deal and conversion.deal.key:  # converted by this same request before
                return locked, _deal_made(locked, await self._deal_id(conversion.deal.key))
            raise FailedPrecondition(f"record {record.id} is a contact already: add a deal to it instead")
        account_id = await records.account_id(self.conn, self.tenant, conversion.account) if conversion.account else None
        await records.make_contact(self.conn, self.tenant, record.id, account_id)
        deal = None
        if conversion.deal is not None:
            deal = await self.add_deal(replace(locked, type=CONTACT), conversion.deal)
        return await self._reload(record.id), deal

    async def add_deal(self, record: Record, deal: NewDeal) -> Deal:
        if record.type != CONTACT:
            raise FailedPrecondition(f"record {record.id} is a lead: convert it to a contact to add a deal")
        change = DealChange(
            id="", name=deal.name, stage=deal.stage, amount=deal.amount, closing_date=deal.closing_date, open=True
        )
        deal_id = await records.insert_deal(self.conn, self.tenant, record.id, change, key=deal.key)
        return _deal_made(await self._reload(record.id), deal_id)

    async def list_activities(self, record: Record, deal_id: str, chats_only: bool) -> list[Activity]:
        if deal_id and not any(d.id == deal_id for d in record.deals):
            raise NotFound(f"deal {deal_id} is not a deal of record {record.id}")
        chats = await activity.list_activities(self.conn, self.tenant, record.id, deal_id or None)
        if chats_only or deal_id:
            return chats
        tasks = [
            Activity(t.id, "task", "", t.subject, t.owner, "", "", None, None, due_date=t.due_date)
            for t in await activity.list_tasks(self.conn, self.tenant, record.id)
        ]
        return chats + tasks

    async def list_visits(self, record: Record) -> list[Visit]:
        return await activity.list_visits(self.conn, self.tenant, record.id)

    async def _deal_id(self, key: str) -> str:
        return str(await self.conn.fetchval("SELECT id FROM deals WHERE tenant = $1 AND key = $2", self.tenant, key) or "")

    async def _reload(self, record_id: str) -> Record:
        return await records.get_record(self.conn, self.tenant, record_id)

    async def _lock_or_create(self, changes: RecordChanges) -> tuple[Record, bool]:
        """The record of the e-mail, locked for this transaction, created when missing.

        Concurrent creators of the same e-mail meet at the unique index: the loser's
        INSERT waits for the winner and then finds (and locks) its record.
        """
        created_id = await records.insert_record(
            self.conn,
            self.tenant,
            type=merged_type(None, changes.type),
            email=changes.email,
            name=changes.name,
            fields=merged_fields({}, changes.fields),
            owner=changes.owner,
            source=changes.source,
        )
        if created_id:
            return await self._reload(created_id), True
        return await records.find_record(self.conn, self.tenant, changes.email, lock=True), False


def _deal_made(record: Record, deal_id: str) -> Deal | None:
    return next((d for d in record.deals if d.id == deal_id), None)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
