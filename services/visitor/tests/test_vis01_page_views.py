"""VIS-01: page views, visitors and visits (landing page, 30-minute visits), through the gRPC
API against real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from kaiwa.visitor.v1 import visitor_pb2 as pb
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

from kaiwa_visitor.main import SPEC
from tests.fixtures import auth, channel_to, events_of, running, status_of

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


@pytest.fixture(scope="module")
async def visitors():
    async with running(SPEC) as runner, channel_to(runner) as channel:
        yield VisitorServiceStub(channel)


@pytest.fixture
async def page_events(tenant):
    async with events_of(tenant, "visitor", "page_viewed") as seen:
        yield seen


def staff(tenant: str):
    return auth(tenant, "agent", "agent-1")


async def test_vis01_page_views_make_a_visitor_with_a_landing_page(visitors, tenant, page_events):
    visitor_id = str(uuid.uuid4())
    gateway = auth(tenant, "service", "gateway")  # a service passes the visitor's address
    first = await visitors.TrackPageView(
        pb.TrackPageViewRequest(
            visitor_id=visitor_id,
            url="https://shop.example.co.jp/?utm_source=mail",
            title="  トップ | Example  ",
            referrer="https://www.google.co.jp/search?q=example",
            user_agent=UA,
            ip="203.0.113.7",
        ),
        metadata=gateway,
    )
    second = await visitors.TrackPageView(
        pb.TrackPageViewRequest(
            visitor_id=visitor_id, url="https://shop.example.co.jp/pricing", title="Pricing", ip="2001:db8::1"
        ),
        metadata=gateway,
    )

    assert first.landing and not second.landing
    assert first.visit_id == second.visit_id
    assert (first.url, first.title, first.referrer, first.user_agent, first.ip) == (
        "https://shop.example.co.jp/?utm_source=mail",
        "トップ | Example",
        "https://www.google.co.jp/search?q=example",
        UA,
        "203.0.113.7",
    )
    assert second.visitor_id == visitor_id and second.ip == "2001:db8::1"
    assert second.viewed_at.ToDatetime() >= first.viewed_at.ToDatetime()

    visitor = await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))
    assert (visitor.id, visitor.visit_count, visitor.page_view_count) == (visitor_id, 1, 2)
    assert visitor.first_seen_at == first.viewed_at and visitor.last_seen_at == second.viewed_at
    assert [v.id for v in visitor.recent_page_views] == [second.id, first.id]  # newest first
    # The first page's time on page is known once the second is viewed: the gap between them.
    stored_first = visitor.recent_page_views[1]
    gap = (second.viewed_at.ToDatetime() - first.viewed_at.ToDatetime()).total_seconds()
    assert abs(stored_first.time_on_page_seconds - gap) < 1
    stored_first.time_on_page_seconds = first.time_on_page_seconds
    assert stored_first == first

    for _ in range(100):
        if len(page_events) >= 2:
            break
        await asyncio.sleep(0.05)
    viewed = sorted((e.page_viewed for e in page_events), key=lambda p: not p.landing)
    assert [(p.page_view_id, p.landing, p.visit_id, p.visitor_id) for p in viewed] == [
        (first.id, True, first.visit_id, visitor_id),
        (second.id, False, first.visit_id, visitor_id),
    ]
    assert viewed[0].referrer == first.referrer and viewed[1].title == "Pricing"


async def test_vis01_visitor_is_tracked_with_its_connection_address_never_one_it_sets(visitors, tenant):
    visitor_id = str(uuid.uuid4())
    me = auth(tenant, "visitor", visitor_id)
    view = await visitors.TrackPageView(pb.TrackPageViewRequest(url="http://example.com/a"), metadata=me)  # id from the token
    assert view.ip == "127.0.0.1" and view.visitor_id == visitor_id
    assert view.referrer == "" and view.title == ""
    view = await visitors.TrackPageView(pb.TrackPageViewRequest(url="http://example.com/b", ip="198.51.100.1"), metadata=me)
    assert view.ip == "127.0.0.1"  # an address the visitor sets is ignored
    # Through a proxy that is not trusted (KAIWA_TRUSTED_PROXIES is empty), X-Forwarded-For is ignored.
    forwarded = (*me, ("x-forwarded-for", "198.51.100.1"))
    view = await visitors.TrackPageView(pb.TrackPageViewRequest(url="http://example.com/c"), metadata=forwarded)
    assert view.ip == "127.0.0.1"


async def test_vis01_concurrent_first_page_views_make_one_visit(visitors, tenant):
    visitor_id = str(uuid.uuid4())
    views = await asyncio.gather(
        *(
            visitors.TrackPageView(
                pb.TrackPageViewRequest(visitor_id=visitor_id, url=f"https://example.com/{i}"),
                metadata=auth(tenant, "service", "gateway"),
            )
            for i in range(10)
        )
    )
    assert sum(v.landing for v in views) == 1
    assert len({v.visit_id for v in views}) == 1
    visitor = await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))
    assert (visitor.visit_count, visitor.page_view_count) == (1, 10)


async def test_vis01_visit_ends_after_inactivity(tenant, monkeypatch):
    # The rule is "30 minutes without a page view"; a 2-second limit exercises it quickly.
    monkeypatch.setenv("KAIWA_VISIT_TIMEOUT", "2")
    async with running(SPEC) as runner, channel_to(runner) as channel:
        visitors = VisitorServiceStub(channel)
        visitor_id = str(uuid.uuid4())
        me = auth(tenant, "visitor", visitor_id)
        track = lambda path: visitors.TrackPageView(
            pb.TrackPageViewRequest(visitor_id=visitor_id, url=f"https://example.com/{path}"), metadata=me
        )
        first, second = await track("home"), await track("docs")
        await asyncio.sleep(2.2)
        third = await track("blog")
        assert (first.landing, second.landing, third.landing) == (True, False, True)
        assert first.visit_id == second.visit_id != third.visit_id
        visitor = await visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))
        assert (visitor.visit_count, visitor.page_view_count) == (2, 3)
        assert visitor.first_seen_at == first.viewed_at and visitor.last_seen_at == third.viewed_at


async def test_vis01_only_the_visitor_itself_or_a_service_may_track(visitors, tenant):
    visitor_id, someone_else = str(uuid.uuid4()), str(uuid.uuid4())
    request = pb.TrackPageViewRequest(visitor_id=someone_else, url="https://example.com/")
    code = await status_of(visitors.TrackPageView(request, metadata=auth(tenant, "visitor", visitor_id)))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert (
        await status_of(visitors.TrackPageView(request, metadata=auth(tenant, "agent", "a"))) == grpc.StatusCode.PERMISSION_DENIED
    )
    assert await status_of(visitors.TrackPageView(request)) == grpc.StatusCode.UNAUTHENTICATED
    assert (
        await status_of(visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=someone_else), metadata=staff(tenant)))
        == grpc.StatusCode.NOT_FOUND
    )
    view = await visitors.TrackPageView(request, metadata=auth(tenant, "service", "gateway"))
    assert view.visitor_id == someone_else


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"visitor_id": ""}, "visitor_id is required"),
        ({"visitor_id": "visitor-1"}, "visitor_id"),
        ({"url": ""}, "url is required"),
        ({"url": "example.com/page"}, "not an absolute http or https URL"),
        ({"url": "ftp://example.com/file"}, "not an absolute http or https URL"),
        ({"url": "javascript:alert(1)"}, "not an absolute http or https URL"),
        ({"url": "https://"}, "not an absolute http or https URL"),
        ({"url": "https://example.com/a page"}, "spaces"),
        ({"url": "https://example.com/" + "a" * 2048}, "url is longer"),
        ({"title": "t" * 513}, "title is longer"),
        ({"referrer": "search engine"}, "referrer"),
        ({"user_agent": "u" * 1025}, "user_agent is longer"),
        ({"ip": "999.1.1.1"}, "not an IPv4 or IPv6 address"),
        ({"ip": "localhost"}, "not an IPv4 or IPv6 address"),
    ],
)
async def test_vis01_track_page_view_bad_input_writes_nothing(visitors, tenant, fields, words):
    visitor_id = str(uuid.uuid4())
    values = {"visitor_id": visitor_id, "url": "https://example.com/", **fields}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await visitors.TrackPageView(pb.TrackPageViewRequest(**values), metadata=auth(tenant, "service", "gateway"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in err.value.details(), err.value.details()
    call = visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))
    assert await status_of(call) == grpc.StatusCode.NOT_FOUND


async def test_vis01_get_visitor_bad_input(visitors, tenant):
    for visitor_id, code in [
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("v-1", grpc.StatusCode.INVALID_ARGUMENT),
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
    ]:
        call = visitors.GetVisitor(pb.GetVisitorRequest(visitor_id=visitor_id), metadata=staff(tenant))
        assert await status_of(call) == code
