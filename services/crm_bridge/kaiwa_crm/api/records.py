"""Records and the chat's context (CRM-01, CRM-02)."""

from __future__ import annotations

from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb

from kaiwa_common.errors import parse_uuid

from ..domain import validate_changes, validate_deal
from ..handlers import records
from ..handlers.common import Caller
from .base import Base
from .convert import attachment_pb, context_pb, record_pb, record_type


class RecordsApi(Base):
    async def FindRecord(self, request: pb.FindRecordRequest, context) -> pb.Record:
        return record_pb(await records.find(self.rt, Caller.current().tenant, request.email))

    async def UpsertRecord(self, request: pb.UpsertRecordRequest, context) -> pb.Record:
        kind = record_type(request.type)
        deals = [
            validate_deal(
                id=parse_uuid(d.id, "deal id") if d.id else "",
                name=d.name,
                stage=d.stage,
                amount=d.amount,
                closing_date=d.closing_date,
                open=d.open,
            )
            for d in request.deals
        ]
        changes = validate_changes(
            email=request.email,
            type=kind,
            name=request.name,
            fields=dict(request.fields),
            owner=request.owner,
            source=request.source,
            deals=deals,
        )
        return record_pb(await records.upsert(self.rt, Caller.current(), changes))

    async def GetAttachment(self, request: pb.GetAttachmentRequest, context) -> pb.AttachmentContent:
        attachment_id = parse_uuid(request.attachment_id, "attachment_id")
        info, content = await records.get_attachment(self.rt, Caller.current().tenant, attachment_id)
        return pb.AttachmentContent(attachment=attachment_pb(info), content=content)

    async def GetContext(self, request: pb.GetContextRequest, context) -> pb.CrmContext:
        locale = "en" if request.locale.strip().lower().startswith("en") else "ja"
        return context_pb(await records.context(self.rt, Caller.current().tenant, request.email, locale))
