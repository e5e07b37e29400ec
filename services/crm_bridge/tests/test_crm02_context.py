"""CRM-02: the visitor's CRM data in the chat: the seed's fields (lead: company, phone,
status, owner, source, annual revenue, employees; contact: account, phone, owner, source;
deals: how many are open and their total), fields without a value left out, in the
order the admin sets per record type; whether the agent may add or notify sales."""

from __future__ import annotations

import grpc
import pytest
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1 import settings_pb2 as spb

from services.crm_bridge.tests.kit import admin, agent, crm_service
from tests.fixtures import status_of


@pytest.fixture(scope="module")
async def crm():
    async with crm_service() as service:
        yield service


async def lead(crm, tenant, email="lead@example.com", **fields):
    return await crm.stub.UpsertRecord(
        pb.UpsertRecordRequest(
            email=email, name="山田 花子", fields=fields, owner="sales@example.com", source="chat", type=pb.RECORD_TYPE_LEAD
        ),
        metadata=admin(tenant),
    )


def shown(context) -> list[tuple[str, str, str]]:
    return [(f.key, f.label, f.value) for f in context.fields]


async def test_crm02_lead_fields_in_the_seeds_order_without_empty_ones(crm, tenant):
    await lead(crm, tenant, company="Example KK", phone="03-1234-5678", status="", annual_revenue="50000000", employees=" ")
    context = await crm.stub.GetContext(pb.GetContextRequest(email="Lead@Example.com"), metadata=agent(tenant))
    assert context.connected and context.found and context.record.type == pb.RECORD_TYPE_LEAD
    assert shown(context) == [
        ("company", "組織", "Example KK"),
        ("phone", "電話", "03-1234-5678"),
        ("owner", "見込み客の担当者", "sales@example.com"),
        ("source", "見込み客の登録経路", "chat"),
        ("annual_revenue", "年間売上", "50000000"),
    ]
    assert (context.can_notify_sales, context.can_add_record, context.open_deal_count) == (True, False, 0)
    english = await crm.stub.GetContext(pb.GetContextRequest(email="lead@example.com", locale="en"), metadata=agent(tenant))
    assert [f.label for f in english.fields] == ["Company", "Phone", "Lead owner", "Lead source", "Annual revenue"]


async def test_crm02_the_admin_sets_fields_and_order_per_record_type(crm, tenant):
    await crm.stub.DefineCustomField(
        pb.DefineCustomFieldRequest(type=pb.RECORD_TYPE_LEAD, name="budget", label="予算"), metadata=admin(tenant)
    )
    await lead(crm, tenant, company="Example KK", employees="120", budget="3000000", phone="03-1234-5678")
    current = await crm.stub.GetCrmSettings(spb.GetCrmSettingsRequest(), metadata=admin(tenant))
    current.lead_layout[:] = ["employees", "budget", "company"]
    current.contact_person_layout[:] = ["phone", "account"]
    saved = await crm.stub.UpdateCrmSettings(current, metadata=admin(tenant))
    assert list(saved.lead_layout) == ["employees", "budget", "company"]
    context = await crm.stub.GetContext(pb.GetContextRequest(email="lead@example.com"), metadata=agent(tenant))
    assert shown(context) == [("employees", "従業員数", "120"), ("budget", "予算", "3000000"), ("company", "組織", "Example KK")]

    await crm.stub.AddRecordFromChat(
        pb.AddRecordFromChatRequest(
            email="person@example.com", type=pb.RECORD_TYPE_CONTACT, account="Acme Japan", phone="06-0000-1111"
        ),
        metadata=admin(tenant),
    )
    person = await crm.stub.GetContext(pb.GetContextRequest(email="person@example.com"), metadata=agent(tenant))
    assert shown(person) == [("phone", "電話番号", "06-0000-1111"), ("account", "取引先名", "Acme Japan")]
    assert [(f.key, f.value) for f in person.company_fields] == [("name", "Acme Japan")]
    bad = spb.CrmSettings(lead_layout=["not a field!"])
    assert await status_of(crm.stub.UpdateCrmSettings(bad, metadata=admin(tenant))) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(crm.stub.UpdateCrmSettings(current, metadata=agent(tenant))) == grpc.StatusCode.PERMISSION_DENIED


async def test_crm02_open_deals_are_counted_and_summed(crm, tenant):
    await crm.stub.UpsertRecord(
        pb.UpsertRecordRequest(
            email="buyer@example.com",
            type=pb.RECORD_TYPE_CONTACT,
            deals=[
                pb.Deal(name="A", stage="Negotiation", amount=1000000, open=True),
                pb.Deal(name="B", stage="Qualification", amount=250000.5, open=True),
                pb.Deal(name="C", stage="Closed Won", amount=9999999, open=False),
            ],
        ),
        metadata=admin(tenant),
    )
    context = await crm.stub.GetContext(pb.GetContextRequest(email="buyer@example.com"), metadata=agent(tenant))
    assert (context.open_deal_count, context.open_deal_amount) == (2, 1250000.5)
    assert context.record.visitor_type == "customer"


async def test_crm02_no_match_offers_adding_only_with_an_email(crm, tenant):
    unknown = await crm.stub.GetContext(pb.GetContextRequest(email="new@example.com"), metadata=agent(tenant))
    assert (unknown.found, unknown.can_add_record, unknown.can_notify_sales) == (False, True, False)
    assert unknown.message == "この訪問者のCRM情報はありません"
    anonymous = await crm.stub.GetContext(pb.GetContextRequest(email=""), metadata=agent(tenant))
    assert (anonymous.found, anonymous.can_add_record) == (False, False)
    invalid = crm.stub.GetContext(pb.GetContextRequest(email="not an email"), metadata=agent(tenant))
    assert await status_of(invalid) == grpc.StatusCode.INVALID_ARGUMENT
    visitor = crm.stub.GetContext(pb.GetContextRequest(email="new@example.com"), metadata=(("authorization", "Bearer x"),))
    assert await status_of(visitor) == grpc.StatusCode.UNAUTHENTICATED


async def test_plat02_context_never_shows_another_tenants_record(crm, tenant):
    await lead(crm, tenant, company="Secret KK")
    theirs = await crm.stub.GetContext(pb.GetContextRequest(email="lead@example.com"), metadata=agent(f"{tenant}-x"))
    assert not theirs.found and list(theirs.fields) == []
