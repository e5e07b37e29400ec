"""VIS-03 through the gRPC API against real PostgreSQL and NATS, with the real crm_bridge:
identifying a visitor (chat, web form), merging the anonymous history into the known
visitor, the lead score, the visitor type and CRM link from the CRM, kept current."""

from __future__ import annotations

import contextlib
import uuid

import grpc
import pytest
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm_pb
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub
from kaiwa.events.v1.conversation_pb2 import ChatStarted
from kaiwa.visitor.v1 import visitor_pb2 as pb

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from kaiwa_common.devservers import free_port
from kaiwa_crm.main import make_spec as crm_spec
from services.visitor.tests.stack import publish, stack
from tests.fixtures import auth, channel_to, events_of, eventually, status_of

EMAIL = "hanako.yamada@example.co.jp"


@pytest.fixture(scope="module")
async def peers():
    async with stack() as s:
        yield s


def staff(tenant: str):
    return auth(tenant, "agent", "agent-1")


async def browse(s, tenant: str, visitor_id: str, pages: int) -> list[pb.PageView]:
    me = auth(tenant, "visitor", visitor_id)
    return [
        await s.visitors.TrackPageView(pb.TrackPageViewRequest(url=f"https://example.com/{i}"), metadata=me) for i in range(pages)
    ]


async def test_vis03_identify_merges_the_anonymous_history_into_the_known_visitor(peers, tenant):
    s = peers
    record = await s.crm.UpsertRecord(
        crm_pb.UpsertRecordRequest(email=EMAIL, name="山田 花子", owner="sales@example.co.jp", fields={"company": "Example KK"}),
        metadata=auth(tenant, "admin", "a"),
    )
    known, anonymous = str(uuid.uuid4()), str(uuid.uuid4())
    await browse(s, tenant, known, 2)
    await browse(s, tenant, anonymous, 3)
    async with events_of(tenant, "visitor", "visitor_identified") as identified:
        first = await s.visitors.IdentifyVisitor(
            pb.IdentifyVisitorRequest(email="Hanako.Yamada@Example.co.jp", name="山田 花子"),
            metadata=auth(tenant, "visitor", known),
        )
        merged = await s.visitors.IdentifyVisitor(
            pb.IdentifyVisitorRequest(email=EMAIL, phone="03-1234-5678"), metadata=auth(tenant, "visitor", anonymous)
        )
        await eventually(lambda: len(identified) == 2, "two visitor_identified events")
    assert first.id == known and first.email == EMAIL and first.identified_at.seconds > 0
    assert (first.visitor_type, first.crm.record_id, first.crm.record_type, first.crm.owner) == (
        pb.VISITOR_TYPE_LEAD,
        record.id,
        "lead",
        "sales@example.co.jp",
    )
    assert merged.id == known  # the anonymous visitor now stands for the known one
    assert (merged.visit_count, merged.page_view_count, merged.name, merged.phone) == (2, 5, "山田 花子", "03-1234-5678")
    event = identified[1].visitor_identified
    assert (event.visitor_id, list(event.merged_visitor_ids), event.source, event.visitor_type) == (
        known,
        [anonymous],
        "chat",
        "lead",
    )
    # The merged id keeps working: its page views count for the known visitor.
    await browse(s, tenant, anonymous, 1)
    again = await s.visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=anonymous), metadata=staff(tenant))
    assert (again.id, again.page_view_count) == (known, 6)
    assert {v.visitor_id for v in again.recent_page_views} == {known}


async def test_vis03_lead_score_follows_the_formula(peers, tenant):
    s = peers
    visitor_id = str(uuid.uuid4())
    await browse(s, tenant, visitor_id, 2)
    visitor = await s.visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))
    assert (visitor.lead_score, visitor.visitor_type) == (5 + 2, pb.VISITOR_TYPE_UNKNOWN)  # 1 visit, 2 pages, no time yet
    await s.crm.UpsertRecord(
        crm_pb.UpsertRecordRequest(
            type=crm_pb.RECORD_TYPE_CONTACT,
            email="buyer@example.com",
            deals=[crm_pb.Deal(name="renewal", stage="Closed Won", amount=5000, open=False)],
        ),
        metadata=auth(tenant, "admin", "a"),
    )
    web_form = pb.IdentifyVisitorRequest(visitor_id=visitor_id, email="buyer@example.com", source=pb.IDENTITY_SOURCE_WEB_FORM)
    visitor = await s.visitors.IdentifyVisitor(web_form, metadata=auth(tenant, "service", "crm-forms"))
    assert visitor.visitor_type == pb.VISITOR_TYPE_CUSTOMER and visitor.crm.record_type == "contact"
    assert visitor.lead_score == 5 + 2 + 15 + 40  # identified, and a customer


async def test_vis03_chat_started_adds_the_chat_action_and_identifies_the_visitor(peers, tenant):
    s = peers
    visitor_id = str(uuid.uuid4())
    pages = await browse(s, tenant, visitor_id, 2)
    chat_id = str(uuid.uuid4())
    started = ChatStarted(
        chat_id=chat_id, channel="CHANNEL_WEB", visitor_id=visitor_id, visitor_name="Ken", visitor_email="ken@example.com"
    )
    await publish("conversation", tenant, started)

    async def chatted():
        v = await s.visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))
        return v if v.chat_count == 1 and v.email else None

    visitor = await eventually(chatted, "chat recorded and visitor identified")
    assert (visitor.name, visitor.email, visitor.lead_score) == ("Ken", "ken@example.com", 5 + 2 + 20 + 15)
    visit = await s.visitors.GetVisit(pb.GetVisitRequest(visit_id=pages[0].visit_id), metadata=staff(tenant))
    assert visit.chatted and [a.kind for a in visit.actions] == [
        pb.ACTION_KIND_ACCESS,
        pb.ACTION_KIND_NAVIGATE,
        pb.ACTION_KIND_CHAT,
    ]
    assert (visit.actions[2].chat_id, visit.actions[2].url) == (chat_id, pages[1].url)


@pytest.mark.parametrize(
    "role, fields, code",
    [
        ("visitor", {"email": "not-an-email"}, grpc.StatusCode.INVALID_ARGUMENT),
        ("visitor", {"email": EMAIL, "phone": "call me"}, grpc.StatusCode.INVALID_ARGUMENT),
        ("visitor", {"email": EMAIL, "visitor_id": "OTHER"}, grpc.StatusCode.PERMISSION_DENIED),
        ("service", {"email": EMAIL, "visitor_id": "NEW"}, grpc.StatusCode.NOT_FOUND),
        ("service", {"email": EMAIL}, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_vis03_identify_bad_input_changes_nothing(peers, tenant, role, fields, code):
    me, other = str(uuid.uuid4()), str(uuid.uuid4())
    await browse(peers, tenant, me, 1)
    await browse(peers, tenant, other, 1)
    fields = {**fields}
    if fields.get("visitor_id") == "OTHER":
        fields["visitor_id"] = other
    if fields.get("visitor_id") == "NEW":
        fields["visitor_id"] = str(uuid.uuid4())
    call = peers.visitors.IdentifyVisitor(
        pb.IdentifyVisitorRequest(**fields), metadata=auth(tenant, role, me if role == "visitor" else "svc")
    )
    assert await status_of(call) == code
    for visitor_id in (me, other):
        visitor = await peers.visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))
        assert visitor.email == "" and visitor.id == visitor_id


async def test_vis03_crm_bridge_away_identifies_anyway_and_the_facts_come_later(tenant):
    port = free_port()
    async with stack(with_crm=False, crm_addr=f"127.0.0.1:{port}") as s:
        visitor_id = str(uuid.uuid4())
        await browse(s, tenant, visitor_id, 1)
        visitor = await s.visitors.IdentifyVisitor(
            pb.IdentifyVisitorRequest(email=EMAIL), metadata=auth(tenant, "visitor", visitor_id)
        )
        assert (visitor.email, visitor.visitor_type, visitor.HasField("crm")) == (EMAIL, pb.VISITOR_TYPE_UNKNOWN, False)
        name = f"vcrm_{uuid.uuid4().hex[:8]}"
        crm = await ServiceRunner(crm_spec(schema=name, durable=name), Settings(), port=port, schema=name).start()
        try:
            async with channel_to(crm) as channel:
                # wait_for_ready: gRPC shares the connection (in back-off) the visitor service made.
                await CrmBridgeServiceStub(channel).UpsertRecord(
                    crm_pb.UpsertRecordRequest(email=EMAIL), metadata=auth(tenant, "admin", "a"), wait_for_ready=True, timeout=20
                )

            async def typed():
                v = await s.visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))
                return v if v.visitor_type == pb.VISITOR_TYPE_LEAD else None

            visitor = await eventually(typed, "CRM facts fetched once crm_bridge answers", timeout=30)
            assert visitor.crm.record_type == "lead" and visitor.lead_score == 5 + 1 + 15 + 10
        finally:
            with contextlib.suppress(Exception):
                await crm.stop(grace=1)
