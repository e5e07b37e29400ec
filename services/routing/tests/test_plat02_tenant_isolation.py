"""PLAT-02 in routing: another tenant's ids are NOT_FOUND and change nothing. (That every
row carries its tenant and every key starts with it is checked for all services by
tests/backbone/test_plat02_tenant_keys.py.)"""

from __future__ import annotations

import uuid

import grpc
from kaiwa.routing.v1 import routing_pb2 as pb

from services.routing.tests.kit import Kit
from tests.fixtures import auth, status_of


async def test_plat02_another_tenants_ids_are_not_found_and_change_nothing(kit, tenant, events):
    sales = await kit.department("Sales")
    a = await kit.agent("a@example.com", [sales.id])
    b = await kit.agent("b@example.com", [sales.id])
    rule = await kit.stub.UpsertRule(
        pb.Rule(
            kind=pb.RULE_KIND_PRIORITY,
            name="vip",
            order=1,
            conditions=[pb.Condition(field="visitor_type", op=pb.OPERATOR_EQUALS, value="deal")],
        ),
        metadata=kit.admin(),
    )
    chat = await kit.start_chat_in_conversation(sales.id, "v-1")
    await kit.wait_offers(a.id, lambda o: chat in o)
    await kit.stub.AssignChat(pb.AssignChatRequest(chat_id=chat, agent_id=a.id), metadata=kit.admin())
    transfer = await kit.stub.TransferChat(
        pb.TransferChatRequest(chat_id=chat, to_agent_email="b@example.com", note="n"), metadata=kit.as_agent(a.id)
    )

    # The other tenant has an agent and a department of its own, with the same names.
    other = Kit(kit.stub, kit.nc, f"{tenant}-other", kit.conversation)
    their_sales = await other.department("Sales")
    intruder = await other.agent("a@example.com", [their_sales.id])
    admin, agent = other.admin(), other.as_agent(intruder.id)
    s = kit.stub
    calls = [
        s.GetAssignment(pb.GetAssignmentRequest(chat_id=chat), metadata=admin),
        s.AssignChat(pb.AssignChatRequest(chat_id=chat, agent_id=intruder.id), metadata=admin),
        s.AssignChat(pb.AssignChatRequest(chat_id=chat), metadata=agent),
        s.TransferChat(pb.TransferChatRequest(chat_id=chat, to_agent_email="a@example.com"), metadata=admin),
        s.GetQueuePosition(pb.GetQueuePositionRequest(chat_id=chat), metadata=admin),
        s.InviteAgent(pb.InviteAgentRequest(chat_id=chat, agent_id=intruder.id), metadata=admin),
        s.ListMembers(pb.ListMembersRequest(chat_id=chat), metadata=admin),
        s.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=agent),
        s.DeclineChat(pb.DeclineChatRequest(chat_id=chat), metadata=agent),
        s.AnswerTransfer(pb.AnswerTransferRequest(transfer_id=transfer.id, accept=True), metadata=agent),
        s.GetAgent(pb.GetAgentRequest(agent_id=a.id), metadata=admin),
        s.GetDepartment(pb.GetDepartmentRequest(department_id=sales.id), metadata=admin),
        s.ListAgents(pb.ListAgentsRequest(department_id=sales.id), metadata=admin),
        s.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_OFFLINE, agent_id=a.id), metadata=admin),
        s.UpsertAgent(
            pb.UpsertAgentRequest(email="z@example.com", name="Z", max_chats=1, department_ids=[sales.id]), metadata=admin
        ),
        s.UpsertRule(
            pb.Rule(id=rule.id, kind=pb.RULE_KIND_PRIORITY, name="mine now", order=1, conditions=list(rule.conditions)),
            metadata=admin,
        ),
        s.DeleteRule(pb.DeleteRuleRequest(rule_id=rule.id), metadata=admin),
        s.SendTeamMessage(pb.SendTeamMessageRequest(to_agent_id=a.id, text="hi"), metadata=agent),
    ]
    for call in calls:
        assert await status_of(call) == grpc.StatusCode.NOT_FOUND

    # Nothing changed on this tenant's side.
    assignment = await kit.assignment(chat)
    assert assignment.state == pb.ASSIGNMENT_STATE_ASSIGNED and assignment.agent_id == a.id
    waiting = await s.ListTransfers(pb.ListTransfersRequest(), metadata=kit.as_agent(b.id))
    assert [(t.id, t.state) for t in waiting.transfers] == [(transfer.id, pb.TRANSFER_STATE_PENDING)]
    members = await s.ListMembers(pb.ListMembersRequest(chat_id=chat), metadata=kit.admin())
    assert [m.agent_id for m in members.members] == [a.id]
    me = await s.GetAgent(pb.GetAgentRequest(agent_id=a.id), metadata=kit.admin())
    assert me.availability == pb.AVAILABILITY_ONLINE and me.active_chats == 1
    assert [(r.id, r.name) for r in (await s.ListRules(pb.ListRulesRequest(), metadata=kit.admin())).rules] == [(rule.id, "vip")]
    assert [a.email for a in (await s.ListAgents(pb.ListAgentsRequest(), metadata=kit.admin())).agents] == [
        "a@example.com",
        "b@example.com",
    ]
    assert list((await s.ListTeamMessages(pb.ListTeamMessagesRequest(), metadata=kit.as_agent(a.id))).messages) == []
    assert events.of("chat_assigned", chat_id=chat, agent_id=intruder.id) == []


async def test_plat02_the_same_chat_id_in_two_tenants_is_two_separate_chats(kit, tenant):
    other = Kit(kit.stub, kit.nc, f"{tenant}-b", kit.conversation)
    mine, theirs = await kit.department("Sales"), await other.department("Sales")
    a = await kit.agent("a@example.com", [mine.id])
    b = await other.agent("b@example.com", [theirs.id])
    chat = str(uuid.uuid4())
    await kit.start_chat(mine.id, chat_id=chat)
    await kit.wait_offers(a.id, lambda o: chat in o)
    await other.start_chat(theirs.id, chat_id=chat)  # before tenant-first keys, this one was dropped as a duplicate
    await other.wait_offers(b.id, lambda o: chat in o)

    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(a.id))
    assert (await other.assignment(chat)).state == pb.ASSIGNMENT_STATE_QUEUED
    await other.end_chat(chat)
    await other.wait_state(chat, pb.ASSIGNMENT_STATE_ENDED)
    assert (await kit.assignment(chat)).agent_id == a.id
    assert (await kit.wait_agent(a.id, 1)).active_chats == 1
    assert (
        await status_of(kit.stub.GetAssignment(pb.GetAssignmentRequest(chat_id=chat), metadata=auth(f"{tenant}-c", "admin", "x")))
        == grpc.StatusCode.NOT_FOUND
    )
