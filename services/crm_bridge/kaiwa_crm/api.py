"""gRPC servicer: protobuf <-> domain. Identity and errors are handled by the interceptor."""

from __future__ import annotations

from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1 import crm_bridge_pb2_grpc

from kaiwa_common.app import ServiceContext
from kaiwa_common.auth import current_identity
from kaiwa_common.errors import InvalidArgument, parse_uuid

from . import handlers
from .domain import CONTACT, LEAD, AttachmentInfo, Record, validate_changes, validate_deal

_TYPE_TO_PB = {LEAD: pb.RECORD_TYPE_LEAD, CONTACT: pb.RECORD_TYPE_CONTACT}
_TYPE_FROM_PB = {pb.RECORD_TYPE_UNSPECIFIED: None, pb.RECORD_TYPE_LEAD: LEAD, pb.RECORD_TYPE_CONTACT: CONTACT}


class CrmBridgeApi(crm_bridge_pb2_grpc.CrmBridgeServiceServicer):
    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx

    async def FindRecord(self, request: pb.FindRecordRequest, context) -> pb.Record:
        record = await handlers.find_record(self.ctx, current_identity().tenant, request.email)
        return record_to_pb(record)

    async def UpsertRecord(self, request: pb.UpsertRecordRequest, context) -> pb.Record:
        if request.type not in _TYPE_FROM_PB:
            raise InvalidArgument(f"type {request.type} is not a record type (lead or contact)")
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
            type=_TYPE_FROM_PB[request.type],
            name=request.name,
            fields=dict(request.fields),
            owner=request.owner,
            source=request.source,
            deals=deals,
        )
        record = await handlers.upsert_record(self.ctx, current_identity().tenant, changes)
        return record_to_pb(record)

    async def GetAttachment(self, request: pb.GetAttachmentRequest, context) -> pb.AttachmentContent:
        attachment_id = parse_uuid(request.attachment_id, "attachment_id")
        info, content = await handlers.get_attachment(self.ctx, current_identity().tenant, attachment_id)
        return pb.AttachmentContent(attachment=_attachment_to_pb(info), content=content)


def record_to_pb(record: Record) -> pb.Record:
    message = pb.Record(
        id=record.id,
        type=_TYPE_TO_PB[record.type],
        email=record.email,
        name=record.name,
        fields=record.visible_fields,
        owner=record.owner,
        source=record.source,
        attachments=[_attachment_to_pb(a) for a in record.attachments],
        deals=[
            pb.Deal(
                id=d.id,
                name=d.name,
                stage=d.stage,
                amount=d.amount,
                closing_date=d.closing_date.isoformat() if d.closing_date else "",
                open=d.open,
            )
            for d in record.deals
        ],
        visitor_type=record.visitor_type,
    )
    message.created_at.FromDatetime(record.created_at)
    return message


def _attachment_to_pb(info: AttachmentInfo) -> pb.Attachment:
    message = pb.Attachment(id=info.id, name=info.name, mime_type=info.mime_type, size=info.size, chat_id=info.chat_id)
    message.created_at.FromDatetime(info.created_at)
    return message
