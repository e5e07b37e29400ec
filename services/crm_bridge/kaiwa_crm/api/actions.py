"""Agent actions in the chat (CRM-03, 05, 06, 08, 09)."""

from __future__ import annotations

from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb

from ..domain.model import LEAD
from ..handlers import actions
from ..handlers.actions import ManualRecord
from ..handlers.common import Caller
from .base import Base
from .convert import activity_pb, date_of, note_pb, record_type, result_pb, visit_pb
from .settings import follow_up_name


class ActionsApi(Base):
    async def AddRecordFromChat(self, request: pb.AddRecordFromChatRequest, context) -> pb.ActionResult:
        manual = ManualRecord(
            email=request.email,
            name=request.name,
            type=record_type(request.type) or LEAD,
            company=request.company,
            phone=request.phone,
            status=request.status,
            account=request.account,
            owner=request.owner,
            chat_id=request.chat_id,
            note=request.note,
        )
        outcome, show_owner = await actions.add_record_from_chat(self.rt, Caller.current(), manual)
        return result_pb(outcome, show_owner)

    async def AddNote(self, request: pb.AddNoteRequest, context) -> pb.ActionResult:
        outcome = await actions.add_note(
            self.rt, Caller.current(), request.record_id, request.text, request.chat_id, request.request_id, sales=False
        )
        return result_pb(outcome)

    async def NotifySales(self, request: pb.NotifySalesRequest, context) -> pb.ActionResult:
        outcome = await actions.add_note(
            self.rt, Caller.current(), request.record_id, request.text, request.chat_id, request.request_id, sales=True
        )
        return result_pb(outcome, show_owner=False)

    async def ListNotes(self, request: pb.ListNotesRequest, context) -> pb.ListNotesResponse:
        notes = await actions.list_notes(self.rt, Caller.current(), request.record_id)
        return pb.ListNotesResponse(notes=[note_pb(n) for n in notes])

    async def UpdateRecordFields(self, request: pb.UpdateRecordFieldsRequest, context) -> pb.ActionResult:
        return result_pb(await actions.update_fields(self.rt, Caller.current(), request.record_id, dict(request.fields)))

    async def ConvertLead(self, request: pb.ConvertLeadRequest, context) -> pb.ActionResult:
        deal = None
        if request.with_deal:
            deal = {
                "name": request.deal_name,
                "stage": request.deal_stage,
                "amount": request.deal_amount,
                "closing_date": request.deal_closing_date,
            }
        return result_pb(await actions.convert_lead(self.rt, Caller.current(), request.record_id, deal, request.account))

    async def AddDeal(self, request: pb.AddDealRequest, context) -> pb.ActionResult:
        deal = {"name": request.name, "stage": request.stage, "amount": request.amount, "closing_date": request.closing_date}
        return result_pb(await actions.add_deal(self.rt, Caller.current(), request.record_id, deal, request.request_id))

    async def AddTask(self, request: pb.AddTaskRequest, context) -> pb.ActionResult:
        due = date_of(request.due_date, "due_date")
        outcome = await actions.add_task(
            self.rt, Caller.current(), request.record_id, request.subject, due, follow_up_name(request.due), request.request_id
        )
        return result_pb(outcome)

    async def ListActivities(self, request: pb.ListActivitiesRequest, context) -> pb.ListActivitiesResponse:
        found = await actions.list_activities(self.rt, Caller.current(), request.record_id, request.deal_id, request.chats_only)
        return pb.ListActivitiesResponse(activities=[activity_pb(a) for a in found])

    async def ListVisits(self, request: pb.ListVisitsRequest, context) -> pb.ListVisitsResponse:
        found = await actions.list_visits(self.rt, Caller.current(), request.record_id)
        return pb.ListVisitsResponse(visits=[visit_pb(v) for v in found])
