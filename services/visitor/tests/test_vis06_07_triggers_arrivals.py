"""VIS-06 and VIS-07 through the gRPC API with the real crm_bridge: proactive triggers
(page pattern, CRM condition, time on the page; database timers; at most once per visit;
the widget's StreamPrompts and the agents' StreamArrivals) and live arrivals of known
leads and contacts (filtered by CRM owner), and the visitors on the site now."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm_pb
from kaiwa.routing.v1 import routing_pb2 as rpb
from kaiwa.visitor.v1 import visitor_pb2 as pb

from services.visitor.tests.stack import stack
from tests.fixtures import auth, events_of, eventually, status_of

PRICING = "https://shop.example.com/pricing"


@pytest.fixture(scope="module")
async def peers():
    async with stack() as s:
        yield s


def staff(tenant: str):
    return auth(tenant, "agent", "agent-1")


def admin(tenant: str):
    return auth(tenant, "admin", "root")


async def known(s, tenant: str, email: str, owner: str, record_type=crm_pb.RECORD_TYPE_LEAD, hours_ago: float = 0) -> str:
    """A visitor identified as a CRM record; its one page view `hours_ago`."""
    await s.crm.UpsertRecord(crm_pb.UpsertRecordRequest(type=record_type, email=email, owner=owner), metadata=admin(tenant))
    visitor_id = str(uuid.uuid4())
    await track(s, tenant, visitor_id, "https://shop.example.com/", hours_ago)
    await s.visitors.IdentifyVisitor(pb.IdentifyVisitorRequest(visitor_id=visitor_id, email=email), metadata=staff(tenant))
    return visitor_id


async def track(s, tenant: str, visitor_id: str, url: str, hours_ago: float = 0) -> None:
    event = pb.TrackedEvent(page_view=pb.TrackPageViewRequest(visitor_id=visitor_id, url=url))
    if hours_ago:
        when = Timestamp()
        when.FromDatetime(datetime.now(timezone.utc) - timedelta(hours=hours_ago))
        event.occurred_at.CopyFrom(when)

    async def requests():
        yield pb.TrackEventsRequest(events=[event])

    reply = await s.visitors.TrackEvents(requests(), metadata=auth(tenant, "service", "gateway"))
    assert reply.accepted == 1, reply


async def next_of(call, what: str, timeout: float = 15):
    try:
        return await asyncio.wait_for(call.read(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"never arrived within {timeout}s: {what}") from None


async def test_vis07_agents_hear_when_a_known_lead_or_contact_arrives(peers, tenant):
    s = peers
    contact = await known(s, tenant, "c@example.com", "owner2@example.com", crm_pb.RECORD_TYPE_CONTACT)  # on the site now
    lead = await known(s, tenant, "l@example.com", "owner1@example.com", hours_ago=3)  # visited 3 hours ago
    everyone = s.visitors.StreamArrivals(pb.StreamArrivalsRequest(), metadata=staff(tenant))
    owner2 = s.visitors.StreamArrivals(pb.StreamArrivalsRequest(owner="Owner2@example.com"), metadata=staff(tenant))
    try:
        for stream in (everyone, owner2):
            initial = await next_of(stream, "the contact on the site now")
            assert (initial.initial, initial.kind, initial.visit.visitor.id) == (True, pb.ARRIVAL_KIND_ARRIVED, contact)
            assert initial.visit.visitor.crm.owner == "owner2@example.com"
        await track(s, tenant, lead, f"{PRICING}?plan=pro")  # a new visit: the lead arrives
        arrival = await next_of(everyone, "the lead's arrival")
        assert (arrival.initial, arrival.visit.visitor.id, arrival.visit.current_url) == (False, lead, f"{PRICING}?plan=pro")
        assert arrival.visit.visitor.visitor_type == pb.VISITOR_TYPE_LEAD
        second = await known(s, tenant, "c2@example.com", "owner2@example.com", crm_pb.RECORD_TYPE_CONTACT, hours_ago=2)
        await track(s, tenant, second, "https://shop.example.com/docs")
        assert (await next_of(owner2, "owner2's next contact")).visit.visitor.id == second  # the lead never came
        online = await s.visitors.ListOnlineVisitors(pb.ListOnlineVisitorsRequest(), metadata=staff(tenant))
        assert {v.visitor.id for v in online.visits} == {contact, lead, second}
    finally:
        everyone.cancel()
        owner2.cancel()
    assert await status_of(
        s.visitors.ListOnlineVisitors(pb.ListOnlineVisitorsRequest(window_seconds=7200), metadata=staff(tenant))
    ) == (grpc.StatusCode.INVALID_ARGUMENT)


async def test_vis06_a_trigger_opens_the_chat_once_per_visit_for_matching_visitors(peers, tenant):
    s = peers
    trigger = await s.visitors.UpsertTrigger(
        pb.Trigger(
            name="pricing help",
            enabled=True,
            page_pattern=f"{PRICING}*",
            conditions=[rpb.Condition(field="visitor_type", op=rpb.OPERATOR_EQUALS, value="lead")],
            delay_seconds=1,
            action=pb.TRIGGER_ACTION_OPEN_CHAT,
            message="料金についてご質問はありますか?",
            request_id="t-1",
        ),
        metadata=admin(tenant),
    )
    again = await s.visitors.UpsertTrigger(
        pb.Trigger(
            name="pricing help", enabled=True, page_pattern=f"{PRICING}*", delay_seconds=1, action=pb.TRIGGER_ACTION_OPEN_CHAT,
            message="料金についてご質問はありますか?", request_id="t-1",
            conditions=[rpb.Condition(field="visitor_type", op=rpb.OPERATOR_EQUALS, value="lead")],
        ),
        metadata=admin(tenant),
    )  # fmt: skip
    assert again.id == trigger.id
    notify = await s.visitors.UpsertTrigger(
        pb.Trigger(
            name="docs",
            enabled=True,
            page_pattern="*/docs",
            delay_seconds=1,
            action=pb.TRIGGER_ACTION_NOTIFY_AGENT,
            agent_id="agent-9",
        ),
        metadata=admin(tenant),
    )
    lead = await known(s, tenant, "prospect@example.com", "o@example.com")
    anonymous = str(uuid.uuid4())
    prompts = s.visitors.StreamPrompts(pb.StreamPromptsRequest(), metadata=auth(tenant, "visitor", lead))
    agents = s.visitors.StreamArrivals(pb.StreamArrivalsRequest(), metadata=staff(tenant))
    try:
        async with events_of(tenant, "visitor", "trigger_fired") as fired:
            initial = await next_of(agents, "the lead on the site now")  # the stream is listening
            assert (initial.initial, initial.visit.visitor.id) == (True, lead)
            await track(s, tenant, anonymous, PRICING)  # no CRM record: the condition does not hold
            await track(s, tenant, lead, PRICING)
            prompt = await next_of(prompts, "the open_chat prompt")
            assert (prompt.trigger_id, prompt.message, prompt.url) == (trigger.id, "料金についてご質問はありますか?", PRICING)
            await track(s, tenant, lead, f"{PRICING}#faq")  # the same trigger, same visit: never again
            await track(s, tenant, lead, "https://shop.example.com/docs")
            told = await next_of(agents, "the notify_agent trigger")
            assert (told.kind, told.trigger_id, told.agent_id, told.visit.visitor.id) == (
                pb.ARRIVAL_KIND_NOTIFY,
                notify.id,
                "agent-9",
                lead,
            )
            await eventually(lambda: len(fired) >= 2, "trigger_fired events")
            assert sorted((e.trigger_fired.trigger_id, e.trigger_fired.visitor_id) for e in fired) == sorted(
                [(trigger.id, lead), (notify.id, lead)]
            )
            assert fired[0].trigger_fired.action in ("open_chat", "notify_agent")
    finally:
        prompts.cancel()
        agents.cancel()


async def test_vis06_leaving_the_page_before_the_delay_fires_nothing(peers, tenant):
    s = peers
    slow = await s.visitors.UpsertTrigger(
        pb.Trigger(name="slow", enabled=True, page_pattern=f"{PRICING}*", delay_seconds=1, action=pb.TRIGGER_ACTION_NOTIFY_AGENT),
        metadata=admin(tenant),
    )
    later = await s.visitors.UpsertTrigger(
        pb.Trigger(name="later", enabled=True, page_pattern="*/contact", delay_seconds=2, action=pb.TRIGGER_ACTION_NOTIFY_AGENT),
        metadata=admin(tenant),
    )
    visitor_id = str(uuid.uuid4())
    async with events_of(tenant, "visitor", "trigger_fired") as fired:
        await track(s, tenant, visitor_id, PRICING)
        await track(s, tenant, visitor_id, "https://shop.example.com/contact")  # gone before 1 s
        await eventually(lambda: fired, "the later trigger fired")
    assert [e.trigger_fired.trigger_id for e in fired] == [later.id] and slow.id != later.id
    listed = await s.visitors.ListTriggers(pb.ListTriggersRequest(), metadata=staff(tenant))
    assert {t.name for t in listed.triggers} == {"slow", "later"}
    await s.visitors.DeleteTrigger(pb.DeleteTriggerRequest(trigger_id=slow.id), metadata=admin(tenant))
    assert (
        await status_of(s.visitors.DeleteTrigger(pb.DeleteTriggerRequest(trigger_id=slow.id), metadata=admin(tenant)))
        == grpc.StatusCode.NOT_FOUND
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"page_pattern": "", "action": pb.TRIGGER_ACTION_NOTIFY_AGENT},
        {"page_pattern": "*", "action": pb.TRIGGER_ACTION_OPEN_CHAT},  # open_chat needs a message
        {"page_pattern": "*", "action": pb.TRIGGER_ACTION_UNSPECIFIED},
        {"page_pattern": "*", "action": pb.TRIGGER_ACTION_NOTIFY_AGENT, "delay_seconds": 4000},
        {
            "page_pattern": "*",
            "action": pb.TRIGGER_ACTION_NOTIFY_AGENT,
            "conditions": [rpb.Condition(field="x", op=rpb.OPERATOR_EQUALS, value="1")],
        },
    ],
)
async def test_vis06_bad_triggers_are_refused(peers, tenant, fields):
    call = peers.visitors.UpsertTrigger(pb.Trigger(name="t", enabled=True, **fields), metadata=admin(tenant))
    assert await status_of(call) == grpc.StatusCode.INVALID_ARGUMENT
    assert not (await peers.visitors.ListTriggers(pb.ListTriggersRequest(), metadata=admin(tenant))).triggers
