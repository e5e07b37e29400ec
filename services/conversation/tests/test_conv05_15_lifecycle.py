"""CONV-05 lifecycle (send-and-complete, end, reopen by hand or by the agent's reply, a
customer message to a completed chat, session window) and CONV-15 bot conversations
handed over to a human."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.events.v1.routing_pb2 import AgentInvited, ChatAssigned

from services.conversation.tests.helpers import visitor_of
from tests.fixtures import auth, eventually, status_of

AGENT = "agent-1"


async def _types(conv, tenant, chat_id, locale="en"):
    return [
        (m.system.type, m.system.rendered)
        for m in (
            await conv.stub.ListMessages(
                pb.ListMessagesRequest(chat_id=chat_id, locale=locale), metadata=auth(tenant, "agent", AGENT)
            )
        ).messages
        if m.system.type
    ]


async def test_conv05_customer_message_does_not_reopen_completed_chat(conv, tenant):
    chat = await conv.open_chat(tenant, agent_name="川根太郎")
    agent, visitor = auth(tenant, "agent", AGENT), visitor_of(chat, tenant)
    await conv.routing_event(tenant, AgentInvited(chat_id=chat.id, agent_id="agent-2", agent_name="Ben", by_agent_id=AGENT))

    async def invited():
        current = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)
        return any(p.agent_id == "agent-2" for p in current.participants)

    await eventually(invited, "agent-2 is invited")
    assert (
        await status_of(
            conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="bye", complete=True), metadata=visitor)
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=chat.id, text="Anything else? Closing now.", complete=True), metadata=agent
    )
    completed = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)
    assert completed.state == pb.CHAT_STATE_COMPLETED and completed.end_reason == "agent"
    agent_sees: list = []

    async def watch():
        async for event in conv.stub.StreamChat(
            pb.StreamChatRequest(chat_id=chat.id, after_seq=completed.last_seq), metadata=agent
        ):
            agent_sees.append(event)

    watcher = asyncio.create_task(watch())
    late = await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=chat.id, text="Actually, one more question"), metadata=visitor
    )
    channel = auth(tenant, "service", "whatsapp-adapter")
    await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="and another"), metadata=channel)
    await eventually(lambda: sum(e.HasField("message") for e in agent_sees) >= 2, "the agent sees the customer's messages")
    watcher.cancel()
    assert [e.message.text for e in agent_sees if e.HasField("message")] == ["Actually, one more question", "and another"]
    still = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)
    assert still.state == pb.CHAT_STATE_COMPLETED and still.last_seq == late.seq + 1, "no reopen, no state change"
    assert [t for t, _ in await _types(conv, tenant, chat.id)][-1] == "completed"
    await asyncio.sleep(0.3)
    assert await conv.events(tenant, "chat_reopened", chat.id) == []
    # Only the assigned agent reopens it by replying; an invited agent's reply is refused.
    assert (
        await status_of(
            conv.stub.SendMessage(
                pb.SendMessageRequest(chat_id=chat.id, text="me too"), metadata=auth(tenant, "agent", "agent-2")
            )
        )
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    assert (await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)).state == pb.CHAT_STATE_COMPLETED


async def test_conv05_agent_reply_reopens_completed_chat(conv, tenant):
    chat = await conv.open_chat(tenant, agent_name="川根太郎")
    agent, visitor = auth(tenant, "agent", AGENT), visitor_of(chat, tenant)
    await conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=agent)
    await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="one more question"), metadata=visitor)
    note = await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=chat.id, text="checking", kind=pb.MESSAGE_KIND_NOTE), metadata=agent
    )
    assert note.kind == pb.MESSAGE_KIND_NOTE
    assert (await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)).state == pb.CHAT_STATE_COMPLETED, (
        "a note does not reopen"
    )
    reply = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="Sure, go ahead"), metadata=agent)
    reopened = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)
    assert reopened.state == pb.CHAT_STATE_OPEN and reopened.agent_id == AGENT
    assert reply.status == pb.MESSAGE_STATUS_SENT and reply.seq == reopened.last_seq
    assert (await _types(conv, tenant, chat.id, "ja"))[-1] == ("reopened", "川根太郎がチャットを再開しました")
    events = await eventually(lambda: conv.events(tenant, "chat_reopened", chat.id), "chat_reopened published")
    assert [(e.chat_reopened.state, e.chat_reopened.reason, e.chat_reopened.agent_id) for e in events] == [
        ("open", "agent", AGENT)
    ]
    for kind in ("chat_completed", "chat_ended"):
        assert len(await conv.events(tenant, kind, chat.id)) == 1


async def test_conv05_agent_reply_reopens_outside_session_window_only_with_template(conv, tenant):
    chat = await conv.open_chat(tenant, channel=pb.CHANNEL_WHATSAPP)
    agent, channel = auth(tenant, "agent", AGENT), auth(tenant, "service", "whatsapp-adapter")
    old = Timestamp()
    old.FromDatetime(datetime.now(timezone.utc) - timedelta(hours=30))
    await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="hi", channel_sent_at=old), metadata=channel)
    await conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=agent)
    assert (
        await status_of(conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="hello again"), metadata=agent))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    refused = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)
    assert refused.state == pb.CHAT_STATE_COMPLETED, "the refused reply left the chat completed"
    assert [t for t, _ in await _types(conv, tenant, chat.id)][-1] == "completed"
    template = pb.RichElement(type=pb.RICH_TYPE_TEMPLATE, template_name="follow_up", template_language="ja")
    sent = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, rich=template), metadata=agent)
    assert sent.rich.template_name == "follow_up"
    assert (await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)).state == pb.CHAT_STATE_OPEN


async def test_conv05_only_assigned_agent_completes_and_agent_reopens(conv, tenant):
    chat = await conv.open_chat(tenant)
    agent = auth(tenant, "agent", AGENT)
    for md in (auth(tenant, "agent", "agent-2"), auth(tenant, "admin", "boss")):
        assert (
            await status_of(conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=md))
            == grpc.StatusCode.PERMISSION_DENIED
        )
    assert (
        await status_of(conv.stub.ReopenChat(pb.ReopenChatRequest(chat_id=chat.id), metadata=agent))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    ended = await conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=agent)
    assert ended.state == pb.CHAT_STATE_ENDED
    assert (
        await status_of(conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=agent))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    completed = await conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=agent)
    assert completed.state == pb.CHAT_STATE_COMPLETED
    assert (
        await status_of(conv.stub.ReopenChat(pb.ReopenChatRequest(chat_id=chat.id), metadata=auth(tenant, "agent", "agent-2")))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    reopened = await conv.stub.ReopenChat(pb.ReopenChatRequest(chat_id=chat.id), metadata=agent)
    assert reopened.state == pb.CHAT_STATE_OPEN and not reopened.HasField("ended_at")
    ended_events = await eventually(lambda: conv.events(tenant, "chat_ended", chat.id), "chat_ended")
    assert len(ended_events) == 1, "ending then completing publishes chat_ended once"
    for bad in (pb.CompleteChatRequest(chat_id="nope"), pb.CompleteChatRequest()):
        assert await status_of(conv.stub.CompleteChat(bad, metadata=agent)) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        await status_of(conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=auth("other", "agent", AGENT)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await status_of(conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=visitor_of(chat, tenant)))
        == grpc.StatusCode.PERMISSION_DENIED
    )


async def test_conv05_visitor_ends_own_chat(conv, tenant):
    chat = await conv.start(tenant)
    ended = await conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=visitor_of(chat, tenant))
    assert ended.state == pb.CHAT_STATE_ENDED and ended.end_reason == "visitor"
    assert (
        await status_of(
            conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id, countdown_seconds=30), metadata=visitor_of(chat, tenant))
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )


async def test_conv05_reopen_outside_session_window_needs_template(conv, tenant):
    chat = await conv.open_chat(tenant, channel=pb.CHANNEL_WHATSAPP)
    agent, channel = auth(tenant, "agent", AGENT), auth(tenant, "service", "whatsapp-adapter")
    old = Timestamp()
    old.FromDatetime(datetime.now(timezone.utc) - timedelta(hours=30))
    await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="hi", channel_sent_at=old), metadata=channel)
    await conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=agent)
    assert (
        await status_of(conv.stub.ReopenChat(pb.ReopenChatRequest(chat_id=chat.id), metadata=agent))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    not_template = pb.RichElement(type=pb.RICH_TYPE_QUICK_REPLIES, options=[pb.RichOption(title="ok")])
    assert (
        await status_of(conv.stub.ReopenChat(pb.ReopenChatRequest(chat_id=chat.id, template=not_template), metadata=agent))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    template = pb.RichElement(type=pb.RICH_TYPE_TEMPLATE, template_name="follow_up", template_language="en")
    reopened = await conv.stub.ReopenChat(pb.ReopenChatRequest(chat_id=chat.id, template=template), metadata=agent)
    assert reopened.state == pb.CHAT_STATE_OPEN
    last = (await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=agent)).messages[-1]
    assert last.rich.template_name == "follow_up" and last.status == pb.MESSAGE_STATUS_SENT
    bad_time = Timestamp()
    bad_time.FromDatetime(datetime.now(timezone.utc) + timedelta(days=2))
    assert (
        await status_of(
            conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="x", channel_sent_at=bad_time), metadata=channel)
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await status_of(
            conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="x", channel_sent_at=old), metadata=agent)
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )


async def test_conv15_bot_conversation_visible_before_agent_and_handed_over_with_context(conv, tenant):
    chat = await conv.start(tenant, bot_id="faq-bot", question="返品したい", department_id="")
    assert chat.state == pb.CHAT_STATE_BOT
    bot = auth(tenant, "service", "faq-bot")
    options = pb.RichElement(type=pb.RICH_TYPE_QUICK_REPLIES, options=[pb.RichOption(title="注文番号あり", payload="yes")])
    await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=chat.id, text="注文番号はお持ちですか?", rich=options, as_sender=pb.SENDER_KIND_BOT),
        metadata=bot,
    )
    await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="注文番号あり"), metadata=visitor_of(chat, tenant))
    started = await eventually(lambda: conv.events(tenant, "chat_started", chat.id), "chat_started")
    assert started[0].chat_started.state == "bot"

    # An agent can read the bot's conversation (rich elements included) before joining.
    watcher = auth(tenant, "agent", "agent-5")
    early = (await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=watcher)).messages
    assert [m.sender_kind for m in early if m.kind != pb.MESSAGE_KIND_SYSTEM] == [
        pb.SENDER_KIND_VISITOR,
        pb.SENDER_KIND_BOT,
        pb.SENDER_KIND_VISITOR,
    ]
    assert early[1].rich.options[0].title == "注文番号あり"
    assert (
        await status_of(conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="hi"), metadata=watcher))
        == grpc.StatusCode.PERMISSION_DENIED
    )

    returns = await conv.department(tenant, "Returns")
    for department, code in (("returns", grpc.StatusCode.INVALID_ARGUMENT), (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND)):
        assert (
            await status_of(
                conv.stub.HandOverToHuman(pb.HandOverToHumanRequest(chat_id=chat.id, department_id=department), metadata=bot)
            )
            == code
        )
    queued = await conv.stub.HandOverToHuman(
        pb.HandOverToHumanRequest(chat_id=chat.id, department_id=returns, summary="Wants to return order 1234"), metadata=bot
    )
    assert queued.state == pb.CHAT_STATE_QUEUED and queued.department_id == returns
    handed = await eventually(lambda: conv.events(tenant, "bot_handed_over", chat.id), "bot_handed_over")
    assert (handed[0].bot_handed_over.department_id, handed[0].bot_handed_over.summary) == (returns, "Wants to return order 1234")
    assert (
        await status_of(conv.stub.HandOverToHuman(pb.HandOverToHumanRequest(chat_id=chat.id), metadata=bot))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    assert (
        await status_of(
            conv.stub.SendMessage(
                pb.SendMessageRequest(chat_id=chat.id, text="still me", as_sender=pb.SENDER_KIND_BOT), metadata=bot
            )
        )
        == grpc.StatusCode.FAILED_PRECONDITION
    )

    await conv.routing_event(tenant, ChatAssigned(chat_id=chat.id, agent_id="agent-5", agent_name="Eri", how="accepted"))
    await conv.wait_state(tenant, chat.id, pb.CHAT_STATE_OPEN)
    full = (await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=watcher)).messages
    texts = [m.text for m in full]
    assert texts.index("返品したい") < texts.index("注文番号はお持ちですか?") < texts.index("Wants to return order 1234")
    assert [m.system.type for m in full if m.system.type][-2:] == ["bot_handover", "accepted"]
    visitor_view = (
        await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=visitor_of(chat, tenant))
    ).messages
    assert "Wants to return order 1234" not in [m.text for m in visitor_view], "the summary is an internal note"
    assert (
        await status_of(conv.stub.HandOverToHuman(pb.HandOverToHumanRequest(chat_id=chat.id), metadata=watcher))
        == grpc.StatusCode.PERMISSION_DENIED
    )
