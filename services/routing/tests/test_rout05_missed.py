"""ROUT-05: a chat nobody takes within the department's maximum wait becomes a missed
chat, with reason, waiting time and department, published as an event."""

from __future__ import annotations

import grpc
from kaiwa.routing.v1 import routing_pb2 as pb

from tests.fixtures import status_of


async def test_rout05_unanswered_chats_become_missed_with_reason_wait_and_department(kit, events):
    empty = await kit.department("Night shift", max_wait_seconds=0.3)
    busy = await kit.department("Sales", pb.STRATEGY_RING_ALL, max_wait_seconds=0.6)
    a = await kit.agent("a@example.com", [busy.id])
    nobody_online = await kit.start_chat(empty.id, visitor_email="late@visitor.jp")
    ignored = await kit.start_chat(busy.id)
    await kit.wait_offers(a.id, lambda o: ignored in o)

    missed = await events.wait("chat_missed", chat_id=nobody_online)
    assert missed[0].reason == "no_agent_online" and missed[0].department_id == empty.id
    missed = await events.wait("chat_missed", chat_id=ignored)
    assert missed[0].reason == "no_agent_accepted" and missed[0].department_id == busy.id
    assert await kit.offers(a.id) == []  # the offer is withdrawn
    assert (await kit.assignment(ignored)).state == pb.ASSIGNMENT_STATE_MISSED
    late = kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=ignored), metadata=kit.as_agent(a.id))
    assert await status_of(late) == grpc.StatusCode.FAILED_PRECONDITION

    listed = await kit.stub.ListMissedChats(pb.ListMissedChatsRequest(), metadata=kit.as_agent(a.id))
    by_chat = {c.chat_id: c for c in listed.chats}
    assert set(by_chat) == {nobody_online, ignored}
    assert by_chat[nobody_online].reason == "no_agent_online" and by_chat[nobody_online].visitor_email == "late@visitor.jp"
    assert by_chat[ignored].waited_seconds >= 0 and by_chat[ignored].department_id == busy.id
    only_sales = await kit.stub.ListMissedChats(pb.ListMissedChatsRequest(department_id=busy.id), metadata=kit.admin())
    assert [c.chat_id for c in only_sales.chats] == [ignored]
    assert (
        await status_of(kit.stub.ListMissedChats(pb.ListMissedChatsRequest(limit=5000), metadata=kit.admin()))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await status_of(kit.stub.ListMissedChats(pb.ListMissedChatsRequest(), metadata=kit.visitor("v")))
        == grpc.StatusCode.PERMISSION_DENIED
    )


async def test_rout05_a_chat_taken_in_time_is_not_missed(kit, events):
    dept = await kit.department("Sales", max_wait_seconds=0.5)
    a = await kit.agent("a@example.com", [dept.id])
    chat = await kit.start_chat(dept.id)
    await kit.wait_offers(a.id, lambda o: chat in o)
    await kit.stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat), metadata=kit.as_agent(a.id))
    other = await kit.start_chat(dept.id)  # a later chat that does get missed: the timers ran
    await events.wait("chat_missed", chat_id=other)
    assert events.of("chat_missed", chat_id=chat) == []
    assert (await kit.assignment(chat)).state == pb.ASSIGNMENT_STATE_ASSIGNED
