"""CRM-03/04/05: which visitors are added automatically (unattended, attended, accessed),
as a lead or a contact with lead source "chat" and the unattended label; who owns them
(a chosen CRM user, a distribution pool, the attending agent or else the CRM admin);
the follow-up task; adding by hand only when nothing matches and an e-mail was given."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import grpc
import pytest
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1 import settings_pb2 as spb
from kaiwa.events.v1.conversation_pb2 import ChatStarted
from kaiwa.visitor.v1 import visitor_pb2 as vpb

from services.crm_bridge.tests.kit import AGENT, admin, missed_chat, stack
from tests.fixtures import auth, eventually, status_of


@pytest.fixture(scope="module")
async def services():
    async with stack(with_visitor=True) as running_stack:
        yield running_stack


async def configure(crm, tenant, **changes) -> spb.CrmSettings:
    settings = await crm.stub.GetCrmSettings(spb.GetCrmSettingsRequest(), metadata=admin(tenant))
    for key, value in changes.items():
        if isinstance(value, list):
            getattr(settings, key)[:] = value
        else:
            setattr(settings, key, value)
    return await crm.stub.UpdateCrmSettings(settings, metadata=admin(tenant))


async def record_of(crm, tenant, email) -> pb.Record | None:
    context = await crm.stub.GetContext(pb.GetContextRequest(email=email), metadata=admin(tenant))
    return context.record if context.found else None


async def missed(services, tenant, email) -> None:
    event = await services.crm.publish("conversation", tenant, missed_chat(email))
    await eventually(lambda: services.crm.processed(event), f"the missed chat of {email}")


async def attended(services, tenant, email) -> str:
    visitor_id = str(uuid.uuid4())
    chat = await services.ended_chat(tenant, email, visitor_id=visitor_id)
    pool = services.crm.runner.ctx.pool
    # Taken: the visitor is remembered with the agent who attended, in the same transaction.
    query = "SELECT last_agent <> '' FROM known_visitors WHERE tenant = $1 AND visitor_id = $2"
    await eventually(lambda: pool.fetchval(query, tenant, visitor_id), f"the ended chat of {email}")
    return chat.id


async def accessed(services, tenant, email) -> None:
    """A visitor known by e-mail (from a chat started earlier) browsing the site."""
    crm, visitor_id = services.crm, str(uuid.uuid4())
    started = await crm.publish(
        "conversation", tenant, ChatStarted(chat_id=str(uuid.uuid4()), visitor_id=visitor_id, visitor_email=email)
    )
    await eventually(lambda: crm.processed(started), "the visitor is known")
    consumer = crm.runner.spec.consumers(crm.runner.ctx)[1].name
    query = "SELECT count(*) FROM processed_events WHERE consumer = $1"
    before = await crm.runner.ctx.pool.fetchval(query, consumer)
    await services.visitor.TrackPageView(
        vpb.TrackPageViewRequest(visitor_id=visitor_id, url="https://shop.example.jp/", ip="198.51.100.1"),
        metadata=auth(tenant, "service", "widget-gateway"),
    )
    await eventually(lambda: _more(crm, query, consumer, before), "the page view is taken")


async def _more(crm, query, consumer, before) -> bool:
    return await crm.runner.ctx.pool.fetchval(query, consumer) > before


POLICIES = {
    spb.AUTO_ADD_NONE: (False, False, False),
    spb.AUTO_ADD_UNATTENDED: (True, False, False),
    spb.AUTO_ADD_ATTENDED: (False, True, False),
    spb.AUTO_ADD_ACCESSED: (False, False, True),
    spb.AUTO_ADD_ATTENDED_AND_UNATTENDED: (True, True, False),
    spb.AUTO_ADD_ALL: (True, True, True),
}


@pytest.mark.parametrize("policy", list(POLICIES), ids=[spb.AutoAdd.Name(p).lower() for p in POLICIES])
async def test_crm03_auto_add_by_visitor_type(services, tenant, policy):
    crm = services.crm
    await configure(crm, tenant, auto_add=policy)
    await missed(services, tenant, "unattended@example.com")
    await attended(services, tenant, "attended@example.com")
    await accessed(services, tenant, "accessed@example.com")
    expected = POLICIES[policy]

    async def settled():
        found = [
            await record_of(crm, tenant, f"{kind}@example.com") is not None for kind in ("unattended", "attended", "accessed")
        ]
        return found if tuple(found) == expected else None

    await eventually(settled, f"records added as {spb.AutoAdd.Name(policy)} says ({expected})")
    for kind, added in zip(("unattended", "attended", "accessed"), expected, strict=True):
        record = await record_of(crm, tenant, f"{kind}@example.com")
        if added:
            assert (record.type, record.source) == (pb.RECORD_TYPE_LEAD, "chat")
            assert record.label == ("tracked_in_crm" if kind == "unattended" else "")


async def test_crm03_added_as_contact_with_the_unattended_label(services, tenant):
    await configure(services.crm, tenant, add_as=spb.ADD_AS_CONTACT, unattended_label=spb.UNATTENDED_LABEL_UNATTENDED)
    await missed(services, tenant, "contact@example.com")
    record = await record_of(services.crm, tenant, "contact@example.com")
    assert (record.type, record.source, record.label) == (pb.RECORD_TYPE_CONTACT, "chat", "unattended")


async def test_crm04_owner_a_chosen_user_or_a_pool_in_turn(services, tenant):
    crm = services.crm
    await configure(crm, tenant, owner_rule=spb.OWNER_RULE_USER, owner_email="Chosen@Example.com")
    await missed(services, tenant, "one@example.com")
    assert (await record_of(crm, tenant, "one@example.com")).owner == "chosen@example.com"

    await configure(crm, tenant, owner_rule=spb.OWNER_RULE_POOL, owner_pool=["a@example.com", "b@example.com"])
    for email in ("p1@example.com", "p2@example.com", "p3@example.com"):
        await missed(services, tenant, email)
    owners = [(await record_of(crm, tenant, f"p{i}@example.com")).owner for i in (1, 2, 3)]
    assert owners in (["a@example.com", "b@example.com", "a@example.com"], ["b@example.com", "a@example.com", "b@example.com"])

    bad = spb.CrmSettings(owner_rule=spb.OWNER_RULE_POOL)
    assert await status_of(crm.stub.UpdateCrmSettings(bad, metadata=admin(tenant))) == grpc.StatusCode.INVALID_ARGUMENT


async def test_crm04_owner_the_attending_agent_else_the_crm_admin(services, tenant):
    crm = services.crm
    await crm.stub.UpsertCrmUser(
        pb.UpsertCrmUserRequest(email="admin@crm.example", admin=True, agent_id="admin-7"), metadata=admin(tenant)
    )
    await crm.stub.ConnectCrm(pb.ConnectCrmRequest(kind=pb.CRM_KIND_BUILTIN), metadata=admin(tenant, "admin-7"))
    await attended(services, tenant, "no-user@example.com")  # AGENT has no CRM user yet
    assert (await record_of(crm, tenant, "no-user@example.com")).owner == "admin@crm.example"
    await crm.stub.UpsertCrmUser(pb.UpsertCrmUserRequest(email="rep@crm.example", agent_id=AGENT), metadata=admin(tenant))
    await attended(services, tenant, "with-user@example.com")
    assert (await record_of(crm, tenant, "with-user@example.com")).owner == "rep@crm.example"


@pytest.mark.parametrize(
    "rule, days",
    [(spb.FOLLOW_UP_TODAY, 0), (spb.FOLLOW_UP_TOMORROW, 1), (spb.FOLLOW_UP_IN_7_DAYS, 7), (spb.FOLLOW_UP_IN_14_DAYS, 14)],
)
async def test_crm05_follow_up_task_on_added_records(services, tenant, rule, days):
    crm = services.crm
    await configure(crm, tenant, follow_up=rule)
    await missed(services, tenant, "follow@example.com")
    record = await record_of(crm, tenant, "follow@example.com")
    feed = await crm.stub.ListActivities(pb.ListActivitiesRequest(record_id=record.id), metadata=admin(tenant))
    [task] = [a for a in feed.activities if a.kind == "task"]
    assert task.due_date in {(date.today() + timedelta(days=days + d)).isoformat() for d in (-1, 0)}  # around midnight UTC
    assert task.subject.startswith("チャットのフォローアップ")


async def test_crm03_manual_add_only_when_nothing_matches_and_an_email_was_given(services, tenant):
    crm = services.crm
    lead = await crm.stub.AddRecordFromChat(
        pb.AddRecordFromChatRequest(
            email="Manual@Example.com",
            name="手動 太郎",
            company="Manual KK",
            phone="+81 3-1234-5678",
            status="Contacted",
            owner="rep@example.com",
        ),
        metadata=admin(tenant),
    )
    assert (lead.record.type, lead.record.source, lead.record.owner) == (pb.RECORD_TYPE_LEAD, "chat", "rep@example.com")
    assert dict(lead.record.fields) == {"company": "Manual KK", "phone": "+81 3-1234-5678", "status": "Contacted"}
    contact = await crm.stub.AddRecordFromChat(
        pb.AddRecordFromChatRequest(
            email="person@example.com", type=pb.RECORD_TYPE_CONTACT, account="Acme", phone="06-1111-2222"
        ),
        metadata=admin(tenant),
    )
    assert (contact.record.type, contact.record.account, contact.record.fields["phone"]) == (
        pb.RECORD_TYPE_CONTACT,
        "Acme",
        "06-1111-2222",
    )

    for request, code in [
        (pb.AddRecordFromChatRequest(email="manual@example.com"), grpc.StatusCode.FAILED_PRECONDITION),  # a match: notify sales
        (pb.AddRecordFromChatRequest(email=""), grpc.StatusCode.INVALID_ARGUMENT),  # no e-mail given
        (pb.AddRecordFromChatRequest(email="not-an-email"), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.AddRecordFromChatRequest(email="x@example.com", phone="call me"), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.AddRecordFromChatRequest(email="x@example.com", owner="nobody"), grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        assert await status_of(crm.stub.AddRecordFromChat(request, metadata=admin(tenant))) == code
