"""ROUT-02/03/04 with the CRM: CRM owner first, assignment rules on CRM lead fields, deals
and visitor type, visitor-priority rules ordering the queue (crm_bridge runs in-process)."""

from __future__ import annotations

import os
import uuid

import grpc
import pytest
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub
from kaiwa.routing.v1 import routing_pb2 as pb

from kaiwa_crm.main import SPEC as CRM_SPEC
from tests.fixtures import auth, channel_to, running, status_of


@pytest.fixture(scope="module", autouse=True)
async def crm_bridge():
    """crm_bridge in this process; routing finds it through KAIWA_CRM_BRIDGE_ADDR."""
    async with running(CRM_SPEC) as runner:
        previous = os.environ.get("KAIWA_CRM_BRIDGE_ADDR")
        os.environ["KAIWA_CRM_BRIDGE_ADDR"] = f"127.0.0.1:{runner.port}"
        async with channel_to(runner) as channel:
            yield CrmBridgeServiceStub(channel)
        if previous is None:
            os.environ.pop("KAIWA_CRM_BRIDGE_ADDR", None)
        else:
            os.environ["KAIWA_CRM_BRIDGE_ADDR"] = previous


async def _record(crm_bridge, tenant, email, owner="", fields=None, deals=(), kind=crm.RECORD_TYPE_LEAD):
    await crm_bridge.UpsertRecord(
        crm.UpsertRecordRequest(
            type=kind,
            email=email,
            name=email.split("@")[0],
            fields=fields or {},
            owner=owner,
            deals=[crm.Deal(name=f"deal {i}", stage="Negotiation", amount=amount, open=True) for i, amount in enumerate(deals)],
        ),
        metadata=auth(tenant, "admin", "admin-1"),
    )


def cond(field, op, value=""):
    return pb.Condition(field=field, op=op, value=value)


async def test_rout02_crm_owner_first_then_the_department(kit, crm_bridge):
    dept = await kit.department("Sales", pb.STRATEGY_CRM_OWNER)
    owner = await kit.agent("owner@example.com", [dept.id], max_chats=5)
    other = await kit.agent("other@example.com", [dept.id], max_chats=5)
    await _record(crm_bridge, kit.tenant, "repeat@customer.jp", owner="Owner@example.com")
    chat = await kit.start_chat(dept.id, visitor_email="repeat@customer.jp")
    await kit.wait_offers(owner.id, lambda o: chat in o)
    assert await kit.offers(other.id) == []
    # Unknown visitors ring the department.
    stranger = await kit.start_chat(dept.id, visitor_email="new@visitor.jp")
    await kit.wait_offers(other.id, lambda o: stranger in o)
    await kit.wait_offers(owner.id, lambda o: stranger in o)
    # The owner away: the repeat visitor's next chat goes to the department.
    await kit.stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_AWAY), metadata=kit.as_agent(owner.id))
    later = await kit.start_chat(dept.id, visitor_email="repeat@customer.jp")
    await kit.wait_offers(other.id, lambda o: later in o)


async def test_rout03_assignment_rules_on_deals_lead_fields_and_visitor_type(kit, crm_bridge):
    dept = await kit.department("Sales", pb.STRATEGY_RING_ALL)
    vip = await kit.agent("vip@example.com", [dept.id], max_chats=5)
    acme = await kit.agent("acme@example.com", [dept.id], max_chats=5)
    rest = await kit.agent("rest@example.com", [dept.id], max_chats=5)
    admin = kit.admin()
    big = await kit.stub.UpsertRule(
        pb.Rule(
            kind=pb.RULE_KIND_ASSIGNMENT,
            name="big deals",
            order=1,
            agent_ids=[vip.id],
            conditions=[
                cond("deals.open_count", pb.OPERATOR_AT_LEAST, "1"),
                cond("deals.open_amount", pb.OPERATOR_AT_LEAST, "10000"),
            ],
        ),
        metadata=admin,
    )
    await kit.stub.UpsertRule(
        pb.Rule(
            kind=pb.RULE_KIND_ASSIGNMENT,
            name="acme",
            order=2,
            department_id=dept.id,
            agent_ids=[acme.id],
            conditions=[
                cond("lead.Company", pb.OPERATOR_EQUALS, "ACME"),
                cond("visitor_type", pb.OPERATOR_NOT_EQUALS, "customer"),
            ],
        ),
        metadata=admin,
    )
    rules = await kit.stub.ListRules(pb.ListRulesRequest(kind=pb.RULE_KIND_ASSIGNMENT), metadata=admin)
    assert [r.name for r in rules.rules] == ["big deals", "acme"] and rules.rules[0].id == big.id

    await _record(crm_bridge, kit.tenant, "rich@acme.jp", fields={"Company": "Acme"}, deals=[8000, 4000])
    await _record(crm_bridge, kit.tenant, "small@acme.jp", fields={"Company": "Acme"}, deals=[500])
    await _record(crm_bridge, kit.tenant, "plain@other.jp", fields={"Company": "Other"})
    rich = await kit.start_chat(dept.id, visitor_email="rich@acme.jp")
    small = await kit.start_chat(dept.id, visitor_email="small@acme.jp")
    plain = await kit.start_chat(dept.id, visitor_email="plain@other.jp")
    await kit.wait_offers(rest.id, lambda o: plain in o)
    await kit.wait_offers(vip.id, lambda o: rich in o and plain in o)
    assert sorted(await kit.offers(acme.id)) == sorted([small, plain])
    assert sorted(await kit.offers(rest.id)) == [plain]
    assert sorted(await kit.offers(vip.id)) == sorted([rich, plain])

    # The rule's agent away: the chat goes by the department's strategy instead.
    await kit.stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_AWAY), metadata=kit.as_agent(vip.id))
    await kit.wait_offers(rest.id, lambda o: rich in o)

    await kit.stub.DeleteRule(pb.DeleteRuleRequest(rule_id=big.id), metadata=admin)
    assert [r.name for r in (await kit.stub.ListRules(pb.ListRulesRequest(), metadata=admin)).rules] == ["acme"]


async def test_rout04_priority_rules_order_the_queue_and_visitors_see_position_and_estimate(kit, crm_bridge, events):
    dept = await kit.department("Support", max_wait_seconds=600)
    await kit.stub.UpsertRule(
        pb.Rule(
            kind=pb.RULE_KIND_PRIORITY,
            name="open deals first",
            order=1,
            conditions=[cond("visitor_type", pb.OPERATOR_EQUALS, "deal")],
        ),
        metadata=kit.admin(),
    )
    await _record(crm_bridge, kit.tenant, "buyer@deal.jp", deals=[1200])
    first = await kit.start_chat(dept.id, visitor_email="one@plain.jp", visitor_id="v-1")
    await kit.wait_state(first, pb.ASSIGNMENT_STATE_QUEUED)
    second = await kit.start_chat(dept.id, visitor_email="two@plain.jp", visitor_id="v-2")
    await kit.wait_state(second, pb.ASSIGNMENT_STATE_QUEUED)
    buyer = await kit.start_chat(dept.id, visitor_email="buyer@deal.jp", visitor_id="v-3")
    await kit.wait_state(buyer, pb.ASSIGNMENT_STATE_QUEUED)

    queue = await kit.stub.ListQueue(pb.ListQueueRequest(department_id=dept.id), metadata=kit.admin())
    assert [c.chat_id for c in queue.chats] == [buyer, first, second]
    assert [c.priority for c in queue.chats] == [1, 0, 0]
    asked = await kit.stub.GetQueuePosition(pb.GetQueuePositionRequest(chat_id=second), metadata=kit.visitor("v-2"))
    assert asked.position == 3 and asked.state == pb.ASSIGNMENT_STATE_QUEUED
    head = await kit.stub.GetQueuePosition(pb.GetQueuePositionRequest(chat_id=buyer), metadata=kit.visitor("v-3"))
    assert head.position == 1 and 0 < head.estimated_wait_seconds < asked.estimated_wait_seconds
    assert (
        await status_of(kit.stub.GetQueuePosition(pb.GetQueuePositionRequest(chat_id=second), metadata=kit.visitor("v-1")))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    # Positions reach the chat stream through events.
    # (an announcement made before the buyer queued may say 2 first: wait for the 3)
    announced = await events.wait("queue_position_changed", chat_id=second, position=3)
    assert announced[-1].position == 3 and announced[-1].estimated_wait_seconds > 0

    # An agent comes online: the head of the queue is offered first (one slot).
    agent = await kit.agent("a@example.com", [dept.id], max_chats=1)
    await kit.wait_offers(agent.id, lambda o: o == [buyer])
    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=buyer), metadata=kit.as_agent(agent.id))
    moved = await events.wait("queue_position_changed", chat_id=second, position=2)
    assert moved
    done = await kit.stub.GetQueuePosition(pb.GetQueuePositionRequest(chat_id=buyer), metadata=kit.visitor("v-3"))
    assert done.position == 0 and done.state == pb.ASSIGNMENT_STATE_ASSIGNED


async def test_rout03_rules_bad_input(kit):
    dept = await kit.department("Sales")
    agent = await kit.agent("a@example.com", [dept.id])
    admin = kit.admin()
    good = [cond("visitor_type", pb.OPERATOR_EQUALS, "lead")]
    invalid = [
        pb.Rule(kind=pb.RULE_KIND_UNSPECIFIED, name="r", order=1, conditions=good),
        pb.Rule(kind=pb.RULE_KIND_PRIORITY, name="", order=1, conditions=good),
        pb.Rule(kind=pb.RULE_KIND_PRIORITY, name="r", order=0, conditions=good),
        pb.Rule(kind=pb.RULE_KIND_PRIORITY, name="r", order=1),
        pb.Rule(kind=pb.RULE_KIND_PRIORITY, name="r", order=1, conditions=[cond("salary", pb.OPERATOR_EQUALS, "1")]),
        pb.Rule(
            kind=pb.RULE_KIND_PRIORITY, name="r", order=1, conditions=[cond("deals.open_amount", pb.OPERATOR_AT_LEAST, "lots")]
        ),
        pb.Rule(kind=pb.RULE_KIND_PRIORITY, name="r", order=1, conditions=[cond("visitor_type", pb.OPERATOR_UNSPECIFIED, "x")]),
        pb.Rule(kind=pb.RULE_KIND_ASSIGNMENT, name="r", order=1, conditions=good),
        pb.Rule(kind=pb.RULE_KIND_PRIORITY, name="r", order=1, conditions=good, agent_ids=[agent.id]),
        pb.Rule(kind=pb.RULE_KIND_ASSIGNMENT, name="r", order=1, conditions=good, agent_ids=["x"]),
    ]
    for rule in invalid:
        assert await status_of(kit.stub.UpsertRule(rule, metadata=admin)) == grpc.StatusCode.INVALID_ARGUMENT, rule
    missing = [
        pb.Rule(kind=pb.RULE_KIND_ASSIGNMENT, name="r", order=1, conditions=good, agent_ids=[str(uuid.uuid4())]),
        pb.Rule(kind=pb.RULE_KIND_PRIORITY, name="r", order=1, conditions=good, department_id=str(uuid.uuid4())),
        pb.Rule(id=str(uuid.uuid4()), kind=pb.RULE_KIND_PRIORITY, name="r", order=1, conditions=good),
    ]
    for rule in missing:
        assert await status_of(kit.stub.UpsertRule(rule, metadata=admin)) == grpc.StatusCode.NOT_FOUND, rule
    ok = pb.Rule(kind=pb.RULE_KIND_PRIORITY, name="r", order=1, conditions=good)
    assert await status_of(kit.stub.UpsertRule(ok, metadata=kit.as_agent(agent.id))) == grpc.StatusCode.PERMISSION_DENIED
    saved = await kit.stub.UpsertRule(ok, metadata=admin)
    elsewhere = auth(f"{kit.tenant}-x", "admin", "admin")
    assert (
        await status_of(kit.stub.DeleteRule(pb.DeleteRuleRequest(rule_id=saved.id), metadata=elsewhere))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await status_of(
            kit.stub.UpsertRule(
                pb.Rule(id=saved.id, kind=pb.RULE_KIND_PRIORITY, name="stolen", order=1, conditions=good), metadata=elsewhere
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await status_of(kit.stub.DeleteRule(pb.DeleteRuleRequest(rule_id=""), metadata=admin)) == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert [r.name for r in (await kit.stub.ListRules(pb.ListRulesRequest(), metadata=admin)).rules] == ["r"]


async def test_rout03_a_rule_creation_retried_with_its_request_id_creates_one_rule(kit):
    admin = kit.admin()
    rule = pb.Rule(
        kind=pb.RULE_KIND_PRIORITY,
        name="deals first",
        order=1,
        request_id="rule-1",
        conditions=[cond("visitor_type", pb.OPERATOR_EQUALS, "deal")],
    )
    first = await kit.stub.UpsertRule(rule, metadata=admin)
    again = await kit.stub.UpsertRule(rule, metadata=admin)
    assert again.id == first.id and first.request_id == ""
    other = pb.Rule(
        kind=pb.RULE_KIND_PRIORITY,
        name="leads next",
        order=2,
        request_id="rule-1",
        conditions=[cond("visitor_type", pb.OPERATOR_EQUALS, "lead")],
    )
    assert await status_of(kit.stub.UpsertRule(other, metadata=admin)) == grpc.StatusCode.INVALID_ARGUMENT
    assert [r.id for r in (await kit.stub.ListRules(pb.ListRulesRequest(), metadata=admin)).rules] == [first.id]
    await kit.stub.DeleteRule(pb.DeleteRuleRequest(rule_id=first.id), metadata=admin)
    assert await status_of(kit.stub.UpsertRule(rule, metadata=admin)) == grpc.StatusCode.NOT_FOUND  # created, then deleted
    assert list((await kit.stub.ListRules(pb.ListRulesRequest(), metadata=admin)).rules) == []
