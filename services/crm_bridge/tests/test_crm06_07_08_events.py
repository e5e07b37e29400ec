"""CRM-06/07/08 from other services' events (the real conversation and visitor services
in this process): a chat that ends puts its transcript (when enabled), an activity
(start, agent, end, link; on open deals too) and an automatic note on the record; a
missed chat leaves a note; a known visitor's page views are recorded as visits. Replaying
any event changes nothing."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1 import settings_pb2 as spb
from kaiwa.events.v1.conversation_pb2 import ChatEnded
from kaiwa.visitor.v1 import visitor_pb2 as vpb

from kaiwa_common.config import Settings
from kaiwa_common.events import subject
from services.crm_bridge.tests.kit import AGENT_NAME, admin, agent, missed_chat, stack
from tests.fixtures import auth, eventually, events_of


@pytest.fixture(scope="module")
async def services():
    async with stack(with_visitor=True) as running_stack:
        yield running_stack


async def contact_with_deal(crm, tenant, email):
    return await crm.stub.UpsertRecord(
        pb.UpsertRecordRequest(
            email=email,
            type=pb.RECORD_TYPE_CONTACT,
            name="Yamada Hanako",
            owner="sales@example.com",
            deals=[pb.Deal(name="Renewal", stage="Negotiation", amount=500000, open=True)],
        ),
        metadata=admin(tenant),
    )


async def notes_of(crm, tenant, record_id):
    return list((await crm.stub.ListNotes(pb.ListNotesRequest(record_id=record_id), metadata=admin(tenant))).notes)


async def chats_of(crm, tenant, record_id, deal_id=""):
    request = pb.ListActivitiesRequest(record_id=record_id, deal_id=deal_id, chats_only=True)
    return list((await crm.stub.ListActivities(request, metadata=admin(tenant))).activities)


async def test_crm07_ended_chat_puts_transcript_activity_and_note_on_the_record(services, tenant):
    crm = services.crm
    contact = await contact_with_deal(crm, tenant, "hanako@example.com")
    chat = await services.ended_chat(tenant, "Hanako@Example.com", name="hana")

    async def with_everything():
        record = await crm.stub.FindRecord(pb.FindRecordRequest(email="hanako@example.com"), metadata=admin(tenant))
        notes = await notes_of(crm, tenant, record.id)
        return record if record.attachments and notes else None

    record = await eventually(with_everything, "transcript, activity and note on the contact")
    assert record.id == contact.id and record.owner == "sales@example.com"  # an existing record is kept as it is
    [attachment] = record.attachments
    assert (attachment.chat_id, attachment.mime_type) == (chat.id, "application/pdf")

    [activity] = await chats_of(crm, tenant, record.id)
    assert (activity.kind, activity.chat_id, activity.agent, activity.visitor, activity.subject) == (
        "chat",
        chat.id,
        AGENT_NAME,
        "hana",
        "見積もりをお願いします",
    )
    assert activity.started_at.seconds and activity.ended_at.seconds >= activity.started_at.seconds
    assert chat.id in activity.link
    [on_deal] = await chats_of(crm, tenant, record.id, deal_id=record.deals[0].id)  # the deal's feed too
    assert on_deal.chat_id == chat.id

    [note] = await notes_of(crm, tenant, record.id)
    assert (note.kind, note.author) == ("chat", "kaiwa")
    for part in ("hana", AGENT_NAME, chat.visitor_id, "見積もりをお願いします", "日時"):
        assert part in note.text


async def test_crm07_transcript_only_when_the_tenant_enabled_it(services, tenant):
    crm = services.crm
    settings = await crm.stub.GetCrmSettings(spb.GetCrmSettingsRequest(), metadata=admin(tenant))
    settings.attach_transcripts = False
    await crm.stub.UpdateCrmSettings(settings, metadata=admin(tenant))
    chat = await services.ended_chat(tenant, "plain@example.com")

    async def noted():
        try:
            record = await crm.stub.FindRecord(pb.FindRecordRequest(email="plain@example.com"), metadata=admin(tenant))
        except Exception:
            return None
        return record if await notes_of(crm, tenant, record.id) else None

    record = await eventually(noted, "the lead and its note")
    assert list(record.attachments) == []
    assert [a.chat_id for a in await chats_of(crm, tenant, record.id)] == [chat.id]


async def test_crm06_missed_chat_leaves_a_note_and_adds_per_policy(services, tenant):
    crm = services.crm
    existing = await contact_with_deal(crm, tenant, "known@example.com")
    known = await crm.publish("conversation", tenant, missed_chat("known@example.com", question="営業時間は?"))
    stranger = await crm.publish("conversation", tenant, missed_chat("stranger@example.com"))
    await eventually(lambda: crm.processed(known), "the missed chat of a known contact")
    await eventually(lambda: crm.processed(stranger), "the missed chat of a stranger")

    [note] = await notes_of(crm, tenant, existing.id)
    assert note.kind == "missed_chat" and "営業時間は?" in note.text and "no_agent_accepted" in note.text and "95" in note.text
    # Default policy (attended and unattended): the unattended stranger is added, labelled.
    lead = await crm.stub.FindRecord(pb.FindRecordRequest(email="stranger@example.com"), metadata=admin(tenant))
    assert (lead.type, lead.source, lead.label) == (pb.RECORD_TYPE_LEAD, "chat", "tracked_in_crm")
    assert [n.kind for n in await notes_of(crm, tenant, lead.id)] == ["missed_chat"]
    assert await chats_of(crm, tenant, lead.id) == []  # no agent, no chat in the feed

    settings = await crm.stub.GetCrmSettings(spb.GetCrmSettingsRequest(), metadata=admin(tenant))
    settings.auto_add = spb.AUTO_ADD_ATTENDED
    await crm.stub.UpdateCrmSettings(settings, metadata=admin(tenant))
    ignored = await crm.publish("conversation", tenant, missed_chat("ignored@example.com"))
    await eventually(lambda: crm.processed(ignored), "the missed chat under 'attended only'")
    context = await crm.stub.GetContext(pb.GetContextRequest(email="ignored@example.com"), metadata=agent(tenant))
    assert not context.found


async def test_crm08_a_known_visitors_page_views_are_visits_on_the_record(services, tenant):
    async with contextlib.AsyncExitStack() as stack_events:
        await _visits(services, tenant, stack_events)


async def _visits(services, tenant, stack_events):
    crm, visitor_id = services.crm, str(uuid.uuid4())
    settings = await crm.stub.GetCrmSettings(spb.GetCrmSettingsRequest(), metadata=admin(tenant))
    settings.field_mapping["search_keywords"] = "last_search"
    await crm.stub.UpdateCrmSettings(settings, metadata=admin(tenant))
    await services.ended_chat(tenant, "browser@example.com", name="Browsing Bob", visitor_id=visitor_id)
    record = await eventually(lambda: _find(crm, tenant, "browser@example.com"), "the lead from the chat")

    service = auth(tenant, "service", "widget-gateway")
    arrivals = await stack_events.enter_async_context(events_of(tenant, "crm_bridge", "crm_visitor_arrived"))
    pages = [
        (
            "https://shop.example.jp/",
            "トップ",
            "https://www.google.co.jp/search?q=%E6%96%99%E9%87%91+%E3%83%97%E3%83%A9%E3%83%B3",
        ),
        ("https://shop.example.jp/pricing", "料金", "https://shop.example.jp/"),
    ]
    for url, title, referrer in pages:
        await services.visitor.TrackPageView(
            vpb.TrackPageViewRequest(
                visitor_id=visitor_id, url=url, title=title, referrer=referrer, user_agent="Mozilla/5.0 Test", ip="203.0.113.7"
            ),
            metadata=service,
        )

    async def both_pages():
        visits = (await crm.stub.ListVisits(pb.ListVisitsRequest(record_id=record.id), metadata=agent(tenant))).visits
        return visits if visits and len(visits[0].pages) == 2 else None

    [visit] = await eventually(both_pages, "both page views recorded as one visit")
    assert list(visit.pages) == [p[0] for p in pages] and list(visit.page_titles) == ["トップ", "料金"]
    assert (visit.ip, visit.user_agent, visit.referrer) == ("203.0.113.7", "Mozilla/5.0 Test", pages[0][2])
    assert (visit.search_engine, visit.search_keywords, visit.attended_by, visit.visitor_type) == (
        "Google",
        "料金 プラン",
        AGENT_NAME,
        "lead",
    )
    assert visit.time_spent_minutes >= 0
    updated = await crm.stub.FindRecord(pb.FindRecordRequest(email="browser@example.com"), metadata=admin(tenant))
    assert updated.fields["last_search"] == "料金 プラン"  # the mapped custom field
    arrived = await eventually(lambda: len(arrivals) == 2 and arrivals, "a visitor notification per page (setting on)")
    assert {(e.crm_visitor_arrived.record_id, e.crm_visitor_arrived.email) for e in arrived} == {
        (record.id, "browser@example.com")
    }

    settings.write_visits = False  # visits are not written any more
    await crm.stub.UpdateCrmSettings(settings, metadata=admin(tenant))
    await services.visitor.TrackPageView(
        vpb.TrackPageViewRequest(visitor_id=visitor_id, url="https://shop.example.jp/contact", ip="203.0.113.7"), metadata=service
    )
    await eventually(lambda: len(arrivals) == 3, "the third page view is taken")
    visits = (await crm.stub.ListVisits(pb.ListVisitsRequest(record_id=record.id), metadata=agent(tenant))).visits
    assert [len(v.pages) for v in visits] == [2]


async def test_crm07_replaying_events_changes_nothing(services, tenant):
    crm = services.crm
    chat = await services.ended_chat(tenant, "again@example.com")
    record = await eventually(lambda: _find(crm, tenant, "again@example.com", with_attachment=True), "the first run")
    # The same chat ended again (a new fact, e.g. after a reopen), and the same event
    # delivered a second time (a consumer reset): still one of everything.
    again = await crm.publish(
        "conversation", tenant, ChatEnded(chat_id=chat.id, agent_id="agent-7", visitor_email="again@example.com", reason="agent")
    )
    await eventually(lambda: crm.processed(again), "the repeated chat_ended")
    replay = await crm.runner.ctx.js.publish(
        subject(Settings().subject_prefix, "conversation", "chat_ended"),
        again.SerializeToString(),
        headers={"Nats-Msg-Id": str(uuid.uuid4())},
    )
    assert replay.seq
    # The consumer takes the stream in order: once a later event is done, so is the replay.
    marker = await crm.publish("conversation", tenant, missed_chat("marker@example.com"))
    await eventually(lambda: crm.processed(marker), "a later event")
    found = await crm.stub.FindRecord(pb.FindRecordRequest(email="again@example.com"), metadata=admin(tenant))
    assert [a.chat_id for a in found.attachments] == [chat.id]
    assert len(await notes_of(crm, tenant, record.id)) == 1
    assert len(await chats_of(crm, tenant, record.id)) == 1
    rows = await crm.runner.ctx.pool.fetchval(
        "SELECT count(*) FROM records WHERE tenant = $1 AND email = $2", tenant, "again@example.com"
    )
    assert rows == 1


async def _find(crm, tenant, email, with_attachment=False):
    try:
        record = await crm.stub.FindRecord(pb.FindRecordRequest(email=email), metadata=admin(tenant))
    except Exception:
        return None
    return record if record.attachments or not with_attachment else None
