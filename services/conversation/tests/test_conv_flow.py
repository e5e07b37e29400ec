"""The foundation flow of the conversation service: start, assign (routing event), send,
stream with resume, end, transcript."""

from __future__ import annotations

import asyncio
import io

import grpc
import pytest
from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.events.v1.routing_pb2 import AgentInvited
from pypdf import PdfReader

from tests.fixtures import auth, eventually, status_of

from services.conversation.tests.helpers import visitor_of


async def _collect(stream, into: list, until_seq: int | None = None) -> None:
    async for event in stream:
        into.append(event)
        if until_seq is not None and event.seq >= until_seq:
            return


async def test_conv05_visitor_starts_queued_chat_with_question_and_event(conv, tenant):
    chat = await conv.start(tenant, question="大阪へ配送できますか?", visitor_name="Taro", visitor_email="taro@example.com")
    assert chat.state == pb.CHAT_STATE_QUEUED and chat.channel == pb.CHANNEL_WEB
    messages = await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=visitor_of(chat, tenant))
    assert [m.text for m in messages.messages] == ["大阪へ配送できますか?"]
    assert messages.messages[0].sender_kind == pb.SENDER_KIND_VISITOR

    started = await eventually(lambda: conv.events(tenant, "chat_started", chat.id), "chat_started published")
    payload = started[0].chat_started
    assert (payload.state, payload.visitor_email, payload.channel) == ("queued", "taro@example.com", "CHANNEL_WEB")
    assert payload.visitor_id == chat.visitor_id


async def test_conv05_chat_assigned_event_opens_chat_with_accepted_system_message(conv, tenant):
    chat = await conv.open_chat(tenant, agent="agent-7", agent_name="川根太郎")
    assert chat.agent_id == "agent-7"
    assert [(p.agent_id, p.role) for p in chat.participants] == [("agent-7", "owner")]
    ja = await conv.stub.ListMessages(
        pb.ListMessagesRequest(chat_id=chat.id, locale="ja"), metadata=auth(tenant, "agent", "agent-7")
    )
    system = [m for m in ja.messages if m.kind == pb.MESSAGE_KIND_SYSTEM]
    assert system[-1].system.type == "accepted"
    assert system[-1].system.rendered == "川根太郎がチャットを承諾しました"


async def test_conv14_stream_delivers_live_and_resumes_without_gap_or_duplicate(conv, tenant):
    chat = await conv.open_chat(tenant)
    agent, visitor = auth(tenant, "agent", "agent-1"), visitor_of(chat, tenant)
    seen: list = []
    watcher = asyncio.create_task(_collect(conv.stub.StreamChat(pb.StreamChatRequest(chat_id=chat.id), metadata=visitor), seen))
    first = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="Yes, we do!"), metadata=agent)
    await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="Great, thanks"), metadata=visitor)

    async def both():
        texts = [e.message.text for e in seen if e.HasField("message")]
        return "Yes, we do!" in texts and "Great, thanks" in texts

    await eventually(both, "the visitor's stream shows both messages")
    watcher.cancel()
    durable = [e.seq for e in seen if e.seq]
    assert durable == list(range(1, durable[-1] + 1)), "replay from 0 then live: gap-free"
    assert any(e.HasField("chat") and e.chat.state == pb.CHAT_STATE_OPEN for e in seen)

    for text in ("one", "two", "three"):
        await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text=text), metadata=agent)
    latest = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)
    resumed: list = []
    await asyncio.wait_for(
        _collect(
            conv.stub.StreamChat(pb.StreamChatRequest(chat_id=chat.id, after_seq=first.seq), metadata=visitor),
            resumed,
            latest.last_seq,
        ),
        10,
    )
    assert [e.seq for e in resumed if e.seq] == list(range(first.seq + 1, latest.last_seq + 1))
    assert [e.message.text for e in resumed if e.HasField("message")][-3:] == ["one", "two", "three"]


async def test_conv14_many_watchers_each_get_every_event_once(conv, tenant):
    chat = await conv.open_chat(tenant)
    agent, visitor = auth(tenant, "agent", "agent-1"), visitor_of(chat, tenant)
    streams = [[], [], []]
    tasks = [
        asyncio.create_task(_collect(conv.stub.StreamChat(pb.StreamChatRequest(chat_id=chat.id), metadata=md), s))
        for md, s in zip((agent, visitor, auth(tenant, "admin", "boss")), streams, strict=True)
    ]
    for i in range(20):
        await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text=f"m{i}"), metadata=agent if i % 2 else visitor)
    last = (await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)).last_seq

    async def all_caught_up():
        return all(s and max(e.seq for e in s) >= last for s in streams)

    await eventually(all_caught_up, "every watcher reaches the last event")
    for t in tasks:
        t.cancel()
    for s in streams:
        seqs = [e.seq for e in s if e.seq]
        assert seqs == list(range(1, last + 1))


async def test_conv05_agent_ends_chat_publishes_chat_ended_with_visitor(conv, tenant):
    chat = await conv.open_chat(tenant, visitor_name="Hanako", visitor_email="hanako@example.com")
    ended = await conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=auth(tenant, "agent", "agent-1"))
    assert ended.state == pb.CHAT_STATE_ENDED and ended.end_reason == "agent" and ended.HasField("ended_at")
    events = await eventually(lambda: conv.events(tenant, "chat_ended", chat.id), "chat_ended published")
    payload = events[0].chat_ended
    assert (payload.agent_id, payload.visitor_email, payload.visitor_name, payload.reason) == (
        "agent-1",
        "hanako@example.com",
        "Hanako",
        "agent",
    )
    code = await status_of(
        conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="hello?"), metadata=visitor_of(chat, tenant))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION


async def test_conv09_transcript_text_and_pdf_with_japanese(conv, tenant):
    chat = await conv.open_chat(tenant, agent_name="川根太郎", visitor_name="山田花子", question="配送について")
    agent = auth(tenant, "agent", "agent-1")
    await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="明日お届けできます。"), metadata=agent)
    await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="Thank you!"), metadata=visitor_of(chat, tenant))
    await conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=agent)
    service = auth(tenant, "service", "crm_bridge")
    transcript = await conv.stub.GetTranscript(
        pb.GetTranscriptRequest(chat_id=chat.id, locale="ja", include_pdf=True, time_zone="Asia/Tokyo"), metadata=service
    )
    text = transcript.text
    for expected in (
        "チャット記録",
        "山田花子",
        "川根太郎",
        "配送について",
        "明日お届けできます。",
        "Thank you!",
        "川根太郎がチャットを承諾しました",
        "チャットが終了しました",
        "JST",
    ):
        assert expected in text, expected
    assert text.index("配送について") < text.index("明日お届けできます。") < text.index("Thank you!")
    extracted = "".join(page.extract_text() for page in PdfReader(io.BytesIO(transcript.pdf)).pages)
    for expected in ("山田花子", "明日お届けできます。", "川根太郎がチャットを承諾しました", "Thank you!"):
        assert expected in extracted, expected
    english = await conv.stub.GetTranscript(pb.GetTranscriptRequest(chat_id=chat.id), metadata=service)
    assert "Kawane" not in english.text and "accepted the chat" in english.text and not english.pdf


async def test_conv05_wrong_tenant_and_bad_input_on_foundation_rpcs(conv, tenant):
    chat = await conv.open_chat(tenant)
    other = auth("someone-else", "admin", "root")
    for call in (
        conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=other),
        conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=other),
        conv.stub.GetTranscript(pb.GetTranscriptRequest(chat_id=chat.id), metadata=other),
    ):
        assert await status_of(call) == grpc.StatusCode.NOT_FOUND
    agent = auth(tenant, "agent", "agent-1")
    cases = [
        (
            conv.stub.StartChat(pb.StartChatRequest(department_id="d"), metadata=auth(tenant, "visitor", "v")),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            conv.stub.StartChat(
                pb.StartChatRequest(channel=pb.CHANNEL_WEB, department_id="d", visitor_email="nope"),
                metadata=auth(tenant, "visitor", "v"),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            conv.stub.StartChat(pb.StartChatRequest(channel=pb.CHANNEL_WEB, department_id="d"), metadata=agent),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            conv.stub.StartChat(
                pb.StartChatRequest(channel=pb.CHANNEL_WEB, department_id="d", visitor_id="other"),
                metadata=auth(tenant, "visitor", "v"),
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            conv.stub.StartChat(pb.StartChatRequest(channel=99, department_id="d"), metadata=auth(tenant, "visitor", "v")),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (conv.stub.StartChat(pb.StartChatRequest(channel=pb.CHANNEL_WEB, department_id="d")), grpc.StatusCode.UNAUTHENTICATED),
        (conv.stub.GetChat(pb.GetChatRequest(chat_id="not-a-uuid"), metadata=agent), grpc.StatusCode.INVALID_ARGUMENT),
        (
            conv.stub.GetChat(pb.GetChatRequest(chat_id="6f1c1a52-7c55-4f7e-9d7e-1e0f5b1c0a11"), metadata=agent),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=auth(tenant, "visitor", "intruder")),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            conv.stub.SendMessage(
                pb.SendMessageRequest(chat_id=chat.id, text="hi"), metadata=auth(tenant, "visitor", "intruder")
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            conv.stub.SendMessage(
                pb.SendMessageRequest(chat_id=chat.id, text="hi"), metadata=auth(tenant, "agent", "not-in-chat")
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="   "), metadata=agent),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="x" * 20001), metadata=agent),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="a\x00b"), metadata=agent),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="hi", kind=42), metadata=agent),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=auth(tenant, "agent", "agent-2")),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id, countdown_seconds=31), metadata=agent),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            conv.stub.GetTranscript(pb.GetTranscriptRequest(chat_id=chat.id, time_zone="Mars/Base"), metadata=agent),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]
    for call, expected in cases:
        assert await status_of(call) == expected
    # Nothing was stored by the refused calls.
    messages = await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=agent)
    assert all(m.kind == pb.MESSAGE_KIND_SYSTEM for m in messages.messages)


async def test_conv14_stream_bad_input(conv, tenant):
    chat = await conv.open_chat(tenant)

    async def first_status(request, metadata):
        try:
            async for _ in conv.stub.StreamChat(request, metadata=metadata):
                return None
        except grpc.aio.AioRpcError as err:
            return err.code()

    agent = auth(tenant, "agent", "agent-1")
    assert await first_status(pb.StreamChatRequest(chat_id=chat.id, after_seq=-1), agent) == grpc.StatusCode.INVALID_ARGUMENT
    assert await first_status(pb.StreamChatRequest(chat_id=chat.id, after_seq=10**6), agent) == grpc.StatusCode.INVALID_ARGUMENT
    assert await first_status(pb.StreamChatRequest(chat_id="x"), agent) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        await first_status(pb.StreamChatRequest(chat_id=chat.id), auth("other", "agent", "agent-1")) == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await first_status(pb.StreamChatRequest(chat_id=chat.id), auth(tenant, "visitor", "v-x"))
        == grpc.StatusCode.PERMISSION_DENIED
    )


async def test_conv09_transcript_pdf_with_a_missing_font_says_what_to_set(conv, tenant, monkeypatch):
    from kaiwa_conversation import transcript as module

    chat = await conv.open_chat(tenant)
    monkeypatch.setenv(module.FONT_ENV, "/nonexistent/font.ttf")
    module.font_path.cache_clear()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await conv.stub.GetTranscript(
                pb.GetTranscriptRequest(chat_id=chat.id, include_pdf=True), metadata=auth(tenant, "agent", "agent-1")
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "/nonexistent/font.ttf" in err.value.details() and module.FONT_ENV in err.value.details()
        text_only = await conv.stub.GetTranscript(
            pb.GetTranscriptRequest(chat_id=chat.id), metadata=auth(tenant, "agent", "agent-1")
        )
        assert text_only.text
    finally:
        monkeypatch.delenv(module.FONT_ENV)
        module.font_path.cache_clear()


async def test_conv14_agent_typing_never_reaches_the_customer_on_messaging_channels(conv, tenant):
    async def follow(chat, metadata, into: list):
        async for event in conv.stub.StreamChat(pb.StreamChatRequest(chat_id=chat.id), metadata=metadata):
            if event.HasField("typing"):
                into.append((event.typing.sender_kind, event.typing.typing))

    def saw(seen: list, kind) -> bool:
        return any(k == kind for k, _ in seen)

    agent, colleague = auth(tenant, "agent", "agent-1"), auth(tenant, "agent", "agent-2")
    whatsapp = await conv.open_chat(tenant, channel=pb.CHANNEL_WHATSAPP)
    await conv.routing_event(
        tenant, AgentInvited(chat_id=whatsapp.id, agent_id="agent-2", agent_name="Ben", by_agent_id="agent-1")
    )
    web = await conv.open_chat(tenant)
    seen = {name: [] for name in ("visitor", "adapter", "colleague", "agent", "web_visitor")}
    tasks = [
        asyncio.create_task(follow(chat, md, seen[name]))
        for chat, md, name in (
            (whatsapp, visitor_of(whatsapp, tenant), "visitor"),
            (whatsapp, auth(tenant, "service", "wa"), "adapter"),
            (whatsapp, colleague, "colleague"),
            (whatsapp, agent, "agent"),
            (web, visitor_of(web, tenant), "web_visitor"),
        )
    ]
    try:
        await asyncio.sleep(0.3)  # the watchers are registered

        async def invited():
            current = await conv.stub.GetChat(pb.GetChatRequest(chat_id=whatsapp.id), metadata=agent)
            return any(p.agent_id == "agent-2" for p in current.participants)

        await eventually(invited, "agent-2 is invited")
        await conv.stub.NotifyTyping(pb.NotifyTypingRequest(chat_id=whatsapp.id, typing=True), metadata=colleague)
        await conv.stub.NotifyTyping(pb.NotifyTypingRequest(chat_id=whatsapp.id, typing=True), metadata=agent)
        await conv.stub.NotifyTyping(pb.NotifyTypingRequest(chat_id=web.id, typing=True), metadata=agent)
        await conv.stub.NotifyTyping(
            pb.NotifyTypingRequest(chat_id=whatsapp.id, typing=True), metadata=visitor_of(whatsapp, tenant)
        )
        await eventually(lambda: saw(seen["agent"], pb.SENDER_KIND_VISITOR), "typing goes customer -> agent")
        await eventually(lambda: saw(seen["colleague"], pb.SENDER_KIND_AGENT), "agents see each other typing")
        await eventually(lambda: saw(seen["web_visitor"], pb.SENDER_KIND_AGENT), "the web widget shows agent typing")
        await asyncio.sleep(0.3)
        assert not saw(seen["visitor"], pb.SENDER_KIND_AGENT) and not saw(seen["adapter"], pb.SENDER_KIND_AGENT)
    finally:
        for task in tasks:
            task.cancel()
    telegram = await conv.open_chat(tenant, channel=pb.CHANNEL_TELEGRAM)
    await conv.stub.NotifyTyping(pb.NotifyTypingRequest(chat_id=telegram.id, typing=True), metadata=agent)
    assert (
        await status_of(
            conv.stub.NotifyTyping(
                pb.NotifyTypingRequest(chat_id=telegram.id, typing=True), metadata=visitor_of(telegram, tenant)
            )
        )
        == grpc.StatusCode.FAILED_PRECONDITION
    ), "Telegram does not report the customer's typing"
