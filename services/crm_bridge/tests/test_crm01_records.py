"""CRM-01/CRM-02 (records by e-mail, fields with a value, deals) and PLAT-02 for the CRM bridge,
through the gRPC API against real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub

from kaiwa_crm.main import make_spec
from tests.fixtures import auth, channel_to, events_of, running, status_of


@pytest.fixture(scope="module")
async def crm():
    name = f"crm01_{uuid.uuid4().hex[:8]}"  # a schema and durable consumer of its own
    async with running(make_spec(schema=name, durable=name), schema=name) as runner, channel_to(runner) as channel:
        yield CrmBridgeServiceStub(channel)


def agent(tenant: str):
    """An agent with no CRM user of their own (CRM-01: may add leads, not edit records)."""
    return auth(tenant, "agent", str(uuid.uuid4()))


def admin(tenant: str):
    return auth(tenant, "admin", "admin-1")


@pytest.fixture
async def record_events(tenant):
    """record_created events of this test's tenant, as the relay publishes them."""
    async with events_of(tenant, "crm_bridge", "record_created") as seen:
        yield seen


async def wait_for(predicate, attempts: int = 100):
    for _ in range(attempts):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


async def test_crm01_upsert_creates_lead_found_by_email_in_any_case(crm, tenant, record_events):
    created = await crm.UpsertRecord(
        pb.UpsertRecordRequest(
            email="Hanako.Yamada@Example.co.jp",
            name="山田 花子",
            fields={"company": "Example KK", "phone": "03-1234-5678", "status": ""},
        ),
        metadata=agent(tenant),
    )
    assert created.type == pb.RECORD_TYPE_LEAD
    assert created.visitor_type == "lead"
    assert created.email == "Hanako.Yamada@Example.co.jp"

    found = await crm.FindRecord(pb.FindRecordRequest(email="  hanako.yamada@EXAMPLE.CO.JP "), metadata=agent(tenant))
    assert found.id == created.id
    assert found.name == "山田 花子"
    assert dict(found.fields) == {"company": "Example KK", "phone": "03-1234-5678"}
    assert found.created_at.seconds > 0

    assert await wait_for(lambda: len(record_events) == 1)
    event = record_events[0].record_created
    assert (event.record_id, event.record_type, event.email, event.chat_id) == (created.id, "lead", created.email, "")


async def test_crm01_upsert_updates_the_same_record_and_merges_fields(crm, tenant, record_events):
    first = await crm.UpsertRecord(
        pb.UpsertRecordRequest(
            email="ken@example.com", name="Ken", fields={"company": "Acme", "phone": "555"}, source="web form"
        ),
        metadata=admin(tenant),
    )
    second = await crm.UpsertRecord(
        pb.UpsertRecordRequest(
            email="KEN@example.com",
            type=pb.RECORD_TYPE_CONTACT,
            fields={"phone": "", "account": "Acme Japan"},
            owner="sales@example.com",
        ),
        metadata=auth(tenant, "service", "routing"),
    )
    assert second.id == first.id
    assert second.type == pb.RECORD_TYPE_CONTACT  # a lead may be converted to a contact
    assert second.name == "Ken"  # empty name keeps the name
    assert second.source == "web form"
    assert second.owner == "sales@example.com"
    assert dict(second.fields) == {"company": "Acme", "account": "Acme Japan"}  # empty value removed phone
    assert await wait_for(lambda: len(record_events) >= 1)
    await asyncio.sleep(0.2)
    assert len(record_events) == 1  # created once, updated once


async def test_crm02_only_fields_with_a_value_are_shown(crm, tenant):
    await crm.UpsertRecord(
        pb.UpsertRecordRequest(email="a@example.com", fields={"company": "  ", "phone": "", "annual revenue": "1000000"}),
        metadata=admin(tenant),
    )
    found = await crm.FindRecord(pb.FindRecordRequest(email="a@example.com"), metadata=agent(tenant))
    assert dict(found.fields) == {"annual revenue": "1000000"}


async def test_crm01_deals_and_visitor_type(crm, tenant):
    contact = await crm.UpsertRecord(
        pb.UpsertRecordRequest(
            email="buyer@example.com",
            type=pb.RECORD_TYPE_CONTACT,
            deals=[pb.Deal(name="Renewal 2025", stage="Negotiation", amount=1200000.5, closing_date="2025-12-31", open=True)],
        ),
        metadata=admin(tenant),
    )
    assert contact.visitor_type == "deal"
    deal = contact.deals[0]
    assert (deal.name, deal.stage, deal.amount, deal.closing_date, deal.open) == (
        "Renewal 2025",
        "Negotiation",
        1200000.5,
        "2025-12-31",
        True,
    )

    won = await crm.UpsertRecord(
        pb.UpsertRecordRequest(
            email="buyer@example.com",
            deals=[
                pb.Deal(
                    id=deal.id, name="Renewal 2025", stage="Closed Won", amount=1300000, closing_date="2025-11-30", open=False
                )
            ],
        ),
        metadata=admin(tenant),
    )
    assert len(won.deals) == 1
    assert (won.deals[0].stage, won.deals[0].open, won.deals[0].amount) == ("Closed Won", False, 1300000)
    assert won.visitor_type == "customer"

    plain = await crm.UpsertRecord(
        pb.UpsertRecordRequest(email="plain@example.com", type=pb.RECORD_TYPE_CONTACT), metadata=admin(tenant)
    )
    assert plain.visitor_type == "contact"


async def test_crm01_unknown_deal_id_is_not_found_and_nothing_is_written(crm, tenant):
    await crm.UpsertRecord(pb.UpsertRecordRequest(email="d@example.com", name="Before"), metadata=admin(tenant))
    call = crm.UpsertRecord(
        pb.UpsertRecordRequest(email="d@example.com", name="After", deals=[pb.Deal(id=str(uuid.uuid4()), name="X")]),
        metadata=admin(tenant),
    )
    assert await status_of(call) == grpc.StatusCode.NOT_FOUND
    found = await crm.FindRecord(pb.FindRecordRequest(email="d@example.com"), metadata=agent(tenant))
    assert found.name == "Before"
    assert list(found.deals) == []


async def test_crm01_contact_cannot_become_a_lead_again(crm, tenant):
    await crm.UpsertRecord(pb.UpsertRecordRequest(email="c@example.com", type=pb.RECORD_TYPE_CONTACT), metadata=admin(tenant))
    call = crm.UpsertRecord(pb.UpsertRecordRequest(email="c@example.com", type=pb.RECORD_TYPE_LEAD), metadata=admin(tenant))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "contact" in err.value.details()


async def test_crm01_concurrent_upserts_of_one_email_make_one_record(crm, tenant, record_events):
    results = await asyncio.gather(
        *(
            crm.UpsertRecord(
                pb.UpsertRecordRequest(email=f"{'RACE' if i % 2 else 'race'}@example.com", fields={f"f{i}": "v"}),
                metadata=admin(tenant),
            )
            for i in range(8)
        )
    )
    assert len({r.id for r in results}) == 1
    found = await crm.FindRecord(pb.FindRecordRequest(email="race@example.com"), metadata=agent(tenant))
    assert set(found.fields) == {f"f{i}" for i in range(8)}
    assert await wait_for(lambda: len(record_events) >= 1)
    await asyncio.sleep(0.2)
    assert len(record_events) == 1


async def test_crm01_find_record_bad_input(crm, tenant):
    for email, code, words in [
        ("", grpc.StatusCode.INVALID_ARGUMENT, "email is required"),
        ("not-an-email", grpc.StatusCode.INVALID_ARGUMENT, "not a valid e-mail"),
        ("a@b", grpc.StatusCode.INVALID_ARGUMENT, "not a valid e-mail"),
        ("two@@example.com", grpc.StatusCode.INVALID_ARGUMENT, "not a valid e-mail"),
        ("nobody@example.com", grpc.StatusCode.NOT_FOUND, "nobody@example.com"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await crm.FindRecord(pb.FindRecordRequest(email=email), metadata=agent(tenant))
        assert err.value.code() == code, email
        assert words in err.value.details(), err.value.details()


@pytest.mark.parametrize(
    "request_, words",
    [
        (pb.UpsertRecordRequest(email=""), "email is required"),
        (pb.UpsertRecordRequest(email="bad email@example.com"), "not a valid e-mail"),
        (pb.UpsertRecordRequest(email="x@example.com", type=7), "type: 7 is not a known RecordType"),
        (pb.UpsertRecordRequest(email="x@example.com", name="n" * 201), "name is longer"),
        (pb.UpsertRecordRequest(email="x@example.com", owner="owner"), "owner"),
        (pb.UpsertRecordRequest(email="x@example.com", fields={" ": "v"}), "field name"),
        (pb.UpsertRecordRequest(email="x@example.com", fields={"k": "v" * 2001}), "field 'k'"),
        (pb.UpsertRecordRequest(email="x@example.com", deals=[pb.Deal(name="")]), "deal name"),
        (pb.UpsertRecordRequest(email="x@example.com", deals=[pb.Deal(name="D", amount=-1)]), "amount"),
        (pb.UpsertRecordRequest(email="x@example.com", deals=[pb.Deal(name="D", amount=float("nan"))]), "amount"),
        (pb.UpsertRecordRequest(email="x@example.com", deals=[pb.Deal(name="D", closing_date="2025-02-30")]), "closing_date"),
        (pb.UpsertRecordRequest(email="x@example.com", deals=[pb.Deal(name="D", closing_date="31/12/2025")]), "closing_date"),
        (pb.UpsertRecordRequest(email="x@example.com", deals=[pb.Deal(id="deal-1", name="D")]), "deal id"),
    ],
)
async def test_crm01_upsert_record_bad_input_writes_nothing(crm, tenant, request_, words):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await crm.UpsertRecord(request_, metadata=admin(tenant))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in err.value.details(), err.value.details()
    call = crm.FindRecord(pb.FindRecordRequest(email="x@example.com"), metadata=agent(tenant))
    assert await status_of(call) == grpc.StatusCode.NOT_FOUND


async def test_crm01_get_attachment_bad_input(crm, tenant):
    for attachment_id, code in [
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("abc", grpc.StatusCode.INVALID_ARGUMENT),
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
    ]:
        call = crm.GetAttachment(pb.GetAttachmentRequest(attachment_id=attachment_id), metadata=agent(tenant))
        assert await status_of(call) == code


async def test_plat02_crm_needs_a_staff_token_and_keeps_tenants_apart(crm, tenant):
    request = pb.UpsertRecordRequest(email="secret@example.com", fields={"company": "Tenant A"})
    assert await status_of(crm.UpsertRecord(request)) == grpc.StatusCode.UNAUTHENTICATED
    assert (
        await status_of(crm.UpsertRecord(request, metadata=(("authorization", "Bearer nonsense"),)))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    visitor = auth(tenant, "visitor", str(uuid.uuid4()))
    assert await status_of(crm.UpsertRecord(request, metadata=visitor)) == grpc.StatusCode.PERMISSION_DENIED
    assert (
        await status_of(crm.FindRecord(pb.FindRecordRequest(email="secret@example.com"), metadata=visitor))
        == grpc.StatusCode.PERMISSION_DENIED
    )

    await crm.UpsertRecord(request, metadata=auth(tenant, "admin", "admin-1"))
    other = f"{tenant}-other"
    call = crm.FindRecord(pb.FindRecordRequest(email="secret@example.com"), metadata=agent(other))
    assert await status_of(call) == grpc.StatusCode.NOT_FOUND
    # The same e-mail is a separate record in another tenant.
    theirs = await crm.UpsertRecord(pb.UpsertRecordRequest(email="secret@example.com"), metadata=admin(other))
    ours = await crm.FindRecord(pb.FindRecordRequest(email="secret@example.com"), metadata=agent(tenant))
    assert theirs.id != ours.id
    assert dict(theirs.fields) == {}
    assert dict(ours.fields) == {"company": "Tenant A"}
