"""CONV-06: timed end (30/45/60/90 s countdown, cancelled by visitor input or the agent,
ending at zero, surviving a restart with two replicas) and inactivity auto-complete.
Countdowns run COUNTDOWN_SCALE times faster in these tests (30 s -> 0.6 s)."""

from __future__ import annotations

import asyncio
import uuid

import grpc
from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub

from kaiwa_conversation.main import make_spec
from services.conversation.tests.helpers import COUNTDOWN_SCALE, Harness, new_prefix, service, visitor_of
from tests.fixtures import auth, channel_to, eventually, status_of

AGENT = "agent-1"


async def system_types(conv, tenant, chat_id):
    msgs = (
        await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat_id), metadata=auth(tenant, "admin", "root"))
    ).messages
    return [m.system.type for m in msgs if m.system.type]


async def test_conv06_countdown_shows_on_visitor_stream_and_ends_chat_at_zero(conv, tenant):
    chat = await conv.open_chat(tenant)
    seen: list = []

    async def watch():
        async for event in conv.stub.StreamChat(
            pb.StreamChatRequest(chat_id=chat.id, locale="ja"), metadata=visitor_of(chat, tenant)
        ):
            seen.append(event)
            if event.HasField("chat") and event.chat.state == pb.CHAT_STATE_ENDED:
                return

    task = asyncio.create_task(watch())
    running_countdown = await conv.stub.EndChat(
        pb.EndChatRequest(chat_id=chat.id, countdown_seconds=90), metadata=auth(tenant, "agent", AGENT)
    )
    assert running_countdown.state == pb.CHAT_STATE_OPEN and running_countdown.HasField("countdown_ends_at")
    await asyncio.wait_for(task, 30)
    started = [e.message.system for e in seen if e.HasField("message") and e.message.system.type == "countdown_started"]
    assert started[0].params["seconds"] == "90" and started[0].rendered == "サポートは90秒後に終了します"
    ticks = [e.countdown for e in seen if e.HasField("countdown")]
    assert ticks and all(e.seq == 0 for e in seen if e.HasField("countdown"))
    assert ticks[0].ends_at == running_countdown.countdown_ends_at
    assert [t.seconds_left for t in ticks] == sorted((t.seconds_left for t in ticks), reverse=True)
    ended = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=visitor_of(chat, tenant))
    assert ended.state == pb.CHAT_STATE_ENDED and ended.end_reason == "countdown"
    assert not ended.HasField("countdown_ends_at")
    events = await eventually(lambda: conv.events(tenant, "chat_ended", chat.id), "chat_ended")
    assert [e.chat_ended.reason for e in events] == ["countdown"]


async def test_conv06_visitor_typing_cancels_countdown(conv, tenant):
    chat = await conv.open_chat(tenant)
    agent_stream: list = []

    async def watch():
        async for event in conv.stub.StreamChat(pb.StreamChatRequest(chat_id=chat.id), metadata=auth(tenant, "agent", AGENT)):
            agent_stream.append(event)

    task = asyncio.create_task(watch())
    await conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id, countdown_seconds=60), metadata=auth(tenant, "agent", AGENT))
    typing = await conv.stub.NotifyTyping(pb.NotifyTypingRequest(chat_id=chat.id, typing=True), metadata=visitor_of(chat, tenant))
    assert typing.countdown_cancelled
    await eventually(
        lambda: any(e.HasField("typing") and e.typing.typing for e in agent_stream),
        "the agent sees the visitor typing",
    )
    task.cancel()
    current = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=auth(tenant, "agent", AGENT))
    assert current.state == pb.CHAT_STATE_OPEN and not current.HasField("countdown_ends_at")
    assert (await system_types(conv, tenant, chat.id))[-2:] == ["countdown_started", "countdown_cancelled"]
    msgs = (
        await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id, locale="ja"), metadata=visitor_of(chat, tenant))
    ).messages
    assert msgs[-1].system.rendered == "サポート終了を中断しました" and msgs[-1].system.params["by"] == "visitor"
    await asyncio.sleep(60 * COUNTDOWN_SCALE + 0.5)  # past the cancelled deadline
    assert (
        await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=auth(tenant, "agent", AGENT))
    ).state == pb.CHAT_STATE_OPEN
    assert (
        await status_of(
            conv.stub.NotifyTyping(
                pb.NotifyTypingRequest(chat_id=chat.id, typing=True), metadata=auth(tenant, "agent", "agent-2")
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await status_of(
            conv.stub.NotifyTyping(
                pb.NotifyTypingRequest(chat_id=chat.id, typing=True), metadata=auth("other", "visitor", chat.visitor_id)
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )
    agent_typing = await conv.stub.NotifyTyping(
        pb.NotifyTypingRequest(chat_id=chat.id, typing=True), metadata=auth(tenant, "agent", AGENT)
    )
    assert not agent_typing.countdown_cancelled
    typing_again = await conv.stub.NotifyTyping(
        pb.NotifyTypingRequest(chat_id=chat.id, typing=True), metadata=visitor_of(chat, tenant)
    )
    assert not typing_again.countdown_cancelled


async def test_conv06_visitor_message_and_agent_cancel_stop_countdown(conv, tenant):
    chat = await conv.open_chat(tenant)
    agent = auth(tenant, "agent", AGENT)
    await conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id, countdown_seconds=45), metadata=agent)
    await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=chat.id, text="wait, one more thing"), metadata=visitor_of(chat, tenant)
    )
    assert (await system_types(conv, tenant, chat.id))[-2:] == ["countdown_started", "countdown_cancelled"]
    await conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id, countdown_seconds=30), metadata=agent)
    cancelled = await conv.stub.CancelEndChat(pb.CancelEndChatRequest(chat_id=chat.id), metadata=agent)
    assert not cancelled.HasField("countdown_ends_at")
    assert (
        await status_of(conv.stub.CancelEndChat(pb.CancelEndChatRequest(chat_id=chat.id), metadata=agent))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    assert (
        await status_of(
            conv.stub.CancelEndChat(pb.CancelEndChatRequest(chat_id=chat.id), metadata=auth(tenant, "agent", "agent-2"))
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await status_of(conv.stub.CancelEndChat(pb.CancelEndChatRequest(chat_id=chat.id), metadata=visitor_of(chat, tenant)))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    for seconds in (1, 29, 31, 120, -30):
        assert (
            await status_of(conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id, countdown_seconds=seconds), metadata=agent))
            == grpc.StatusCode.INVALID_ARGUMENT
        )
    queued = await conv.start(tenant)
    assert (
        await status_of(
            conv.stub.EndChat(pb.EndChatRequest(chat_id=queued.id, countdown_seconds=30), metadata=auth(tenant, "admin", "boss"))
        )
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    await asyncio.sleep(45 * COUNTDOWN_SCALE + 0.5)
    current = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)
    assert current.state == pb.CHAT_STATE_OPEN


async def test_conv06_countdown_fires_exactly_once_across_restart_with_two_replicas(tenant):
    schema, prefix = f"conv_rep_{uuid.uuid4().hex[:8]}", new_prefix()
    spec = lambda: make_spec(schema=schema, countdown_scale=COUNTDOWN_SCALE)
    async with service(spec(), schema, prefix) as replica_b:
        async with channel_to(replica_b) as channel_b:
            b = Harness(replica_b, ConversationServiceStub(channel_b))
            async with service(spec(), schema, prefix, stop_grace=0) as replica_a:
                # replica A goes away (grace 0) while its countdown runs
                async with channel_to(replica_a) as channel_a:
                    a = Harness(replica_a, ConversationServiceStub(channel_a))
                    restarted = await a.open_chat(tenant)
                    both = await a.open_chat(tenant)
                    await a.stub.EndChat(
                        pb.EndChatRequest(chat_id=restarted.id, countdown_seconds=30), metadata=auth(tenant, "agent", AGENT)
                    )
                    await b.stub.EndChat(
                        pb.EndChatRequest(chat_id=both.id, countdown_seconds=30), metadata=auth(tenant, "agent", AGENT)
                    )
            await b.wait_state(tenant, restarted.id, pb.CHAT_STATE_ENDED)
            async with service(spec(), schema, prefix) as replica_a_again:
                assert replica_a_again.ready
                await b.wait_state(tenant, both.id, pb.CHAT_STATE_ENDED)
                await asyncio.sleep(0.3)  # both replicas' timer loops have polled again
                for chat_id in (restarted.id, both.id):
                    types = await system_types(b, tenant, chat_id)
                    assert types.count("ended") == 1 and types.count("accepted") == 1
                    events = await eventually(lambda chat_id=chat_id: b.events(tenant, "chat_ended", chat_id), "chat_ended")
                    assert [e.chat_ended.reason for e in events] == ["countdown"]


async def test_conv06_inactivity_auto_completes_after_tenant_expiry(conv, tenant):
    admin = auth(tenant, "admin", "boss")
    assert (await conv.stub.GetSettings(pb.GetSettingsRequest(), metadata=admin)).inactivity_seconds == 1800
    assert (
        await status_of(conv.stub.UpdateSettings(pb.Settings(inactivity_seconds=-1), metadata=admin))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await status_of(conv.stub.UpdateSettings(pb.Settings(inactivity_seconds=1), metadata=auth(tenant, "agent", AGENT)))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (await conv.stub.UpdateSettings(pb.Settings(inactivity_seconds=1), metadata=admin)).inactivity_seconds == 1
    idle = await conv.open_chat(tenant)
    ended = await conv.open_chat(tenant)
    await conv.stub.EndChat(pb.EndChatRequest(chat_id=ended.id), metadata=auth(tenant, "agent", AGENT))
    completed = await conv.wait_state(tenant, idle.id, pb.CHAT_STATE_COMPLETED)
    assert completed.end_reason == "inactivity"
    assert (await system_types(conv, tenant, idle.id))[-1] == "auto_completed"
    await conv.wait_state(tenant, ended.id, pb.CHAT_STATE_COMPLETED)
    done = await eventually(lambda: conv.events(tenant, "chat_completed", idle.id), "chat_completed")
    assert [e.chat_completed.reason for e in done] == ["inactivity"]
    ended_events = await eventually(lambda: conv.events(tenant, "chat_ended", idle.id), "chat_ended")
    assert [e.chat_ended.reason for e in ended_events] == ["inactivity"]
    assert [e.chat_ended.reason for e in await conv.events(tenant, "chat_ended", ended.id)] == ["agent"]
    other = await conv.stub.GetSettings(pb.GetSettingsRequest(), metadata=auth(tenant + "-x", "admin", "boss"))
    assert other.inactivity_seconds == 1800, "settings are per tenant"
    assert (
        await status_of(conv.stub.GetSettings(pb.GetSettingsRequest(), metadata=visitor_of(idle, tenant)))
        == grpc.StatusCode.PERMISSION_DENIED
    )
