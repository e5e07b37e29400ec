"""ROUT-02: ring-all offers, first accept wins, capacity freed or an agent coming online pulls the queue."""

from __future__ import annotations

import uuid

import grpc
from kaiwa.events.v1 import conversation_pb2 as conv
from kaiwa.routing.v1 import routing_pb2 as pb

from tests.fixtures import auth, status_of


async def test_rout02_ring_all_offers_every_online_agent_and_first_accept_wins(kit, events):
    sales = await kit.department("Sales", pb.STRATEGY_RING_ALL)
    a = await kit.agent("a@example.com", [sales.id])
    b = await kit.agent("b@example.com", [sales.id])
    away = await kit.agent("c@example.com", [sales.id])
    await kit.stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_AWAY), metadata=kit.as_agent(away.id))
    offline = await kit.agent("d@example.com", [sales.id], online=False)

    chat = await kit.start_chat(sales.id)
    await kit.wait_offers(a.id, lambda o: chat in o)
    await kit.wait_offers(b.id, lambda o: chat in o)
    assert await kit.offers(away.id) == [] and await kit.offers(offline.id) == []
    offered = await events.wait("chat_offered", chat_id=chat)
    assert sorted(offered[0].agent_ids) == sorted([a.id, b.id])
    queued = await kit.assignment(chat)
    assert queued.state == pb.ASSIGNMENT_STATE_QUEUED and queued.department_id == sales.id

    accepted = await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(b.id))
    assert accepted.state == pb.ASSIGNMENT_STATE_ASSIGNED and accepted.agent_id == b.id
    assert await kit.offers(a.id) == []  # withdrawn at once
    late = kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(a.id))
    assert await status_of(late) == grpc.StatusCode.FAILED_PRECONDITION
    assigned = await events.wait("chat_assigned", chat_id=chat)
    assert assigned[0].agent_id == b.id and assigned[0].how == "accepted" and assigned[0].agent_name == "B"
    assert (await kit.wait_agent(b.id, 1)).active_chats == 1

    await kit.end_chat(chat, b.id)
    await kit.wait_state(chat, pb.ASSIGNMENT_STATE_ENDED)
    await kit.wait_agent(b.id, 0)


async def test_rout02_freed_capacity_and_an_agent_coming_online_pull_the_queue(kit, events):
    sales = await kit.department("Sales")
    a = await kit.agent("a@example.com", [sales.id], max_chats=1)
    first = await kit.start_chat(sales.id)
    await kit.wait_offers(a.id, lambda o: o == [first])
    second = await kit.start_chat(sales.id)
    await kit.wait_state(second, pb.ASSIGNMENT_STATE_QUEUED)
    assert await kit.offers(a.id) == [first]  # one slot: one offer, the head of the queue
    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=first), metadata=kit.as_agent(a.id))
    assert await kit.offers(a.id) == []

    # An agent coming online takes the waiting chat.
    b = await kit.agent("b@example.com", [sales.id], max_chats=1)
    await kit.wait_offers(b.id, lambda o: o == [second])
    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=second), metadata=kit.as_agent(b.id))

    # Capacity freed by a chat's end (or completion) is offered to the next waiting chat.
    third = await kit.start_chat(sales.id)
    await kit.wait_state(third, pb.ASSIGNMENT_STATE_QUEUED)
    await kit.publish(conv.ChatCompleted(chat_id=first, agent_id=a.id, reason="countdown"))
    await kit.wait_offers(a.id, lambda o: o == [third])
    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=third), metadata=kit.as_agent(a.id))
    await kit.end_chat(first, a.id)  # ended after completed: no double release
    agent = await kit.wait_agent(a.id, 1)
    assert agent.active_chats == 1


async def test_rout02_bot_chats_wait_for_the_hand_over(kit):
    sales = await kit.department("Sales")
    a = await kit.agent("a@example.com", [sales.id])
    chat = await kit.start_chat(sales.id, state="bot")
    await kit.wait_state(chat, pb.ASSIGNMENT_STATE_BOT)
    assert await kit.offers(a.id) == []
    await kit.publish(conv.BotHandedOver(chat_id=chat, department_id=sales.id, visitor_id="v-1", summary="wants a human"))
    await kit.wait_offers(a.id, lambda o: o == [chat])


async def test_rout02_accept_bad_input(kit, tenant):
    sales = await kit.department("Sales")
    a = await kit.agent("a@example.com", [sales.id])
    other_dept = await kit.department("Support")
    b = await kit.agent("b@example.com", [other_dept.id])
    chat = await kit.start_chat(sales.id)
    await kit.wait_offers(a.id, lambda o: chat in o)
    stub = kit.stub
    accept = lambda chat_id, md: stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat_id), metadata=md)
    assert await status_of(accept("", kit.as_agent(a.id))) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(accept("nope", kit.as_agent(a.id))) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(accept(str(uuid.uuid4()), kit.as_agent(a.id))) == grpc.StatusCode.NOT_FOUND
    assert await status_of(accept(chat, kit.as_agent(b.id))) == grpc.StatusCode.FAILED_PRECONDITION  # not offered
    assert await status_of(accept(chat, kit.visitor("v-1"))) == grpc.StatusCode.PERMISSION_DENIED
    assert await status_of(accept(chat, kit.admin())) == grpc.StatusCode.PERMISSION_DENIED
    assert await status_of(accept(chat, auth(f"{tenant}-x", "agent", a.id))) == grpc.StatusCode.NOT_FOUND
    assert await status_of(accept(chat, kit.as_agent("not-an-agent"))) == grpc.StatusCode.PERMISSION_DENIED
    assert await status_of(stub.ListOffers(pb.ListOffersRequest(), metadata=kit.admin())) == grpc.StatusCode.PERMISSION_DENIED
    assert (
        await status_of(stub.GetAssignment(pb.GetAssignmentRequest(chat_id=str(uuid.uuid4())), metadata=kit.admin()))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await status_of(stub.GetAssignment(pb.GetAssignmentRequest(chat_id=chat), metadata=kit.visitor("v-1")))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    still = await kit.assignment(chat)
    assert still.state == pb.ASSIGNMENT_STATE_QUEUED and await kit.offers(a.id) == [chat]
    taken = await accept(chat, kit.as_agent(a.id))
    assert taken.agent_id == a.id
    assert await status_of(accept(chat, kit.as_agent(a.id))) == grpc.StatusCode.FAILED_PRECONDITION


async def test_rout02_reopened_chat_goes_back_to_its_agent_or_else_the_queue(kit, events):
    sales = await kit.department("Sales")
    a = await kit.agent("a@example.com", [sales.id])
    b = await kit.agent("b@example.com", [sales.id])
    chat = await kit.start_chat(sales.id)
    await kit.wait_offers(a.id, lambda o: chat in o)
    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(a.id))
    await kit.end_chat(chat, a.id)
    await kit.wait_agent(a.id, 0)
    await kit.publish(conv.ChatReopened(chat_id=chat, agent_id=a.id, department_id=sales.id))
    await kit.wait_state(chat, pb.ASSIGNMENT_STATE_ASSIGNED, a.id)
    await kit.wait_agent(a.id, 1)
    assert len(await events.wait("chat_assigned", 2, chat_id=chat, agent_id=a.id)) == 2

    await kit.end_chat(chat, a.id)
    await kit.wait_state(chat, pb.ASSIGNMENT_STATE_ENDED)
    await kit.stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_OFFLINE), metadata=kit.as_agent(a.id))
    await kit.publish(conv.ChatReopened(chat_id=chat, agent_id=a.id, department_id=sales.id))
    await kit.wait_offers(b.id, lambda o: chat in o)
    assert (await kit.assignment(chat)).state == pb.ASSIGNMENT_STATE_QUEUED
