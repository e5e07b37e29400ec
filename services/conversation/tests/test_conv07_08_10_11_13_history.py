"""CONV-07 notes, CONV-08 history with stable cursors, CONV-10 canned responses,
CONV-11 splitting long messages, CONV-13 reply-to."""

from __future__ import annotations

import grpc
from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.events.v1.routing_pb2 import ChatAssigned

from services.conversation.tests.helpers import visitor_of
from tests.fixtures import auth, status_of

AGENT = "agent-1"


async def test_conv07_notes_on_chat_and_visitor_with_time_and_author(conv, tenant):
    chat = await conv.open_chat(tenant)
    agent = auth(tenant, "agent", AGENT)
    for i in range(5):
        await conv.stub.AddNote(pb.AddNoteRequest(chat_id=chat.id, text=f"chat note {i}"), metadata=agent)
    await conv.stub.AddNote(
        pb.AddNoteRequest(visitor_id=chat.visitor_id, text="prefers e-mail"), metadata=auth(tenant, "agent", "agent-2")
    )
    first = await conv.stub.ListNotes(pb.ListNotesRequest(chat_id=chat.id, page_size=3), metadata=agent)
    assert [n.text for n in first.notes] == ["chat note 0", "chat note 1", "chat note 2"] and first.next_page_token
    await conv.stub.AddNote(pb.AddNoteRequest(chat_id=chat.id, text="chat note 5"), metadata=agent)
    rest = await conv.stub.ListNotes(
        pb.ListNotesRequest(chat_id=chat.id, page_size=3, page_token=first.next_page_token), metadata=agent
    )
    assert [n.text for n in rest.notes] == ["chat note 3", "chat note 4", "chat note 5"]
    assert all(n.author_id == AGENT and n.HasField("created_at") for n in rest.notes)
    visitor_notes = await conv.stub.ListNotes(pb.ListNotesRequest(visitor_id=chat.visitor_id), metadata=agent)
    assert [(n.text, n.author_id) for n in visitor_notes.notes] == [("prefers e-mail", "agent-2")]
    bad = [
        pb.AddNoteRequest(text="x"),
        pb.AddNoteRequest(chat_id=chat.id, visitor_id="v", text="x"),
        pb.AddNoteRequest(chat_id=chat.id, text="  "),
        pb.AddNoteRequest(chat_id=chat.id, text="x" * 5001),
        pb.AddNoteRequest(chat_id="zz", text="x"),
    ]
    for request in bad:
        assert await status_of(conv.stub.AddNote(request, metadata=agent)) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        await status_of(conv.stub.AddNote(pb.AddNoteRequest(chat_id=chat.id, text="x"), metadata=auth("other", "agent", AGENT)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await status_of(conv.stub.AddNote(pb.AddNoteRequest(chat_id=chat.id, text="x"), metadata=visitor_of(chat, tenant)))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await status_of(conv.stub.ListNotes(pb.ListNotesRequest(chat_id=chat.id, page_token="garbage"), metadata=agent))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert not (
        await conv.stub.ListNotes(pb.ListNotesRequest(visitor_id=chat.visitor_id), metadata=auth("other", "agent", AGENT))
    ).notes


async def test_conv08_visitor_history_and_agent_recent_chats_with_stable_cursors(conv, tenant):
    visitor = "v-history"
    ids = []
    for i in range(5):
        chat = await conv.start(tenant, visitor=visitor, question=f"question {i}")
        await conv.routing_event(
            tenant, ChatAssigned(chat_id=chat.id, agent_id=f"agent-{i % 2}", agent_name=f"A{i % 2}", how="accepted")
        )
        await conv.wait_state(tenant, chat.id, pb.CHAT_STATE_OPEN)
        await conv.stub.SendMessage(
            pb.SendMessageRequest(chat_id=chat.id, text=f"answer {i}"), metadata=auth(tenant, "agent", f"agent-{i % 2}")
        )
        ids.append(chat.id)
    me = auth(tenant, "visitor", visitor)
    page = await conv.stub.ListVisitorChats(pb.ListVisitorChatsRequest(page_size=2), metadata=me)
    assert [h.chat.id for h in page.chats] == ids[::-1][:2]
    newest = page.chats[0]
    assert [m.text for m in newest.messages if m.kind == pb.MESSAGE_KIND_TEXT] == ["question 4", "answer 4"]
    assert [(p.agent_id, p.role) for p in newest.chat.participants] == [("agent-0", "owner")]
    await conv.start(tenant, visitor=visitor, question="a newer chat must not shift the pages")
    rest = []
    token = page.next_page_token
    while token:
        more = await conv.stub.ListVisitorChats(pb.ListVisitorChatsRequest(page_size=2, page_token=token), metadata=me)
        rest += [h.chat.id for h in more.chats]
        token = more.next_page_token
    assert rest == ids[::-1][2:]
    limited = await conv.stub.ListVisitorChats(pb.ListVisitorChatsRequest(page_size=2, message_limit=1), metadata=me)
    assert not limited.chats[0].more_messages, "the newest chat has its question only"
    assert len(limited.chats[1].messages) == 1 and limited.chats[1].more_messages
    staff = await conv.stub.ListVisitorChats(
        pb.ListVisitorChatsRequest(visitor_id=visitor, page_size=10), metadata=auth(tenant, "agent", "agent-0")
    )
    assert len(staff.chats) == 6
    mine = await conv.stub.ListAgentChats(pb.ListAgentChatsRequest(), metadata=auth(tenant, "agent", "agent-1"))
    assert [h.chat.id for h in mine.chats] == [ids[3], ids[1]]
    by_admin = await conv.stub.ListAgentChats(
        pb.ListAgentChatsRequest(agent_id="agent-0", page_size=2), metadata=auth(tenant, "admin", "boss")
    )
    assert [h.chat.id for h in by_admin.chats] == [ids[4], ids[2]] and by_admin.next_page_token
    denied = [
        conv.stub.ListVisitorChats(pb.ListVisitorChatsRequest(visitor_id="someone-else"), metadata=me),
        conv.stub.ListAgentChats(pb.ListAgentChatsRequest(agent_id="agent-0"), metadata=auth(tenant, "agent", "agent-1")),
        conv.stub.ListAgentChats(pb.ListAgentChatsRequest(), metadata=me),
    ]
    for call in denied:
        assert await status_of(call) == grpc.StatusCode.PERMISSION_DENIED
    invalid = [
        conv.stub.ListVisitorChats(pb.ListVisitorChatsRequest(), metadata=auth(tenant, "agent", "agent-0")),
        conv.stub.ListVisitorChats(pb.ListVisitorChatsRequest(page_token="%%%"), metadata=me),
        conv.stub.ListVisitorChats(pb.ListVisitorChatsRequest(page_size=-1), metadata=me),
        conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=ids[0], page_token="bm90LWpzb24="), metadata=me),
    ]
    for call in invalid:
        assert await status_of(call) == grpc.StatusCode.INVALID_ARGUMENT
    other = await conv.stub.ListVisitorChats(
        pb.ListVisitorChatsRequest(visitor_id=visitor), metadata=auth("other-tenant", "admin", "boss")
    )
    assert not other.chats


async def test_conv08_list_messages_pages_in_order(conv, tenant):
    chat = await conv.open_chat(tenant)
    agent = auth(tenant, "agent", AGENT)
    for i in range(7):
        await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text=f"m{i}"), metadata=agent)
    seqs, token = [], ""
    while True:
        page = await conv.stub.ListMessages(
            pb.ListMessagesRequest(chat_id=chat.id, page_size=3, page_token=token), metadata=agent
        )
        seqs += [m.seq for m in page.messages]
        token = page.next_page_token
        if not token:
            break
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)) == 8


async def test_conv10_canned_responses_listed_and_expanded(conv, tenant):
    admin, agent = auth(tenant, "admin", "boss"), auth(tenant, "agent", AGENT)
    await conv.stub.PutCannedResponse(
        pb.PutCannedResponseRequest(shortcut="hours", text="営業時間は9時〜18時です。"), metadata=admin
    )
    await conv.stub.PutCannedResponse(pb.PutCannedResponseRequest(shortcut="hello", text="Hello {visitor_name}!"), metadata=agent)
    listed = await conv.stub.ListCannedResponses(pb.ListCannedResponsesRequest(prefix="h"), metadata=agent)
    assert [r.shortcut for r in listed.responses] == ["hello", "hours"]
    chat = await conv.open_chat(tenant, visitor_name="Taro")
    sent = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, canned_shortcut="hello"), metadata=agent)
    assert sent.text == "Hello Taro!"
    assert (
        await status_of(conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, canned_shortcut="nope"), metadata=agent))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await status_of(
            conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, canned_shortcut="hours", text="x"), metadata=agent)
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await status_of(
            conv.stub.SendMessage(
                pb.SendMessageRequest(chat_id=chat.id, canned_shortcut="hours"), metadata=visitor_of(chat, tenant)
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    for bad in (
        pb.PutCannedResponseRequest(shortcut="Has Space", text="x"),
        pb.PutCannedResponseRequest(shortcut="ok", text=""),
        pb.PutCannedResponseRequest(shortcut="x" * 33, text="x"),
    ):
        assert await status_of(conv.stub.PutCannedResponse(bad, metadata=admin)) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        await status_of(conv.stub.DeleteCannedResponse(pb.DeleteCannedResponseRequest(shortcut="hours"), metadata=agent))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    await conv.stub.DeleteCannedResponse(pb.DeleteCannedResponseRequest(shortcut="hours"), metadata=admin)
    assert (
        await status_of(conv.stub.DeleteCannedResponse(pb.DeleteCannedResponseRequest(shortcut="hours"), metadata=admin))
        == grpc.StatusCode.NOT_FOUND
    )
    other = await conv.stub.ListCannedResponses(pb.ListCannedResponsesRequest(), metadata=auth("other", "agent", AGENT))
    assert not other.responses


async def test_conv11_long_message_split_per_channel_limit(conv, tenant):
    chat = await conv.open_chat(tenant, channel=pb.CHANNEL_INSTAGRAM)
    agent = auth(tenant, "agent", AGENT)
    sentence = "配送は通常3日ほどかかります。"
    text = sentence * 150  # 2,250 characters; Instagram takes 1,000 per message
    sent = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text=text), metadata=agent)
    parts = [sent, *sent.continuation]
    assert [p.part for p in parts] == [1, 2, 3] and all(p.parts == 3 for p in parts)
    assert "".join(p.text for p in parts) == text
    assert all(len(p.text) <= 1000 and p.text.endswith("。") for p in parts[:-1]), "cut at a sentence end"
    assert [p.seq for p in parts] == list(range(sent.seq, sent.seq + 3))
    emoji = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="👍🎉"), metadata=agent)
    assert emoji.emoji_only and emoji.parts == 0
    web = await conv.open_chat(tenant)
    styled = await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=web.id, text=text * 5, spans=[pb.TextSpan(start=9980, end=10020, bold=True)]),
        metadata=agent,
    )
    assert styled.parts == 2
    assert len(styled.text) == 9990, "cut after the last sentence that fits in 10,000"
    assert list(styled.spans) == [pb.TextSpan(start=9980, end=9990, bold=True)]
    assert list(styled.continuation[0].spans) == [pb.TextSpan(start=0, end=10020 - len(styled.text), bold=True)]


async def test_conv13_reply_to_on_whatsapp_and_messenger_only(conv, tenant):
    chat = await conv.open_chat(tenant, channel=pb.CHANNEL_WHATSAPP)
    agent, visitor = auth(tenant, "agent", AGENT), visitor_of(chat, tenant)
    question = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="Price of plan B?"), metadata=visitor)
    reply = await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=chat.id, text="¥2,000 per month", reply_to_seq=question.seq), metadata=agent
    )
    assert reply.reply_to_seq == question.seq
    note = await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=chat.id, text="internal", kind=pb.MESSAGE_KIND_NOTE), metadata=agent
    )
    accepted = next(
        m
        for m in (await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=agent)).messages
        if m.system.type == "accepted"
    )
    cases = [
        (pb.SendMessageRequest(chat_id=chat.id, text="x", reply_to_seq=9999), agent, grpc.StatusCode.NOT_FOUND),
        (pb.SendMessageRequest(chat_id=chat.id, text="x", reply_to_seq=note.seq), visitor, grpc.StatusCode.NOT_FOUND),
        (pb.SendMessageRequest(chat_id=chat.id, text="x", reply_to_seq=1), agent, grpc.StatusCode.NOT_FOUND),
        (pb.SendMessageRequest(chat_id=chat.id, text="x", reply_to_seq=accepted.seq), agent, grpc.StatusCode.INVALID_ARGUMENT),
        (pb.SendMessageRequest(chat_id=chat.id, text="x", reply_to_seq=-1), agent, grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for request, md, expected in cases:
        assert await status_of(conv.stub.SendMessage(request, metadata=md)) == expected
    messenger = await conv.open_chat(tenant, channel=pb.CHANNEL_MESSENGER)
    first = await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=messenger.id, text="hi"), metadata=visitor_of(messenger, tenant)
    )
    assert (
        await conv.stub.SendMessage(
            pb.SendMessageRequest(chat_id=messenger.id, text="hello", reply_to_seq=first.seq), metadata=agent
        )
    ).reply_to_seq == first.seq
    web = await conv.open_chat(tenant)
    hello = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=web.id, text="hi"), metadata=visitor_of(web, tenant))
    assert (
        await status_of(
            conv.stub.SendMessage(pb.SendMessageRequest(chat_id=web.id, text="x", reply_to_seq=hello.seq), metadata=agent)
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
