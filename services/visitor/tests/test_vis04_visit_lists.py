"""VIS-04 and ROUT-04 through the gRPC API, with the real routing (priority rules) and
crm_bridge (records): visit lists (all, today, top, today's top, leads, contacts) ordered
by the tenant's visitor-prioritisation rules, then lead score, with stable cursors."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm_pb
from kaiwa.routing.v1 import routing_pb2 as rpb
from kaiwa.visitor.v1 import visitor_pb2 as pb

from services.visitor.tests.stack import stack
from tests.fixtures import auth, status_of


@pytest.fixture(scope="module")
async def peers():
    async with stack(with_routing=True) as s:
        yield s


def staff(tenant: str):
    return auth(tenant, "agent", "agent-1")


def admin(tenant: str):
    return auth(tenant, "admin", "root")


async def visitor(s, tenant: str, pages: int, email: str = "") -> str:
    visitor_id = str(uuid.uuid4())
    me = auth(tenant, "visitor", visitor_id)
    for i in range(pages):
        await s.visitors.TrackPageView(pb.TrackPageViewRequest(url=f"https://example.com/{i}"), metadata=me)
    if email:
        await s.visitors.IdentifyVisitor(pb.IdentifyVisitorRequest(email=email), metadata=me)
    return visitor_id


async def listed(s, tenant: str, which, page_size: int = 0) -> list[str]:
    ids, token = [], ""
    while True:
        reply = await s.visitors.ListVisits(
            pb.ListVisitsRequest(list=which, page_size=page_size, page_token=token), metadata=staff(tenant)
        )
        ids += [v.visitor.id for v in reply.visits]
        token = reply.next_page_token
        if not token:
            return ids


async def test_vis04_lists_follow_the_priority_rules_then_the_lead_score(peers, tenant):
    s = peers
    await s.crm.UpsertRecord(
        crm_pb.UpsertRecordRequest(email="lead@acme.example", fields={"company": "ACME Japan"}), metadata=admin(tenant)
    )
    deal = crm_pb.Deal(name="renewal", stage="Negotiation", amount=10000, open=True)
    await s.crm.UpsertRecord(
        crm_pb.UpsertRecordRequest(type=crm_pb.RECORD_TYPE_CONTACT, email="buyer@big.example", deals=[deal]),
        metadata=admin(tenant),
    )
    for order, field, op, value in [
        (1, "lead.company", rpb.OPERATOR_CONTAINS, "acme"),
        (2, "deals.open_amount", rpb.OPERATOR_AT_LEAST, "5000"),
    ]:
        await s.routing.UpsertRule(
            rpb.Rule(
                kind=rpb.RULE_KIND_PRIORITY,
                name=f"p{order}",
                order=order,
                conditions=[rpb.Condition(field=field, op=op, value=value)],
            ),
            metadata=admin(tenant),
        )
    browser = await visitor(s, tenant, 20)  # 5 + 20 = 25
    acme = await visitor(s, tenant, 1, "lead@acme.example")  # 5 + 1 + 15 + 10 = 31, rule 1
    buyer = await visitor(s, tenant, 1, "buyer@big.example")  # 5 + 1 + 15 + 30 = 51, rule 2
    passer = await visitor(s, tenant, 1)  # 6

    first = await s.visitors.ListVisits(pb.ListVisitsRequest(page_size=2), metadata=staff(tenant))
    assert [(v.visitor.id, v.priority) for v in first.visits] == [(acme, 1), (buyer, 2)]
    assert first.visits[1].visitor.visitor_type == pb.VISITOR_TYPE_DEAL and first.visits[0].visitor.lead_score == 31
    late = await visitor(s, tenant, 1)  # a visit started between two pages never repeats or shifts them
    second = await s.visitors.ListVisits(
        pb.ListVisitsRequest(page_size=2, page_token=first.next_page_token), metadata=staff(tenant)
    )
    assert [v.visitor.id for v in second.visits] == [browser, late] and second.next_page_token
    third = await s.visitors.ListVisits(
        pb.ListVisitsRequest(page_size=2, page_token=second.next_page_token), metadata=staff(tenant)
    )
    assert [v.visitor.id for v in third.visits] == [passer] and not third.next_page_token

    assert await listed(s, tenant, pb.VISIT_LIST_LEADS) == [acme]
    assert await listed(s, tenant, pb.VISIT_LIST_CONTACTS) == [buyer]
    assert await listed(s, tenant, pb.VISIT_LIST_TOP) == [buyer]  # top: lead score >= 50 by default
    await s.visitors.UpdateTrackingSettings(pb.TrackingSettings(top_lead_score=25), metadata=admin(tenant))
    assert await listed(s, tenant, pb.VISIT_LIST_TODAY_TOP, page_size=1) == [acme, buyer, browser]

    # A rule changed in routing re-orders the list (rules are read again, priorities recomputed).
    rules = (await s.routing.ListRules(rpb.ListRulesRequest(), metadata=admin(tenant))).rules
    for rule in rules:
        await s.routing.DeleteRule(rpb.DeleteRuleRequest(rule_id=rule.id), metadata=admin(tenant))
    # Equal scores: the newest visit first.
    assert await listed(s, tenant, pb.VISIT_LIST_ALL) == [buyer, acme, browser, late, passer]


async def test_vis04_today_is_the_tenants_day(peers, tenant):
    s = peers
    now = datetime.now(timezone.utc)
    zone = "UTC" if now.hour < 22 else "Etc/GMT+3"  # a zone where it is not yet 22:00, so 23 hours ago was yesterday
    assert now.astimezone(ZoneInfo(zone)).hour < 22
    await s.visitors.UpdateTrackingSettings(pb.TrackingSettings(time_zone=zone), metadata=admin(tenant))
    yesterday_id, today_id = str(uuid.uuid4()), str(uuid.uuid4())
    when = Timestamp()
    when.FromDatetime(now - timedelta(hours=23))

    async def requests():
        events = [
            pb.TrackedEvent(
                page_view=pb.TrackPageViewRequest(visitor_id=yesterday_id, url="https://example.com/"), occurred_at=when
            )
        ]
        events.append(pb.TrackedEvent(page_view=pb.TrackPageViewRequest(visitor_id=today_id, url="https://example.com/")))
        yield pb.TrackEventsRequest(events=events)

    assert (await s.visitors.TrackEvents(requests(), metadata=auth(tenant, "service", "gw"))).accepted == 2
    assert await listed(s, tenant, pb.VISIT_LIST_TODAY) == [today_id]
    assert set(await listed(s, tenant, pb.VISIT_LIST_ALL)) == {today_id, yesterday_id}


async def test_vis04_bad_paging_and_settings_are_refused(peers, tenant):
    s = peers
    for request in (pb.ListVisitsRequest(page_token="garbage"), pb.ListVisitsRequest(page_size=-1)):
        assert await status_of(s.visitors.ListVisits(request, metadata=staff(tenant))) == grpc.StatusCode.INVALID_ARGUMENT
    for settings in (
        pb.TrackingSettings(time_zone="Mars/Olympus"),
        pb.TrackingSettings(visit_timeout_minutes=5000),
        pb.TrackingSettings(top_lead_score=101),
    ):
        assert (
            await status_of(s.visitors.UpdateTrackingSettings(settings, metadata=admin(tenant)))
            == grpc.StatusCode.INVALID_ARGUMENT
        )
    assert (
        await status_of(s.visitors.UpdateTrackingSettings(pb.TrackingSettings(), metadata=staff(tenant)))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await s.visitors.GetTrackingSettings(pb.GetTrackingSettingsRequest(), metadata=staff(tenant))
    ).visit_timeout_minutes == 30
