"""CRM-05/06/08/09: what an agent does on the record from the chat (built-in CRM): notes,
"notify sales" to the owner, the phone and custom fields, a lead converted into a
contact with a deal, a deal on a contact, a task; bad input, unknown records and other
tenants' records refused clearly; request ids make retries safe."""

from __future__ import annotations

import grpc
import pytest
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1 import settings_pb2 as spb

from services.crm_bridge.tests.kit import admin, crm_service
from tests.fixtures import auth, eventually, events_of, status_of

REP = "agent-rep"


@pytest.fixture(scope="module")
async def crm():
    async with crm_service() as service:
        yield service


@pytest.fixture
async def rep(crm, tenant):
    """An agent with a CRM user of their own."""
    await crm.stub.UpsertCrmUser(pb.UpsertCrmUserRequest(email="rep@example.com", agent_id=REP), metadata=admin(tenant))
    return auth(tenant, "agent", REP)


async def new_lead(crm, tenant, email="lead@example.com"):
    added = await crm.stub.AddRecordFromChat(
        pb.AddRecordFromChatRequest(email=email, name="Lead", company="Lead KK", owner="owner@example.com"),
        metadata=admin(tenant),
    )
    return added.record


async def test_crm06_manual_notes_and_notify_sales_to_the_owner(crm, tenant, rep):
    lead = await new_lead(crm, tenant)
    async with events_of(tenant, "crm_bridge", "sales_notified") as notified:
        note = await crm.stub.AddNote(pb.AddNoteRequest(record_id=lead.id, text="予算は来期", chat_id="c-1"), metadata=rep)
        assert (note.state, note.note.kind, note.note.author) == (pb.WRITE_STATE_DONE, "manual", REP)
        sent = await crm.stub.NotifySales(
            pb.NotifySalesRequest(record_id=lead.id, text="至急折り返し"), metadata=auth(tenant, "agent", "x")
        )
        assert (sent.note.kind, sent.note.notify) == ("notify_sales", "owner@example.com")
        [event] = await eventually(lambda: notified, "the owner is notified")
    assert (event.sales_notified.owner, event.sales_notified.text, event.sales_notified.record_id) == (
        "owner@example.com",
        "至急折り返し",
        lead.id,
    )
    notes = await crm.stub.ListNotes(pb.ListNotesRequest(record_id=lead.id), metadata=rep)
    assert [(n.kind, n.text) for n in notes.notes] == [("manual", "予算は来期"), ("notify_sales", "至急折り返し")]

    for call in (
        crm.stub.NotifySales(pb.NotifySalesRequest(record_id="00000000-0000-4000-8000-000000000000", text="x"), metadata=rep),
        crm.stub.NotifySales(pb.NotifySalesRequest(record_id=lead.id, text="x"), metadata=auth(f"{tenant}-other", "admin", "a")),
    ):
        assert await status_of(call) == grpc.StatusCode.NOT_FOUND  # existing records only, of this tenant
    for request in (
        pb.AddNoteRequest(record_id=lead.id, text="  "),
        pb.AddNoteRequest(record_id="", text="x"),
        pb.AddNoteRequest(record_id="a b", text="x"),
    ):
        assert await status_of(crm.stub.AddNote(request, metadata=rep)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_crm06_a_retried_note_with_the_same_request_id_is_written_once(crm, tenant, rep):
    lead = await new_lead(crm, tenant)
    first = await crm.stub.AddNote(pb.AddNoteRequest(record_id=lead.id, text="once", request_id="r-1"), metadata=rep)
    again = await crm.stub.AddNote(pb.AddNoteRequest(record_id=lead.id, text="once", request_id="r-1"), metadata=rep)
    assert first.note.id == again.note.id
    other = crm.stub.AddNote(pb.AddNoteRequest(record_id=lead.id, text="different", request_id="r-1"), metadata=rep)
    assert await status_of(other) == grpc.StatusCode.INVALID_ARGUMENT
    assert len((await crm.stub.ListNotes(pb.ListNotesRequest(record_id=lead.id), metadata=rep)).notes) == 1


async def test_crm08_update_the_phone_and_custom_fields(crm, tenant, rep):
    await crm.stub.DefineCustomField(
        pb.DefineCustomFieldRequest(type=pb.RECORD_TYPE_LEAD, name="budget", label="予算"), metadata=admin(tenant)
    )
    lead = await new_lead(crm, tenant)
    updated = await crm.stub.UpdateRecordFields(
        pb.UpdateRecordFieldsRequest(record_id=lead.id, fields={"phone": "03-9999-0000", "budget": "300万円", "company": ""}),
        metadata=rep,
    )
    assert dict(updated.record.fields) == {"phone": "03-9999-0000", "budget": "300万円"}
    for fields, words in [
        ({"shoe_size": "27"}, "not a field of a lead"),
        ({"phone": "call me maybe"}, "not a phone number"),
        ({"employees": "-5"}, "must be a number"),
        ({}, "at least one field"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await crm.stub.UpdateRecordFields(pb.UpdateRecordFieldsRequest(record_id=lead.id, fields=fields), metadata=rep)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in err.value.details()
    fields = await crm.stub.ListCustomFields(pb.ListCustomFieldsRequest(), metadata=rep)
    assert [(f.name, f.label) for f in fields.fields] == [("budget", "予算")]


async def test_crm09_convert_a_lead_into_a_contact_and_a_deal(crm, tenant, rep):
    lead = await new_lead(crm, tenant)
    converted = await crm.stub.ConvertLead(
        pb.ConvertLeadRequest(
            record_id=lead.id,
            with_deal=True,
            deal_name="Plan B",
            deal_stage="Proposal",
            deal_amount=1200000,
            deal_closing_date="2030-03-31",
        ),
        metadata=rep,
    )
    contact = converted.record
    assert (contact.id, contact.type, contact.account) == (lead.id, pb.RECORD_TYPE_CONTACT, "Lead KK")
    assert (
        converted.deal.name,
        converted.deal.stage,
        converted.deal.amount,
        converted.deal.closing_date,
        converted.deal.open,
    ) == (
        "Plan B",
        "Proposal",
        1200000,
        "2030-03-31",
        True,
    )
    assert contact.visitor_type == "deal"
    again = crm.stub.ConvertLead(pb.ConvertLeadRequest(record_id=lead.id), metadata=rep)
    assert await status_of(again) == grpc.StatusCode.FAILED_PRECONDITION

    more = await crm.stub.AddDeal(
        pb.AddDealRequest(record_id=contact.id, name="Support", stage="Qualification", amount=0, request_id="d-1"), metadata=rep
    )
    retried = await crm.stub.AddDeal(
        pb.AddDealRequest(record_id=contact.id, name="Support", stage="Qualification", amount=0, request_id="d-1"), metadata=rep
    )
    assert more.deal.id == retried.deal.id and len(retried.record.deals) == 2


async def test_crm09_bad_deals_and_wrong_record_types(crm, tenant, rep):
    lead = await new_lead(crm, tenant)
    for request, words in [
        (pb.ConvertLeadRequest(record_id=lead.id, with_deal=True, deal_name="X", deal_amount=-1), "amount"),
        (pb.ConvertLeadRequest(record_id=lead.id, with_deal=True, deal_name="", deal_amount=1), "deal name"),
        (pb.ConvertLeadRequest(record_id=lead.id, with_deal=True, deal_name="X", deal_closing_date="2030-02-30"), "closing_date"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await crm.stub.ConvertLead(request, metadata=rep)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in err.value.details()
    on_lead = crm.stub.AddDeal(pb.AddDealRequest(record_id=lead.id, name="X", amount=1), metadata=rep)
    assert await status_of(on_lead) == grpc.StatusCode.FAILED_PRECONDITION  # convert it first
    nan = crm.stub.AddDeal(pb.AddDealRequest(record_id=lead.id, name="X", amount=float("nan")), metadata=rep)
    assert await status_of(nan) == grpc.StatusCode.INVALID_ARGUMENT
    unknown = crm.stub.ConvertLead(pb.ConvertLeadRequest(record_id="00000000-0000-4000-8000-000000000001"), metadata=rep)
    assert await status_of(unknown) == grpc.StatusCode.NOT_FOUND
    theirs = crm.stub.ConvertLead(pb.ConvertLeadRequest(record_id=lead.id), metadata=auth(f"{tenant}-b", "admin", "a"))
    assert await status_of(theirs) == grpc.StatusCode.NOT_FOUND
    assert (await crm.stub.FindRecord(pb.FindRecordRequest(email="lead@example.com"), metadata=rep)).type == pb.RECORD_TYPE_LEAD


async def test_crm05_tasks_by_date_or_by_rule(crm, tenant, rep):
    lead = await new_lead(crm, tenant)
    dated = await crm.stub.AddTask(
        pb.AddTaskRequest(record_id=lead.id, subject="見積もり送付", due_date="2030-01-15"), metadata=rep
    )
    assert (dated.task.subject, dated.task.due_date, dated.task.owner, dated.task.status) == (
        "見積もり送付",
        "2030-01-15",
        "rep@example.com",
        "open",
    )
    ruled = await crm.stub.AddTask(
        pb.AddTaskRequest(record_id=lead.id, subject="電話", due=spb.FOLLOW_UP_IN_7_DAYS), metadata=rep
    )
    assert ruled.task.due_date
    feed = await crm.stub.ListActivities(pb.ListActivitiesRequest(record_id=lead.id), metadata=rep)
    assert [a.subject for a in feed.activities if a.kind == "task"] == ["電話", "見積もり送付"] or [
        a.subject for a in feed.activities if a.kind == "task"
    ] == ["見積もり送付", "電話"]
    for request in (
        pb.AddTaskRequest(record_id=lead.id, subject="x"),
        pb.AddTaskRequest(record_id=lead.id, subject="", due_date="2030-01-01"),
        pb.AddTaskRequest(record_id=lead.id, subject="x", due_date="15/01/2030"),
    ):
        assert await status_of(crm.stub.AddTask(request, metadata=rep)) == grpc.StatusCode.INVALID_ARGUMENT
