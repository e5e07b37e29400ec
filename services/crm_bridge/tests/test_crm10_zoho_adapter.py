"""CRM-10: a tenant connected to a Zoho CRM account works through Zoho's REST API v8 —
held here against a local stand-in that speaks Zoho's wire format (zoho_standin.py):
OAuth refresh tokens, search, create, notes, tasks, conversion, deals, 401/429/5xx,
lost answers, refusals parked as dead letters and replayed, and an outage that loses
nothing. Everything through the CRM bridge's gRPC API, real PostgreSQL and NATS."""

from __future__ import annotations

import uuid

import grpc
import pytest
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.visitor.v1 import visitor_pb2 as vpb

from services.crm_bridge.tests.kit import AGENT_NAME, admin, connect_zoho, crm_service, missed_chat, stack, zoho_env
from services.crm_bridge.tests.zoho_standin import ZohoStandIn
from tests.fixtures import auth, eventually, status_of

BOSS = "boss@zylker.example"


@pytest.fixture(scope="module")
def standin():
    zoho = ZohoStandIn()
    zoho.start()
    yield zoho
    zoho.stop()


@pytest.fixture(scope="module")
async def crm(standin):
    async with crm_service(zoho_env(standin)) as service:
        yield service


@pytest.fixture
async def zoho_tenant(crm, standin, tenant):
    await connect_zoho(crm.stub, tenant, standin)
    return tenant


async def add_lead(crm, tenant, email, **extra) -> pb.ActionResult:
    request = pb.AddRecordFromChatRequest(email=email, name="山田 花子", company="Example KK", phone="03-1234-5678", **extra)
    return await crm.stub.AddRecordFromChat(request, metadata=admin(tenant))


async def test_crm10_zoho_lead_note_task_conversion_and_deal_through_the_api(crm, standin, zoho_tenant):
    tenant = zoho_tenant
    added = await add_lead(crm, tenant, "Hanako@Example.co.jp", status="Contacted")
    assert added.state == pb.WRITE_STATE_DONE
    lead_id = added.record.id
    assert lead_id.startswith("lead:") and added.record.type == pb.RECORD_TYPE_LEAD
    [lead] = standin.find("Leads", Email="Hanako@Example.co.jp")
    assert (lead["Last_Name"], lead["Company"], lead["Phone"], lead["Lead_Status"], lead["Lead_Source"]) == (
        "山田 花子",
        "Example KK",
        "03-1234-5678",
        "Contacted",
        "chat",
    )
    found = await crm.stub.FindRecord(pb.FindRecordRequest(email="hanako@example.co.jp"), metadata=admin(tenant))
    assert found.id == lead_id and found.owner == BOSS
    assert dict(found.fields) == {"company": "Example KK", "phone": "03-1234-5678", "status": "Contacted"}

    note = await crm.stub.AddNote(pb.AddNoteRequest(record_id=lead_id, text="プランBに興味あり"), metadata=admin(tenant))
    assert note.state == pb.WRITE_STATE_DONE and note.note.text == "プランBに興味あり"
    notes = await crm.stub.ListNotes(pb.ListNotesRequest(record_id=lead_id), metadata=admin(tenant))
    assert [n.text for n in notes.notes] == ["プランBに興味あり"]

    task = await crm.stub.AddTask(
        pb.AddTaskRequest(record_id=lead_id, subject="見積もりを送る", due_date="2030-01-15"), metadata=admin(tenant)
    )
    assert task.task.due_date == "2030-01-15"
    [zoho_task] = standin.find("Tasks", Subject="見積もりを送る")
    assert zoho_task["Due_Date"] == "2030-01-15" and zoho_task["What_Id"]["id"] == lead_id.split(":")[1]

    converted = await crm.stub.ConvertLead(
        pb.ConvertLeadRequest(
            record_id=lead_id,
            with_deal=True,
            deal_name="Plan B",
            deal_stage="Negotiation/Review",
            deal_amount=1200000,
            deal_closing_date="2030-03-31",
        ),
        metadata=admin(tenant),
    )
    contact = converted.record
    assert contact.type == pb.RECORD_TYPE_CONTACT and contact.id.startswith("contact:")
    assert (converted.deal.name, converted.deal.amount, converted.deal.closing_date) == ("Plan B", 1200000, "2030-03-31")
    assert standin.find("Leads", Email="Hanako@Example.co.jp") == []
    [account] = standin.find("Accounts", Account_Name="Example KK")

    more = await crm.stub.AddDeal(
        pb.AddDealRequest(record_id=contact.id, name="Support", stage="Qualification", amount=300000), metadata=admin(tenant)
    )
    assert more.deal.name == "Support"
    context = await crm.stub.GetContext(pb.GetContextRequest(email="HANAKO@example.co.jp"), metadata=admin(tenant))
    assert context.found and context.record.type == pb.RECORD_TYPE_CONTACT
    assert [(f.key, f.value) for f in context.fields] == [
        ("account", "Example KK"),
        ("phone", "03-1234-5678"),
        ("owner", BOSS),
        ("source", "chat"),
    ]
    assert [(f.key, f.value) for f in context.company_fields] == [("name", account["Account_Name"])]
    assert (context.open_deal_count, context.open_deal_amount) == (2, 1500000)


async def test_crm10_zoho_key_is_stored_encrypted_and_never_returned(crm, standin, zoho_tenant):
    connection = await crm.stub.GetConnection(pb.GetConnectionRequest(), metadata=admin(zoho_tenant))
    assert (connection.kind, connection.enabled, connection.admin_email, connection.has_integration_key) == (
        pb.CRM_KIND_ZOHO,
        True,
        BOSS,
        True,
    )
    secret = next(iter(standin.refresh_tokens))
    assert secret.encode() not in connection.SerializeToString()
    row = await crm.runner.ctx.pool.fetchrow("SELECT * FROM connections WHERE tenant = $1", zoho_tenant)
    stored = " ".join(str(v) for v in row.values())
    assert secret not in stored and standin.client[1] not in stored and row["key_cipher"].startswith("gAAAAA")


async def test_crm10_expired_access_token_is_refreshed_once(crm, standin, zoho_tenant):
    await add_lead(crm, zoho_tenant, "token@example.com")
    refreshes = len(standin.calls("POST", "/oauth/v2/token"))
    standin.expire_tokens()
    found = await crm.stub.FindRecord(pb.FindRecordRequest(email="token@example.com"), metadata=admin(zoho_tenant))
    assert found.email == "token@example.com"
    assert len(standin.calls("POST", "/oauth/v2/token")) == refreshes + 1


async def test_crm10_a_short_429_is_waited_for_in_the_call(crm, standin, zoho_tenant):
    standin.throttle(1, retry_after=0)
    added = await add_lead(crm, zoho_tenant, "busy@example.com")
    assert added.state == pb.WRITE_STATE_DONE
    assert len(standin.find("Leads", Email="busy@example.com")) == 1


async def test_crm10_a_long_429_queues_the_write_until_the_crm_said(crm, standin, zoho_tenant):
    lead = await add_lead(crm, zoho_tenant, "later@example.com")
    standin.throttle(1, retry_after=2)
    queued = await crm.stub.AddNote(pb.AddNoteRequest(record_id=lead.record.id, text="あとで"), metadata=admin(zoho_tenant))
    assert queued.state == pb.WRITE_STATE_QUEUED and queued.write_id
    connection = await crm.stub.GetConnection(pb.GetConnectionRequest(), metadata=admin(zoho_tenant))
    assert connection.status == "rate limited" and connection.queued_writes == 1

    async def done():
        write = await crm.stub.GetWrite(pb.GetWriteRequest(write_id=queued.write_id), metadata=admin(zoho_tenant))
        return write.state == pb.WRITE_STATE_DONE

    await eventually(done, "the queued note is written once the rate limit resets")
    parent = lead.record.id.split(":")[1]
    assert [n["Note_Content"].split("\n")[0] for n in standin.notes.values() if n["Parent_Id"]["id"] == parent] == ["あとで"]


async def test_crm10_a_create_whose_answer_was_lost_is_not_made_twice(crm, standin, zoho_tenant):
    lead = await add_lead(crm, zoho_tenant, "lost@example.com")
    standin.lose_next_answer("POST", "/Notes")
    first = await crm.stub.AddNote(pb.AddNoteRequest(record_id=lead.record.id, text="一度だけ"), metadata=admin(zoho_tenant))
    assert first.state == pb.WRITE_STATE_QUEUED

    async def done():
        write = await crm.stub.GetWrite(pb.GetWriteRequest(write_id=first.write_id), metadata=admin(zoho_tenant))
        return write.state == pb.WRITE_STATE_DONE

    await eventually(done, "the retried note")
    parent = lead.record.id.split(":")[1]
    assert len([n for n in standin.notes.values() if n["Parent_Id"]["id"] == parent]) == 1


async def test_crm10_server_errors_on_reads_are_retried_with_backoff(crm, standin, zoho_tenant):
    await add_lead(crm, zoho_tenant, "flaky@example.com")
    standin.fail_next(500, 503)
    found = await crm.stub.FindRecord(pb.FindRecordRequest(email="flaky@example.com"), metadata=admin(zoho_tenant))
    assert found.email == "flaky@example.com"


async def test_crm10_what_zoho_refuses_is_a_dead_letter_an_admin_replays(crm, standin, zoho_tenant):
    tenant = zoho_tenant
    long_name = "ヤマダ" * 30  # Zoho's Last_Name takes 80 characters
    event = await crm.publish("conversation", tenant, missed_chat("refused@example.com", name=long_name))
    await eventually(lambda: crm.processed(event), "the missed chat is taken")

    async def parked():
        listed = await crm.stub.ListDeadLetters(pb.ListDeadLettersRequest(), metadata=admin(tenant))
        return listed.writes

    [dead] = await eventually(parked, "the refused write is parked")
    assert dead.state == pb.WRITE_STATE_DEAD_LETTER and dead.kind == "chat_ended"
    assert "INVALID_DATA" in dead.error and "Last_Name" in dead.error
    assert standin.find("Leads", Email="refused@example.com") == []

    standin.max_length["Last_Name"] = 200  # the admin widens the field in Zoho
    replayed = await crm.stub.ReplayDeadLetter(pb.ReplayDeadLetterRequest(write_id=dead.id), metadata=admin(tenant))
    assert replayed.state == pb.WRITE_STATE_DONE
    [lead] = standin.find("Leads", Email="refused@example.com")
    assert lead["Last_Name"] == long_name and lead["Lead_Source"] == "chat"
    [note] = [n for n in standin.notes.values() if n["Parent_Id"]["id"] == lead["id"]]
    assert note["Note_Title"] == "未対応のチャット" and "料金を教えてください" in note["Note_Content"]
    call = crm.stub.ReplayDeadLetter(pb.ReplayDeadLetterRequest(write_id=dead.id), metadata=admin(tenant))
    assert await status_of(call) == grpc.StatusCode.FAILED_PRECONDITION


async def test_crm10_zoho_unknown_and_malformed_records(crm, zoho_tenant):
    unknown = crm.stub.AddNote(pb.AddNoteRequest(record_id="lead:5725767009999999999", text="x"), metadata=admin(zoho_tenant))
    assert await status_of(unknown) == grpc.StatusCode.NOT_FOUND
    malformed = crm.stub.AddNote(pb.AddNoteRequest(record_id="lead 1; DROP", text="x"), metadata=admin(zoho_tenant))
    assert await status_of(malformed) == grpc.StatusCode.INVALID_ARGUMENT
    listed = await crm.stub.ListDeadLetters(pb.ListDeadLettersRequest(include_queued=True), metadata=admin(zoho_tenant))
    assert list(listed.writes) == []  # the caller's mistakes are not kept as writes


async def test_crm10_outage_loses_nothing_and_completes_when_zoho_is_back(standin, tenant):
    """The stand-in stops (connection refused): a missed chat and an agent's new lead wait
    in the queue; the chat is never blocked; once Zoho is back both are written, once."""
    zoho = ZohoStandIn()
    zoho.start()
    async with crm_service(zoho_env(zoho)) as crm:
        await connect_zoho(crm.stub, tenant, zoho)
        zoho.stop()
        event = await crm.publish("conversation", tenant, missed_chat("outage@example.com"))
        await eventually(lambda: crm.processed(event), "the event is acknowledged while Zoho is down")
        added = await add_lead(crm, tenant, "manual@example.com")
        assert added.state == pb.WRITE_STATE_QUEUED

        async def queued():
            listed = await crm.stub.ListDeadLetters(pb.ListDeadLettersRequest(include_queued=True), metadata=admin(tenant))
            return len(listed.writes) == 2 and all(w.state == pb.WRITE_STATE_QUEUED and w.attempts >= 2 for w in listed.writes)

        await eventually(queued, "both writes wait and are retried")
        zoho.start()  # same port: Zoho is back

        async def written():
            # The lead reaches Zoho a moment before the write is recorded as done.
            write = await crm.stub.GetWrite(pb.GetWriteRequest(write_id=added.write_id), metadata=admin(tenant))
            return (
                zoho.find("Leads", Email="outage@example.com")
                and zoho.find("Leads", Email="manual@example.com")
                and write.state == pb.WRITE_STATE_DONE
            )

        await eventually(written, "the waiting writes reach Zoho and are done", timeout=30)
        assert (
            len(zoho.find("Leads", Email="outage@example.com")) == 1 and len(zoho.find("Leads", Email="manual@example.com")) == 1
        )
    zoho.stop()


async def test_crm07_08_zoho_ended_chat_and_visits_reach_zoho(standin, tenant):
    """The events' writes on Zoho: the lead, the transcript uploaded as a multipart
    attachment, the chat as an inbound call in the feed, the note; a page view as a visit."""
    async with stack(with_visitor=True, env=zoho_env(standin)) as services:
        await connect_zoho(services.crm.stub, tenant, standin)
        visitor_id = str(uuid.uuid4())
        chat = await services.ended_chat(tenant, "zoho-chat@example.com", name="Zoho Visitor", visitor_id=visitor_id)

        async def everything():
            leads = standin.find("Leads", Email="zoho-chat@example.com")
            if not leads:
                return None
            lead_id = leads[0]["id"]
            notes = [n for n in standin.notes.values() if n["Parent_Id"]["id"] == lead_id]
            files = [a for a in standin.attachments.values() if a["Parent_Id"]["id"] == lead_id]
            calls = [c for c in standin.find("Calls") if c.get("What_Id", {}).get("id") == lead_id]
            return (leads[0], notes, files, calls) if notes and files and calls else None

        lead, [note], [transcript], [call] = await eventually(everything, "the chat's writes in Zoho")
        assert (lead["Lead_Source"], lead["Last_Name"]) == ("chat", "Zoho Visitor")
        assert transcript["File_Name"] == f"chat-transcript-{chat.id}.pdf" and transcript["content"].startswith(b"%PDF")
        assert (call["Call_Type"], call["$se_module"]) == ("Inbound", "Leads") and AGENT_NAME in call["Description"]
        assert note["Note_Title"] == "チャット" and "見積もりをお願いします" in note["Note_Content"]

        await services.visitor.TrackPageView(
            vpb.TrackPageViewRequest(
                visitor_id=visitor_id, url="https://shop.example.jp/pricing", title="料金", ip="203.0.113.9"
            ),
            metadata=auth(tenant, "service", "widget-gateway"),
        )
        [visit] = await eventually(lambda: standin.find("Visits", Visitor_Email="zoho-chat@example.com"), "the visit in Zoho")
        assert (visit["IP_Address"], visit["Visited_Pages"], visit["Attended_By"]) == (
            "203.0.113.9",
            "https://shop.example.jp/pricing",
            AGENT_NAME,
        )
