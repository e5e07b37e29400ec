"""ROUT-02: an agent who accepted a chat in routing can act on it at once, before
routing's chat_assigned has reached conversation.

The real routing service runs beside conversation and learns every chat from
conversation's events; its own events reach conversation only when the test publishes
them (see helpers.conversation_with_routing), so "the event is late" is exact here: the
test decides when it arrives, or that it never does.
"""

from __future__ import annotations

import asyncio
import time

import grpc
from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.events.v1.routing_pb2 import AgentInvited, ChatAssigned
from kaiwa.routing.v1 import routing_pb2 as rpb

from services.conversation.tests.helpers import SETTLE_SECONDS
from services.conversation.tests.test_conv05_start_departments_request_ids import replica_reaching_routing_at
from tests.fixtures import auth, eventually, status_of


async def _agent(conv, tenant, email: str, name: str, department: str) -> tuple[str, tuple]:
    agent = await conv.routing_stub.UpsertAgent(
        rpb.UpsertAgentRequest(email=email, name=name, department_ids=[department], max_chats=5),
        metadata=auth(tenant, "admin", "root"),
    )
    md = auth(tenant, "agent", agent.id)
    await conv.routing_stub.SetAvailability(rpb.SetAvailabilityRequest(availability=rpb.AVAILABILITY_ONLINE), metadata=md)
    return agent.id, md


async def _accepted(conv, tenant) -> tuple[pb.Chat, str, tuple]:
    """A chat started in conversation, offered by routing, accepted by 川根太郎 in routing;
    conversation has not seen chat_assigned."""
    sales = await conv.department(tenant)
    agent_id, md = await _agent(conv, tenant, "kawane@example.com", "川根太郎", sales)
    chat = await conv.stub.StartChat(
        pb.StartChatRequest(channel=pb.CHANNEL_WEB, department_id=sales), metadata=auth(tenant, "visitor", "v-1")
    )

    async def offered():
        offers = await conv.routing_stub.ListOffers(rpb.ListOffersRequest(), metadata=md)
        return chat.id in [o.chat_id for o in offers.offers]

    await eventually(offered, "routing offers the chat")
    await conv.routing_stub.AcceptChat(rpb.AcceptChatRequest(chat_id=chat.id), metadata=md)
    return chat, agent_id, md


async def _later(seconds: float, coroutine):
    await asyncio.sleep(seconds)
    return await coroutine


async def _system_types(conv, tenant, chat_id) -> list[str]:
    messages = await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat_id), metadata=auth(tenant, "admin", "root"))
    return [m.system.type for m in messages.messages if m.system.type]


async def test_rout02_agent_who_accepted_acts_at_once_while_the_event_is_on_its_way(conv, tenant):
    chat, agent_id, md = await _accepted(conv, tenant)
    assigned = ChatAssigned(chat_id=chat.id, agent_id=agent_id, agent_name="川根太郎", how="accepted")
    began = time.monotonic()
    sent, typing, countdown, _ = await asyncio.gather(
        conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="こんにちは"), metadata=md),
        conv.stub.NotifyTyping(pb.NotifyTypingRequest(chat_id=chat.id, typing=True), metadata=md),
        conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id, countdown_seconds=90), metadata=md),
        _later(0.4, conv.routing_event(tenant, assigned)),
    )
    assert time.monotonic() - began >= 0.4, "the calls waited for the event instead of being refused"
    assert sent.sender_id == agent_id and not typing.countdown_cancelled and countdown.HasField("countdown_ends_at")
    types = await _system_types(conv, tenant, chat.id)
    assert types.count("accepted") == 1 and types.count("countdown_started") == 1, types
    cancelled = await conv.stub.CancelEndChat(pb.CancelEndChatRequest(chat_id=chat.id), metadata=md)
    assert not cancelled.HasField("countdown_ends_at")
    completed = await conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=md)
    assert completed.state == pb.CHAT_STATE_COMPLETED


async def test_rout02_unavailable_when_routing_says_yes_but_the_event_does_not_come(conv, tenant):
    chat, agent_id, md = await _accepted(conv, tenant)
    began = time.monotonic()
    calls = [
        conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="hello"), metadata=md),
        conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=md),
        conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=md),
        conv.stub.NotifyTyping(pb.NotifyTypingRequest(chat_id=chat.id, typing=True), metadata=md),
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [r.code() for r in results] == [grpc.StatusCode.UNAVAILABLE] * 4
    assert all("retry" in r.details() for r in results)
    assert SETTLE_SECONDS <= time.monotonic() - began < SETTLE_SECONDS + 2, "bounded wait"
    current = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=auth(tenant, "admin", "root"))
    assert current.state == pb.CHAT_STATE_QUEUED and current.last_seq == chat.last_seq, "nothing was written"
    # The event arrives after all; the retry goes through, and the assignment is shown once.
    await conv.routing_event(tenant, ChatAssigned(chat_id=chat.id, agent_id=agent_id, agent_name="川根太郎", how="accepted"))
    retried = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="hello"), metadata=md)
    assert retried.sender_kind == pb.SENDER_KIND_AGENT
    assert (await _system_types(conv, tenant, chat.id)).count("accepted") == 1


async def test_rout02_another_agents_chat_is_refused_at_once(conv, tenant):
    chat, agent_id, md = await _accepted(conv, tenant)
    await conv.routing_event(tenant, ChatAssigned(chat_id=chat.id, agent_id=agent_id, agent_name="川根太郎", how="accepted"))
    await conv.wait_state(tenant, chat.id, pb.CHAT_STATE_OPEN)
    _, other = await _agent(conv, tenant, "aiko@example.com", "Aiko", chat.department_id)
    queued = await conv.stub.StartChat(pb.StartChatRequest(channel=pb.CHANNEL_WEB), metadata=auth(tenant, "visitor", "v2"))
    await conv.routing_knows(tenant, queued.id)
    began = time.monotonic()
    for call in (
        conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="mine?"), metadata=other),
        conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=other),
        conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=other),
        conv.stub.ReopenChat(pb.ReopenChatRequest(chat_id=chat.id), metadata=other),
        conv.stub.SendMessage(pb.SendMessageRequest(chat_id=queued.id, text="nobody's yet"), metadata=other),
    ):
        assert await status_of(call) == grpc.StatusCode.PERMISSION_DENIED
    assert time.monotonic() - began < SETTLE_SECONDS, "routing said no: no waiting"


async def test_rout02_invited_agent_writes_before_the_invitation_event_arrives(conv, tenant):
    chat, agent_id, md = await _accepted(conv, tenant)
    await conv.routing_event(tenant, ChatAssigned(chat_id=chat.id, agent_id=agent_id, agent_name="川根太郎", how="accepted"))
    await conv.wait_state(tenant, chat.id, pb.CHAT_STATE_OPEN)
    guest_id, guest = await _agent(conv, tenant, "ben@example.com", "Ben", chat.department_id)
    await conv.routing_stub.InviteAgent(rpb.InviteAgentRequest(chat_id=chat.id, agent_id=guest_id), metadata=md)
    invited = AgentInvited(chat_id=chat.id, agent_id=guest_id, agent_name="Ben", by_agent_id=agent_id)
    sent, _ = await asyncio.gather(
        conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="Ben here"), metadata=guest),
        _later(0.3, conv.routing_event(tenant, invited)),
    )
    assert sent.sender_id == guest_id
    assert (
        await status_of(conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=guest))
        == grpc.StatusCode.PERMISSION_DENIED
    ), "an invited agent is a member, not the owner"


async def test_rout02_while_routing_is_down_conversations_own_view_still_decides_yes(conv, tenant):
    chat = await conv.open_chat(tenant, agent="agent-1")
    async with replica_reaching_routing_at(conv, "127.0.0.1:1") as stub:
        sent = await stub.SendMessage(
            pb.SendMessageRequest(chat_id=chat.id, text="still here"), metadata=auth(tenant, "agent", "agent-1")
        )
        assert sent.sender_id == "agent-1", "the assigned agent needs no answer from routing"
        refused = stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="me?"), metadata=auth(tenant, "agent", "agent-2"))
        assert await status_of(refused) == grpc.StatusCode.UNAVAILABLE, "cannot tell without routing: retry"
