"""The first flow across all five services, each in its own OS process.

admin sets up a department and an agent -> the agent goes online -> a visitor gets a
token from the public widget key and is tracked -> starts a chat -> routing offers it ->
the agent accepts -> both exchange messages, following the chat live (and resuming
after a reconnect) -> the agent ends it -> crm_bridge creates a lead with the transcript
-> ai_assist rewrites a draft (through a local server speaking the OpenAI wire format).
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from kaiwa.ai_assist.v1 import ai_assist_pb2 as ai
from kaiwa.ai_assist.v1.ai_assist_pb2_grpc import AiAssistServiceStub
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as crm
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub
from kaiwa.visitor.v1 import visitor_pb2 as vis
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

from tests.e2e.suite import Suite
from tests.fixtures import auth, eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def suite():
    async with Suite.start() as running_suite:
        yield running_suite


async def _collect(stream, into: list, stop_after_seq: int | None = None) -> None:
    async for event in stream:
        into.append(event)
        if stop_after_seq is not None and event.seq >= stop_after_seq:
            return


async def test_plat01_first_flow_through_all_five_services(suite: Suite, tenant):
    admin = auth(tenant, "admin", "admin@example.com")
    routing = RoutingServiceStub(suite.channel("routing"))
    conversation = ConversationServiceStub(suite.channel("conversation"))
    visitor = VisitorServiceStub(suite.channel("visitor"))
    crm_bridge = CrmBridgeServiceStub(suite.channel("crm_bridge"))
    ai_assist = AiAssistServiceStub(suite.channel("ai_assist"))

    # An admin creates a department and an agent; the agent goes online.
    sales = await routing.UpsertDepartment(rt.UpsertDepartmentRequest(name="Sales"), metadata=admin)
    agent = await routing.UpsertAgent(
        rt.UpsertAgentRequest(email="aiko@example.com", name="Aiko", department_ids=[sales.id], max_chats=2), metadata=admin
    )
    as_agent = auth(tenant, "agent", agent.id)
    await routing.SetAvailability(rt.SetAvailabilityRequest(availability=rt.AVAILABILITY_ONLINE), metadata=as_agent)

    # The widget trades the public key for a visitor token; the page view is tracked.
    key = await visitor.CreateWidgetKey(vis.CreateWidgetKeyRequest(label="site"), metadata=admin)
    issued = await visitor.IssueVisitorToken(vis.IssueVisitorTokenRequest(widget_key=key.key))
    as_visitor = (("authorization", f"Bearer {issued.token}"),)
    view = await visitor.TrackPageView(
        vis.TrackPageViewRequest(
            visitor_id=issued.visitor_id,
            url="https://shop.example.com/pricing",
            title="Pricing",
            referrer="https://www.google.com/search?q=kaiwa",
            user_agent="Mozilla/5.0",
            ip="203.0.113.7",
        ),
        metadata=as_visitor,
    )
    assert view.landing

    # The visitor starts a chat: queued, offered to the online agent, accepted -> open.
    chat = await conversation.StartChat(
        conv.StartChatRequest(
            channel=conv.CHANNEL_WEB,
            department_id=sales.id,
            question="Do you ship to Osaka?",
            visitor_name="Taro",
            visitor_email="taro@example.com",
        ),
        metadata=as_visitor,
    )
    assert chat.state == conv.CHAT_STATE_QUEUED

    async def offered():
        offers = await routing.ListOffers(rt.ListOffersRequest(), metadata=as_agent)
        return chat.id in [o.chat_id for o in offers.offers]

    await eventually(offered, "the chat is offered to the online agent")
    assignment = await routing.AcceptChat(rt.AcceptChatRequest(chat_id=chat.id), metadata=as_agent)
    assert assignment.agent_id == agent.id

    async def is_open():
        current = await conversation.GetChat(conv.GetChatRequest(chat_id=chat.id), metadata=as_agent)
        return current.state == conv.CHAT_STATE_OPEN and current.agent_id == agent.id

    await eventually(is_open, "the chat is open with the agent")

    # Both follow the chat live; messages go both ways.
    seen: list = []
    watcher = asyncio.create_task(
        _collect(conversation.StreamChat(conv.StreamChatRequest(chat_id=chat.id), metadata=as_visitor), seen)
    )
    first = await conversation.SendMessage(conv.SendMessageRequest(chat_id=chat.id, text="Yes, we do!"), metadata=as_agent)
    await conversation.SendMessage(conv.SendMessageRequest(chat_id=chat.id, text="Great, thanks"), metadata=as_visitor)

    async def both_seen():
        texts = [e.message.text for e in seen if e.HasField("message")]
        return "Yes, we do!" in texts and "Great, thanks" in texts

    await eventually(both_seen, "the visitor's stream shows both messages")
    watcher.cancel()
    system_events = [e.message.system.type for e in seen if e.HasField("message") and e.message.system.type]
    assert any(t in ("assigned", "accepted") for t in system_events), system_events

    # A reconnecting client resumes after the last sequence it saw: no gap, no duplicate.
    await conversation.SendMessage(conv.SendMessageRequest(chat_id=chat.id, text="One more thing"), metadata=as_agent)
    resumed: list = []
    latest = await conversation.GetChat(conv.GetChatRequest(chat_id=chat.id), metadata=as_agent)
    await asyncio.wait_for(
        _collect(
            conversation.StreamChat(conv.StreamChatRequest(chat_id=chat.id, after_seq=first.seq), metadata=as_visitor),
            resumed,
            stop_after_seq=latest.last_seq,
        ),
        30,
    )
    seqs = [e.seq for e in resumed if e.seq]
    assert seqs == list(range(first.seq + 1, latest.last_seq + 1))

    # The agent ends the chat; crm_bridge creates a lead with the transcript attached.
    ended = await conversation.EndChat(conv.EndChatRequest(chat_id=chat.id), metadata=as_agent)
    assert ended.state == conv.CHAT_STATE_ENDED

    async def lead_with_transcript():
        try:
            record = await crm_bridge.FindRecord(crm.FindRecordRequest(email="taro@example.com"), metadata=admin)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return record if any(a.chat_id == chat.id for a in record.attachments) else None

    record = await eventually(lead_with_transcript, "crm_bridge has the lead with the transcript")
    assert record.type == crm.RECORD_TYPE_LEAD
    assert record.source == "chat"

    # The AI assistant rewrites a draft.
    rewritten = await ai_assist.Rewrite(
        ai.RewriteRequest(text="we can ship it tomorrow", tone=ai.TONE_POLITE, length=ai.LENGTH_LONGER), metadata=as_agent
    )
    assert rewritten.text and rewritten.text != "we can ship it tomorrow"
    assert suite.llm.requests, "the rewrite went through the LLM endpoint"
