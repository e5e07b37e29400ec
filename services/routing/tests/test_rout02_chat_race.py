"""ROUT-02: calls that race their own events. Routing learns a chat from conversation's
chat_started; a client calling routing right after StartChat must never hear NOT_FOUND for
a chat that exists. Routing asks conversation, waits for the event, or says UNAVAILABLE
(retry) when it does not come in time; an id that exists nowhere is NOT_FOUND at once."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest
from kaiwa.routing.v1 import routing_pb2 as pb

from kaiwa_routing.arrivals import ARRIVAL_WAIT
from services.routing.tests.kit import Kit
from tests.fixtures import status_of


async def _hold_back_chat_events(db):
    """Routing cannot write chat rows while this transaction holds its chats table in SHARE
    mode (reads go on): chat_started events wait unapplied, as on a slow bus."""
    held = db.transaction()
    await held.start()
    await db.execute("LOCK TABLE chats IN SHARE MODE")
    return held


async def test_rout02_assign_right_after_start_waits_for_the_event(kit, db):
    sales = await kit.department("Sales")
    a = await kit.agent("a@example.com", [sales.id])

    # As fast as a client goes: StartChat, then at once the visitor's position and an assignment.
    chat = await kit.start_chat_in_conversation(sales.id, "v-1")
    position = await kit.stub.GetQueuePosition(pb.GetQueuePositionRequest(chat_id=chat), metadata=kit.visitor("v-1"))
    assert position.chat_id == chat and position.state == pb.ASSIGNMENT_STATE_QUEUED
    assigned = await kit.stub.AssignChat(pb.AssignChatRequest(chat_id=chat, agent_id=a.id), metadata=kit.admin())
    assert assigned.state == pb.ASSIGNMENT_STATE_ASSIGNED and assigned.agent_id == a.id

    # The event held back a moment: the call waits for it instead of answering NOT_FOUND.
    held = await _hold_back_chat_events(db)
    late = await kit.start_chat_in_conversation(sales.id, "v-2")
    assign = asyncio.ensure_future(kit.stub.AssignChat(pb.AssignChatRequest(chat_id=late, agent_id=a.id), metadata=kit.admin()))
    await asyncio.sleep(ARRIVAL_WAIT / 3)
    assert not assign.done()
    await held.rollback()
    assigned = await assign
    assert assigned.chat_id == late and assigned.state == pb.ASSIGNMENT_STATE_ASSIGNED and assigned.agent_id == a.id
    assert (await kit.wait_agent(a.id, 2)).active_chats == 2


async def test_rout02_a_chat_whose_event_does_not_come_in_time_is_unavailable_then_found(kit, db):
    sales = await kit.department("Sales")
    a = await kit.agent("a@example.com", [sales.id])
    held = await _hold_back_chat_events(db)
    try:
        chat = await kit.start_chat_in_conversation(sales.id)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await kit.stub.AssignChat(pb.AssignChatRequest(chat_id=chat, agent_id=a.id), metadata=kit.admin())
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "not yet known to routing" in refused.value.details() and "retry" in refused.value.details()
        assert time.monotonic() - started >= ARRIVAL_WAIT * 0.9
    finally:
        await held.rollback()
    await kit.wait_state(chat, pb.ASSIGNMENT_STATE_QUEUED)
    retried = await kit.stub.AssignChat(pb.AssignChatRequest(chat_id=chat, agent_id=a.id), metadata=kit.admin())
    assert retried.state == pb.ASSIGNMENT_STATE_ASSIGNED and retried.agent_id == a.id


async def test_rout02_a_chat_id_that_exists_nowhere_is_not_found_at_once_on_every_chat_call(kit, tenant):
    sales = await kit.department("Sales")
    a = await kit.agent("a@example.com", [sales.id])
    other = Kit(kit.stub, kit.nc, f"{tenant}-other", kit.conversation)
    theirs = await other.start_chat_in_conversation((await other.department("Sales")).id)
    await other.wait_state(theirs, pb.ASSIGNMENT_STATE_QUEUED)  # known to routing, in the other tenant
    s, admin, agent = kit.stub, kit.admin(), kit.as_agent(a.id)
    for chat in (str(uuid.uuid4()), theirs):
        calls = [
            (s.AcceptChat, pb.AcceptChatRequest(chat_id=chat), agent),
            (s.DeclineChat, pb.DeclineChatRequest(chat_id=chat), agent),
            (s.GetAssignment, pb.GetAssignmentRequest(chat_id=chat), admin),
            (s.AssignChat, pb.AssignChatRequest(chat_id=chat, agent_id=a.id), admin),
            (s.GetQueuePosition, pb.GetQueuePositionRequest(chat_id=chat), admin),
            (s.TransferChat, pb.TransferChatRequest(chat_id=chat, to_department_name="Sales"), admin),
            (s.InviteAgent, pb.InviteAgentRequest(chat_id=chat, agent_id=a.id), admin),
            (s.ListMembers, pb.ListMembersRequest(chat_id=chat), admin),
        ]
        for method, request, md in calls:
            started = time.monotonic()
            assert await status_of(method(request, metadata=md)) == grpc.StatusCode.NOT_FOUND
            assert time.monotonic() - started < ARRIVAL_WAIT  # conversation said so: no wait
    assert (await other.assignment(theirs)).state == pb.ASSIGNMENT_STATE_QUEUED
