"""VIS-03 / CRM-08: a visitor identified by e-mail (a web-form submission carrying the
tracking id, or the visitor in the chat) gets its visits recorded on the matching CRM
record: the page views it made before (the visitor service's GetVisitor), including a
merged visitor's, and every page view after; replaying visitor_identified changes
nothing. (The real visitor and conversation services in this process.)"""

from __future__ import annotations

import uuid

import pytest
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1 import settings_pb2 as spb
from kaiwa.events.v1.visitor_pb2 import VisitorIdentified
from kaiwa.visitor.v1 import visitor_pb2 as vpb

from kaiwa_common.config import Settings
from kaiwa_common.events import subject
from services.crm_bridge.tests.kit import admin, agent, stack
from tests.fixtures import auth, eventually, events_of

GOOGLE = "https://www.google.co.jp/search?q=%E6%96%99%E9%87%91"


@pytest.fixture(scope="module")
async def services():
    async with stack(with_visitor=True) as running_stack:
        yield running_stack


async def browse(services, tenant, visitor_id, urls, referrer=""):
    service = auth(tenant, "service", "widget-gateway")
    for url in urls:
        await services.visitor.TrackPageView(
            vpb.TrackPageViewRequest(
                visitor_id=visitor_id,
                url=url,
                title=url.rsplit("/", 1)[-1],
                referrer=referrer,
                ip="203.0.113.9",
                user_agent="UA/1",
            ),
            metadata=service,
        )
        referrer = url


async def visits_of(crm, tenant, record_id):
    return list((await crm.stub.ListVisits(pb.ListVisitsRequest(record_id=record_id), metadata=agent(tenant))).visits)


async def test_vis03_crm08_an_identified_visitors_page_views_become_visits(services, tenant):
    crm = services.crm
    record = await crm.stub.UpsertRecord(
        pb.UpsertRecordRequest(email="hanako@example.com", type=pb.RECORD_TYPE_CONTACT, name="Yamada Hanako"),
        metadata=admin(tenant),
    )
    laptop, phone = str(uuid.uuid4()), str(uuid.uuid4())
    await browse(services, tenant, laptop, ["https://shop.example.jp/", "https://shop.example.jp/pricing"], GOOGLE)
    await browse(services, tenant, phone, ["https://shop.example.jp/m/contact"])
    async with events_of(tenant, "visitor", "visitor_identified") as identified:
        # A CRM web form carrying the tracking id (a service), then the same person in the
        # chat on their phone: the phone's visitor is merged into the laptop's.
        await services.visitor.IdentifyVisitor(
            vpb.IdentifyVisitorRequest(visitor_id=laptop, email="Hanako@Example.com", name="Yamada Hanako"),
            metadata=auth(tenant, "service", "web-forms"),
        )
        await services.visitor.IdentifyVisitor(
            vpb.IdentifyVisitorRequest(email="hanako@example.com"), metadata=auth(tenant, "visitor", phone)
        )
        events = await eventually(lambda: len(identified) == 2 and list(identified), "two visitor_identified events")
    for event in events:
        await eventually(lambda e=event: crm.processed(e), "visitor_identified taken by the CRM bridge")

    visits = sorted(await visits_of(crm, tenant, record.id), key=lambda v: len(v.pages))
    assert [list(v.pages) for v in visits] == [
        ["https://shop.example.jp/m/contact"],
        ["https://shop.example.jp/", "https://shop.example.jp/pricing"],
    ]
    on_laptop = visits[1]
    assert (on_laptop.ip, on_laptop.user_agent, on_laptop.referrer, on_laptop.visitor_type) == (
        "203.0.113.9",
        "UA/1",
        GOOGLE,
        "contact",
    )
    assert (on_laptop.search_engine, on_laptop.search_keywords) == ("Google", "料金")

    # Known from now on: a later page view (on either id) is recorded too.
    await browse(services, tenant, phone, ["https://shop.example.jp/m/thanks"])

    async def thanks():
        pages = [p for v in await visits_of(crm, tenant, record.id) for p in v.pages]
        return "https://shop.example.jp/m/thanks" in pages and pages

    pages = await eventually(thanks, "the page view after identification")
    assert sorted(pages) == sorted(
        [
            "https://shop.example.jp/",
            "https://shop.example.jp/pricing",
            "https://shop.example.jp/m/contact",
            "https://shop.example.jp/m/thanks",
        ]
    )

    # Replaying visitor_identified (a consumer reset) records nothing twice.
    before = [(v.visit_id, list(v.pages)) for v in await visits_of(crm, tenant, record.id)]
    for event in events:
        replay = await crm.runner.ctx.js.publish(
            subject(Settings().subject_prefix, "visitor", "visitor_identified"),
            event.SerializeToString(),
            headers={"Nats-Msg-Id": str(uuid.uuid4())},
        )
        assert replay.seq
    # The same visitor identified again (a new event): its pages are already there.
    again = await crm.publish("visitor", tenant, VisitorIdentified(visitor_id=laptop, email="hanako@example.com"))
    await eventually(lambda: crm.processed(again), "the later visitor_identified")
    assert sorted((v.visit_id, list(v.pages)) for v in await visits_of(crm, tenant, record.id)) == sorted(before)


async def test_vis03_crm08_no_record_or_visits_off_records_nothing(services, tenant):
    crm = services.crm
    stranger = str(uuid.uuid4())
    await browse(services, tenant, stranger, ["https://shop.example.jp/a"])
    async with events_of(tenant, "visitor", "visitor_identified") as identified:
        await services.visitor.IdentifyVisitor(
            vpb.IdentifyVisitorRequest(visitor_id=stranger, email="nobody@example.com"),
            metadata=auth(tenant, "service", "web-forms"),
        )
        [event] = await eventually(lambda: list(identified), "visitor_identified")
    await eventually(lambda: crm.processed(event), "visitor_identified taken")
    count = await crm.runner.ctx.pool.fetchval("SELECT count(*) FROM records WHERE tenant = $1", tenant)
    assert count == 0  # identification alone adds no record

    settings = await crm.stub.GetCrmSettings(spb.GetCrmSettingsRequest(), metadata=admin(tenant))
    settings.write_visits = False
    await crm.stub.UpdateCrmSettings(settings, metadata=admin(tenant))
    record = await crm.stub.UpsertRecord(pb.UpsertRecordRequest(email="off@example.com"), metadata=admin(tenant))
    quiet = str(uuid.uuid4())
    await browse(services, tenant, quiet, ["https://shop.example.jp/b"])
    async with events_of(tenant, "visitor", "visitor_identified") as identified:
        await services.visitor.IdentifyVisitor(
            vpb.IdentifyVisitorRequest(visitor_id=quiet, email="off@example.com"), metadata=auth(tenant, "service", "web-forms")
        )
        [event] = await eventually(lambda: list(identified), "visitor_identified")
    await eventually(lambda: crm.processed(event), "visitor_identified taken")
    assert await visits_of(crm, tenant, record.id) == []
    known = await crm.runner.ctx.pool.fetchval(
        "SELECT email FROM known_visitors WHERE tenant = $1 AND visitor_id = $2", tenant, quiet
    )
    assert known == "off@example.com"  # still known by e-mail (for CRM-03 "accessed" and context)
