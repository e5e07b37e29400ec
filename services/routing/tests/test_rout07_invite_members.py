"""ROUT-07: invite an agent into a chat without transferring it; members with presence."""

from __future__ import annotations

import uuid

import grpc
from kaiwa.routing.v1 import routing_pb2 as pb

from tests.fixtures import status_of


async def test_rout07_invited_agent_joins_while_the_owner_keeps_the_chat(kit, events):
    dept = await kit.department("Sales")
    a = await kit.agent("a@example.com", [dept.id], name="Aiko")
    b = await kit.agent("b@example.com", [dept.id], name="Ben")
    chat = await kit.start_chat(dept.id, visitor_id="v-1")
    await kit.wait_offers(a.id, lambda o: chat in o)
    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(a.id))
    member = await kit.stub.InviteAgent(
        pb.InviteAgentRequest(chat_id=chat, agent_email="b@example.com", note="can you check the invoice?"),
        metadata=kit.as_agent(a.id),
    )
    assert member.agent_id == b.id and member.role == pb.MEMBER_ROLE_PARTICIPANT
    invited = (await events.wait("agent_invited", chat_id=chat))[0]
    assert invited.agent_id == b.id and invited.agent_name == "Ben" and invited.by_agent_id == a.id
    assert invited.note == "can you check the invoice?"
    assert (await kit.assignment(chat)).agent_id == a.id  # the owner keeps the chat

    members = await kit.stub.ListMembers(pb.ListMembersRequest(chat_id=chat), metadata=kit.as_agent(b.id))
    assert [(m.name, m.role, m.online) for m in members.members] == [
        ("Aiko", pb.MEMBER_ROLE_OWNER, True),
        ("Ben", pb.MEMBER_ROLE_PARTICIPANT, True),
    ]
    await kit.stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_OFFLINE), metadata=kit.as_agent(b.id))
    members = await kit.stub.ListMembers(pb.ListMembersRequest(chat_id=chat), metadata=kit.visitor("v-1"))
    assert [(m.name, m.availability, m.online) for m in members.members] == [
        ("Aiko", pb.AVAILABILITY_ONLINE, True),
        ("Ben", pb.AVAILABILITY_OFFLINE, False),
    ]
    assert (
        await status_of(kit.stub.ListMembers(pb.ListMembersRequest(chat_id=chat), metadata=kit.visitor("v-2")))
        == grpc.StatusCode.PERMISSION_DENIED
    )


async def test_rout07_invite_bad_input(kit):
    dept = await kit.department("Sales")
    a = await kit.agent("a@example.com", [dept.id])
    b = await kit.agent("b@example.com", [dept.id])
    c = await kit.agent("c@example.com", [dept.id])
    off = await kit.agent("off@example.com", [dept.id], online=False)
    chat = await kit.start_chat(dept.id)
    await kit.wait_offers(a.id, lambda o: chat in o)
    invite = lambda md=None, **kw: kit.stub.InviteAgent(pb.InviteAgentRequest(**kw), metadata=md or kit.as_agent(a.id))
    assert await status_of(invite(chat_id=chat, agent_id=b.id)) == grpc.StatusCode.FAILED_PRECONDITION  # still queued
    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(a.id))
    cases = [
        (invite(chat_id=chat), grpc.StatusCode.INVALID_ARGUMENT),
        (invite(chat_id=chat, agent_id=b.id, agent_email="b@example.com"), grpc.StatusCode.INVALID_ARGUMENT),
        (invite(chat_id=chat, agent_id=a.id), grpc.StatusCode.INVALID_ARGUMENT),  # the owner
        (invite(chat_id=chat, agent_id=off.id), grpc.StatusCode.FAILED_PRECONDITION),
        (invite(chat_id=chat, agent_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND),
        (invite(chat_id=str(uuid.uuid4()), agent_id=b.id), grpc.StatusCode.NOT_FOUND),
        (invite(kit.as_agent(c.id), chat_id=chat, agent_id=b.id), grpc.StatusCode.PERMISSION_DENIED),
        (invite(kit.visitor("v"), chat_id=chat, agent_id=b.id), grpc.StatusCode.PERMISSION_DENIED),
    ]
    for call, expected in cases:
        assert await status_of(call) == expected
    await invite(chat_id=chat, agent_id=b.id)
    assert await status_of(invite(chat_id=chat, agent_id=b.id)) == grpc.StatusCode.FAILED_PRECONDITION  # twice
    members = await kit.stub.ListMembers(pb.ListMembersRequest(chat_id=chat), metadata=kit.admin())
    assert [m.agent_id for m in members.members] == [a.id, b.id]
    assert (
        await status_of(kit.stub.ListMembers(pb.ListMembersRequest(chat_id="x"), metadata=kit.admin()))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_rout07_list_departments_for_agents(kit):
    await kit.department("Support")
    await kit.department("Sales")
    a = await kit.agent("a@example.com", [])
    listed = await kit.stub.ListDepartments(pb.ListDepartmentsRequest(), metadata=kit.as_agent(a.id))
    assert [d.name for d in listed.departments] == ["Sales", "Support"]
