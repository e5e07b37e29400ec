"""VIS-01 and VIS-02 through the gRPC API against real PostgreSQL and NATS: page views
enriched once per visit (browser, OS, platform, location, search engine and keywords,
campaign, language, screen), visits split after the tenant's idle timeout, actions with
time on page, leave beacons, and the streaming path answering refused events by index."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from kaiwa.visitor.v1 import visitor_pb2 as pb
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

from kaiwa_visitor.main import SPEC
from tests.fixtures import auth, channel_to, events_of, eventually, running, status_of

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
TOKYO_IP = "210.138.184.59"  # in the embedded GeoLite2 City (2018): Tokyo, JP


@pytest.fixture(scope="module")
async def visitors():
    async with running(SPEC) as runner, channel_to(runner) as channel:
        yield VisitorServiceStub(channel)


def gateway(tenant: str):
    return auth(tenant, "service", "gateway")


def staff(tenant: str):
    return auth(tenant, "agent", "agent-1")


def stamp(when: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(when)
    return t


def view(visitor_id: str, url: str, when: datetime | None = None, **fields) -> pb.TrackedEvent:
    event = pb.TrackedEvent(page_view=pb.TrackPageViewRequest(visitor_id=visitor_id, url=url, **fields))
    if when is not None:
        event.occurred_at.CopyFrom(stamp(when))
    return event


async def stream(visitors, metadata, *messages: list[pb.TrackedEvent]) -> pb.TrackEventsResponse:
    async def requests():
        for events in messages:
            yield pb.TrackEventsRequest(events=events)

    return await visitors.TrackEvents(requests(), metadata=metadata)


async def test_vis02_a_visit_is_enriched_from_its_first_page_view(visitors, tenant):
    visitor_id = str(uuid.uuid4())
    async with events_of(tenant, "visitor", "page_viewed") as published:
        first = await visitors.TrackPageView(
            pb.TrackPageViewRequest(
                visitor_id=visitor_id,
                url="https://shop.example.co.jp/sale?utm_source=newsletter&utm_medium=email&utm_campaign=summer"
                "&utm_term=%E9%9D%B4&utm_content=banner",
                title="セール",
                referrer="https://www.google.co.jp/search?q=%E9%9D%B4+%E9%80%9A%E8%B2%A9&hl=ja",
                user_agent=IPHONE,
                ip=TOKYO_IP,
                language="ja-JP,ja;q=0.9,en;q=0.8",
                screen_width=390,
                screen_height=844,
            ),
            metadata=gateway(tenant),
        )
        await eventually(lambda: published, "page_viewed published")
    assert first.landing and first.action == pb.ACTION_KIND_ACCESS
    event = published[0].page_viewed
    assert (event.search_engine, event.search_keywords, event.ip, event.user_agent) == ("Google", "靴 通販", TOKYO_IP, IPHONE)

    visitor = await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))
    visit = visitor.current_visit
    assert visit.id == first.visit_id and visit.landing_url == first.url and visit.landing_title == "セール"
    assert (visit.client.browser, visit.client.browser_version, visit.client.os, visit.client.os_version) == (
        "Mobile Safari",
        "17.5",
        "iOS",
        "17.5",
    )
    assert (visit.client.platform, visit.client.device, visit.client.user_agent) == ("mobile", "iPhone", IPHONE)
    loc = visit.location
    assert (loc.country_code, loc.country, loc.region, loc.city, loc.postcode, loc.time_zone) == (
        "JP",
        "Japan",
        "Tokyo",
        "Tokyo",
        "102-0082",
        "Asia/Tokyo",
    )
    assert abs(loc.latitude - 35.685) < 0.01 and abs(loc.longitude - 139.7514) < 0.01
    assert (visit.search_engine, visit.search_keywords, visit.referrer) == ("Google", "靴 通販", first.referrer)
    c = visit.campaign
    assert (c.source, c.medium, c.name, c.term, c.content) == ("newsletter", "email", "summer", "靴", "banner")
    assert (visit.language, visit.screen_resolution, visit.ip) == ("ja-JP", "390x844", TOKYO_IP)

    # A later page of the same visit from elsewhere does not change the visit's enrichment.
    second = await visitors.TrackPageView(
        pb.TrackPageViewRequest(visitor_id=visitor_id, url="https://shop.example.co.jp/cart", user_agent=WINDOWS, ip="8.8.8.8"),
        metadata=gateway(tenant),
    )
    assert not second.landing and second.action == pb.ACTION_KIND_NAVIGATE and second.visit_id == first.visit_id
    visit = await visitors.GetVisit(pb.GetVisitRequest(visit_id=first.visit_id), metadata=staff(tenant))
    assert (visit.client.os, visit.location.city, visit.current_url, visit.page_view_count) == ("iOS", "Tokyo", second.url, 2)
    assert [(a.kind, a.url) for a in visit.actions] == [
        (pb.ACTION_KIND_ACCESS, first.url),
        (pb.ACTION_KIND_NAVIGATE, second.url),
    ]


async def test_vis02_addresses_outside_the_database_and_unknown_agents_leave_fields_empty(visitors, tenant):
    visitor_id = str(uuid.uuid4())
    await visitors.TrackPageView(
        pb.TrackPageViewRequest(
            visitor_id=visitor_id, url="https://example.com/", ip="192.0.2.10", user_agent="no agent we know"
        ),
        metadata=gateway(tenant),
    )
    visit = (await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))).current_visit
    assert not visit.HasField("location") and visit.ip == "192.0.2.10"
    assert (visit.search_engine, visit.campaign.source, visit.language, visit.screen_resolution) == ("", "", "", "")
    assert visit.client.browser == "" and visit.client.user_agent == "no agent we know"


async def test_vis01_stream_answers_refused_events_by_index_and_keeps_the_good_ones(visitors, tenant):
    now = datetime.now(timezone.utc)
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    good = [view(alice, f"https://example.com/a/{i}", now - timedelta(minutes=10) + timedelta(seconds=i)) for i in range(300)]
    first = good[:150]
    first[7] = view(alice, "not-a-url")  # index 7
    first[20] = view(alice, "https://example.com/x", ip="999.1.1.1")  # index 20
    second = [view(bob, f"https://example.com/b/{i}", now - timedelta(minutes=5)) for i in range(100)]
    second[0] = view(bob, "https://example.com/future", now + timedelta(hours=1))  # index 150
    second[1] = view(bob, "https://example.com/old", now - timedelta(days=3))  # index 151
    second[2] = view("someone", "https://example.com/")  # index 152
    second[3] = pb.TrackedEvent(
        kind=pb.TRACKED_EVENT_KIND_LEAVE, leave=pb.TrackLeaveRequest(visitor_id=bob, page_view_id=str(uuid.uuid4()))
    )
    reply = await stream(visitors, gateway(tenant), first, second)
    assert [(e.index, e.code) for e in reply.errors] == [
        (7, "INVALID_ARGUMENT"),
        (20, "INVALID_ARGUMENT"),
        (150, "INVALID_ARGUMENT"),
        (151, "INVALID_ARGUMENT"),
        (152, "INVALID_ARGUMENT"),
        (153, "NOT_FOUND"),
    ]
    assert "not an absolute" in reply.errors[0].message and "in the future" in reply.errors[2].message
    assert reply.accepted == 250 - 6
    a = await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=alice), metadata=staff(tenant))
    b = await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=bob), metadata=staff(tenant))
    assert (a.page_view_count, a.visit_count, b.page_view_count, b.visit_count) == (148, 1, 96, 1)
    assert a.first_seen_at.ToDatetime(tzinfo=timezone.utc) == now.replace(microsecond=now.microsecond) - timedelta(minutes=10)


async def test_vis01_visits_split_after_the_tenants_idle_timeout_with_time_on_page(visitors, tenant):
    t0 = datetime.now(timezone.utc) - timedelta(hours=2)
    visitor_id = str(uuid.uuid4())
    times = [t0, t0 + timedelta(minutes=10), t0 + timedelta(minutes=45), t0 + timedelta(minutes=50)]
    reply = await stream(
        visitors, gateway(tenant), [view(visitor_id, f"https://example.com/{i}", t) for i, t in enumerate(times)]
    )
    assert reply.accepted == 4 and not reply.errors
    visitor = await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))
    assert (visitor.visit_count, visitor.page_view_count, visitor.time_spent_seconds) == (2, 4, 15 * 60)
    newest_first = list(visitor.recent_page_views)
    assert [v.landing for v in newest_first] == [False, True, False, True]
    assert [v.time_on_page_seconds for v in newest_first] == [0, 300, 0, 600]
    assert newest_first[0].visit_id == newest_first[1].visit_id != newest_first[2].visit_id

    # A tenant with a 5-minute idle timeout: 6 minutes apart is two visits.
    await visitors.UpdateTrackingSettings(pb.TrackingSettings(visit_timeout_minutes=5), metadata=auth(tenant, "admin", "a"))
    other = str(uuid.uuid4())
    await stream(
        visitors,
        gateway(tenant),
        [view(other, "https://example.com/p", t0), view(other, "https://example.com/q", t0 + timedelta(minutes=6))],
    )
    assert (await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=other), metadata=staff(tenant))).visit_count == 2
    # An event older than the current visit by more than the timeout is refused as late.
    reply = await stream(visitors, gateway(tenant), [view(other, "https://example.com/r", t0 - timedelta(minutes=20))])
    assert [(e.index, e.code) for e in reply.errors] == [(0, "FAILED_PRECONDITION")]


async def test_vis01_leave_beacon_ends_the_time_on_page(visitors, tenant):
    visitor_id = str(uuid.uuid4())
    me = auth(tenant, "visitor", visitor_id)
    page = await visitors.TrackPageView(pb.TrackPageViewRequest(url="https://example.com/pricing"), metadata=me)
    left = await visitors.TrackLeave(pb.TrackLeaveRequest(), metadata=me)  # the last page view
    assert left.id == page.id and left.time_on_page_seconds >= 0
    visit = await visitors.GetVisit(pb.GetVisitRequest(visit_id=page.visit_id), metadata=staff(tenant))
    assert visit.HasField("left_at")
    online = await visitors.ListOnlineVisitors(pb.ListOnlineVisitorsRequest(), metadata=staff(tenant))
    assert [v.id for v in online.visits] == []  # left the site
    again = await visitors.TrackPageView(pb.TrackPageViewRequest(url="https://example.com/buy"), metadata=me)
    online = await visitors.ListOnlineVisitors(pb.ListOnlineVisitorsRequest(), metadata=staff(tenant))
    assert [(v.id, v.current_url, v.visitor.id) for v in online.visits] == [(again.visit_id, again.url, visitor_id)]


async def test_vis01_visitors_stream_only_their_own_events_undated_from_their_own_address(visitors, tenant):
    me, other = str(uuid.uuid4()), str(uuid.uuid4())
    reply = await stream(
        visitors,
        auth(tenant, "visitor", me),
        [
            view("", "https://example.com/mine"),
            view(other, "https://example.com/theirs"),
            view(me, "https://example.com/ip", ip="198.51.100.9"),
            view(me, "https://example.com/dated", datetime.now(timezone.utc)),
        ],
    )
    assert reply.accepted == 2
    assert [(e.index, e.code) for e in reply.errors] == [(1, "PERMISSION_DENIED"), (3, "PERMISSION_DENIED")]
    mine = await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=me), metadata=staff(tenant))
    assert {v.ip for v in mine.recent_page_views} == {"127.0.0.1"}  # never the address it set
    assert (
        await status_of(visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=other), metadata=staff(tenant)))
        == grpc.StatusCode.NOT_FOUND
    )


async def test_vis01_another_tenants_visitor_and_page_views_are_not_found(visitors, tenant):
    visitor_id = str(uuid.uuid4())
    page = await visitors.TrackPageView(
        pb.TrackPageViewRequest(visitor_id=visitor_id, url="https://example.com/"), metadata=gateway(tenant)
    )
    elsewhere = f"{tenant}-other"
    assert (
        await status_of(visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(elsewhere)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await status_of(visitors.GetVisit(pb.GetVisitRequest(visit_id=page.visit_id), metadata=staff(elsewhere)))
        == grpc.StatusCode.NOT_FOUND
    )
    leave = pb.TrackLeaveRequest(visitor_id=visitor_id, page_view_id=page.id)
    assert await status_of(visitors.TrackLeave(leave, metadata=gateway(elsewhere))) == grpc.StatusCode.NOT_FOUND
    bad = pb.TrackedEvent(kind=pb.TRACKED_EVENT_KIND_LEAVE, leave=pb.TrackLeaveRequest(visitor_id=visitor_id, page_view_id="x"))
    reply = await stream(visitors, gateway(tenant), [bad])
    assert [(e.index, e.code) for e in reply.errors] == [(0, "INVALID_ARGUMENT")]
