"""ROUT-02: calls that race their own events, with the conversation service out of reach.
Routing cannot ask whether a chat it has not heard of exists, so it waits for the event
and answers UNAVAILABLE (retry) when none comes; chats it knows never need conversation."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest
from kaiwa.routing.v1 import routing_pb2 as pb

from kaiwa_routing.arrivals import ARRIVAL_WAIT
from tests.fixtures import status_of


@pytest.fixture(scope="module")
def conversation():
    """No conversation service: routing's address for it leads nowhere (see conftest)."""
    return None


async def test_rout02_with_conversation_down_an_unknown_chat_is_unavailable_and_a_late_event_is_awaited(kit):
    sales = await kit.department("Sales")
    a = await kit.agent("a@example.com", [sales.id])
    known = await kit.start_chat(sales.id)
    await kit.wait_offers(a.id, lambda o: known in o)
    assert (await kit.assignment(known)).state == pb.ASSIGNMENT_STATE_QUEUED

    started = time.monotonic()
    nowhere = kit.stub.GetAssignment(pb.GetAssignmentRequest(chat_id=str(uuid.uuid4())), metadata=kit.admin())
    assert await status_of(nowhere) == grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started >= ARRIVAL_WAIT * 0.9

    # The event arrives while the call waits: the call goes on as usual.
    late = str(uuid.uuid4())
    assign = asyncio.ensure_future(kit.stub.AssignChat(pb.AssignChatRequest(chat_id=late, agent_id=a.id), metadata=kit.admin()))
    await asyncio.sleep(ARRIVAL_WAIT / 4)
    await kit.start_chat(sales.id, chat_id=late)
    assigned = await assign
    assert assigned.chat_id == late and assigned.agent_id == a.id and assigned.state == pb.ASSIGNMENT_STATE_ASSIGNED
