"""CONV-01 channels and their capability table; CONV-02 message kinds, markup, notes,
files (CONV-12) and append-only storage enforced by the database."""

from __future__ import annotations

import uuid

import asyncpg
import grpc
import pytest
from kaiwa.conversation.v1 import conversation_pb2 as pb

from services.conversation.tests.helpers import visitor_of
from tests.fixtures import auth, status_of

AGENT = "agent-1"


def send(conv, tenant, chat, role="agent", sub=AGENT, **fields):
    return conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, **fields), metadata=auth(tenant, role, sub))


async def messages_of(conv, tenant, chat, role="agent", sub=AGENT):
    return list(
        (await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=auth(tenant, role, sub))).messages
    )


async def test_conv01_list_channels_exposes_capability_table(conv, tenant):
    table = await conv.stub.ListChannels(pb.ListChannelsRequest(), metadata=auth(tenant, "visitor", "v"))
    by_name = {c.name: c for c in table.channels}
    assert set(by_name) == {"web", "whatsapp", "instagram", "messenger", "telegram", "line", "wechat"}
    whatsapp, telegram, web = by_name["whatsapp"], by_name["telegram"], by_name["web"]
    assert whatsapp.session_window_seconds == 24 * 3600 and web.session_window_seconds == 0
    assert set(whatsapp.statuses) == {
        pb.MESSAGE_STATUS_SENT,
        pb.MESSAGE_STATUS_DELIVERED,
        pb.MESSAGE_STATUS_READ,
        pb.MESSAGE_STATUS_FAILED,
    }
    assert pb.MESSAGE_STATUS_READ not in telegram.statuses and not telegram.typing_indicator
    assert [c for c in by_name if by_name[c].reply_to] == ["whatsapp", "messenger"]
    assert pb.RICH_TYPE_TEMPLATE in whatsapp.rich_types and pb.RICH_TYPE_CAROUSEL not in whatsapp.rich_types
    assert not by_name["line"].file_preview and web.file_preview and web.typing_indicator
    assert by_name["instagram"].max_text_length == 1000


async def test_conv01_rules_read_the_channel_table(conv, tenant):
    telegram = await conv.open_chat(tenant, channel=pb.CHANNEL_TELEGRAM)
    carousel = pb.RichElement(type=pb.RICH_TYPE_CAROUSEL, cards=[pb.RichCard(title="A")])
    assert await status_of(send(conv, tenant, telegram, rich=carousel)) == grpc.StatusCode.INVALID_ARGUMENT
    buttons = pb.RichElement(type=pb.RICH_TYPE_BUTTONS, options=[pb.RichOption(title="Yes", payload="y")])
    sent = await send(conv, tenant, telegram, text="OK?", rich=buttons)
    assert sent.kind == pb.MESSAGE_KIND_RICH and sent.rich.options[0].title == "Yes"
    colour = pb.TextSpan(start=0, end=2, color="#ff0000")
    assert await status_of(send(conv, tenant, telegram, text="hello", spans=[colour])) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(send(conv, tenant, telegram, text="hi", reply_to_seq=1)) == grpc.StatusCode.INVALID_ARGUMENT
    typing = conv.stub.NotifyTyping(
        pb.NotifyTypingRequest(chat_id=telegram.id, typing=True), metadata=visitor_of(telegram, tenant)
    )
    assert await status_of(typing) == grpc.StatusCode.FAILED_PRECONDITION


async def test_conv02_text_markup_is_stored_as_structured_spans(conv, tenant):
    chat = await conv.open_chat(tenant)
    spans = [pb.TextSpan(start=0, end=4, bold=True), pb.TextSpan(start=5, end=9, italic=True, underline=True, color="#1a2B3c")]
    sent = await send(conv, tenant, chat, text="Bold text here", spans=spans)
    assert list(sent.spans) == spans
    stored = (await messages_of(conv, tenant, chat, "visitor", chat.visitor_id))[-1]
    assert list(stored.spans) == spans and stored.sender_kind == pb.SENDER_KIND_AGENT
    bad = [
        [pb.TextSpan(start=3, end=99, bold=True)],
        [pb.TextSpan(start=0, end=2)],
        [pb.TextSpan(start=0, end=2, color="red")],
        [pb.TextSpan(start=2, end=2, bold=True)],
    ]
    for spans in bad:
        assert await status_of(send(conv, tenant, chat, text="hello", spans=spans)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_conv12_agent_files_refused_before_sending_when_unsupported_or_too_large(conv, tenant):
    chat = await conv.open_chat(tenant)
    before = len(await messages_of(conv, tenant, chat))
    image = pb.FileAttachment(name="map.png", mime_type="image/png", size_bytes=120_000, url="https://cdn.example.com/map.png")
    sent = await send(conv, tenant, chat, "visitor", chat.visitor_id, file=image)
    assert sent.kind == pb.MESSAGE_KIND_FILE and sent.file.display == pb.FILE_DISPLAY_THUMBNAIL
    assert sent.file.preview_url == image.url
    pdf = pb.FileAttachment(name="invoice.pdf", mime_type="application/pdf", size_bytes=2048, url="https://x.example/i.pdf")
    assert (await send(conv, tenant, chat, file=pdf)).file.display == pb.FILE_DISPLAY_LINK
    voice = pb.FileAttachment(name="memo.ogg", mime_type="audio/ogg", size_bytes=4096, url="https://x.example/m.ogg")
    assert (await send(conv, tenant, chat, file=voice)).file.display == pb.FILE_DISPLAY_AUDIO_PLAYER
    refused = [
        pb.FileAttachment(name="tool.exe", mime_type="application/x-msdownload", size_bytes=10, url="https://x.example/t"),
        pb.FileAttachment(name="big.mp4", mime_type="video/mp4", size_bytes=26 * 1024 * 1024, url="https://x.example/b"),
        pb.FileAttachment(name="", mime_type="image/png", size_bytes=10, url="https://x.example/a.png"),
        pb.FileAttachment(name="a.png", mime_type="image/png", size_bytes=10, url="ftp://x.example/a.png"),
        pb.FileAttachment(name="a.png", mime_type="image/png", size_bytes=0, url="https://x.example/a.png"),
    ]
    for f in refused:
        assert await status_of(send(conv, tenant, chat, file=f)) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        await status_of(send(conv, tenant, chat, kind=pb.MESSAGE_KIND_FILE, text="no file")) == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert len(await messages_of(conv, tenant, chat)) == before + 3
    line = await conv.open_chat(tenant, channel=pb.CHANNEL_LINE)
    assert (await send(conv, tenant, line, file=image)).file.display == pb.FILE_DISPLAY_LINK, "LINE has no preview"


async def test_conv12_customer_files_from_a_channel_are_kept_with_a_notice(conv, tenant):
    chat = await conv.open_chat(tenant, channel=pb.CHANNEL_WHATSAPP)
    channel = auth(tenant, "service", "whatsapp-adapter")
    tool = pb.FileAttachment(name="tool.exe", mime_type="application/x-msdownload", size_bytes=10, url="https://x.example/t")
    big = pb.FileAttachment(name="big.mp4", mime_type="video/mp4", size_bytes=40 * 1024 * 1024, url="https://x.example/b")
    kept_tool = await send(conv, tenant, chat, "service", "whatsapp-adapter", file=tool, locale="ja")
    kept_big = await send(conv, tenant, chat, "service", "whatsapp-adapter", file=big, locale="ja")
    assert kept_tool.sender_kind == pb.SENDER_KIND_VISITOR and kept_tool.kind == pb.MESSAGE_KIND_FILE
    assert (kept_tool.file.notice, kept_tool.file.notice_text) == (
        pb.FILE_NOTICE_UNSUPPORTED_TYPE,
        "対応していない種類のファイルです",
    )
    assert (kept_big.file.notice, kept_big.file.notice_text) == (pb.FILE_NOTICE_PREVIEW_UNAVAILABLE, "プレビューは利用できません")
    for kept in (kept_tool, kept_big):
        assert kept.file.display == pb.FILE_DISPLAY_LINK and not kept.file.preview_url
    english = {m.file.name: m.file.notice_text for m in await messages_of(conv, tenant, chat) if m.file.name}
    assert english == {"tool.exe": "This file type is not supported", "big.mp4": "Preview is not available"}
    # The agent is refused the same files before sending; a well-formed request is still required.
    for f in (tool, big):
        assert await status_of(send(conv, tenant, chat, file=f)) == grpc.StatusCode.INVALID_ARGUMENT
    nameless = pb.FileAttachment(name="", mime_type="image/png", size_bytes=10, url="https://x.example/a.png")
    assert (
        await status_of(conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, file=nameless), metadata=channel))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    # LINE shows no previews: an image from the customer is a link with the notice.
    line = await conv.open_chat(tenant, channel=pb.CHANNEL_LINE)
    photo = pb.FileAttachment(name="p.jpg", mime_type="image/jpeg", size_bytes=1000, url="https://x.example/p.jpg")
    shown = await send(conv, tenant, line, "visitor", line.visitor_id, file=photo)
    assert (shown.file.display, shown.file.notice) == (pb.FILE_DISPLAY_LINK, pb.FILE_NOTICE_PREVIEW_UNAVAILABLE)
    transcript = await conv.stub.GetTranscript(
        pb.GetTranscriptRequest(chat_id=chat.id, locale="ja"), metadata=auth(tenant, "agent", AGENT)
    )
    assert "対応していない種類のファイルです" in transcript.text and "プレビューは利用できません" in transcript.text


async def test_conv02_links_rich_elements_and_internal_notes(conv, tenant):
    chat = await conv.open_chat(tenant)
    link = await send(conv, tenant, chat, link=pb.SharedLink(url="https://shop.example.com/faq", title="FAQ"))
    assert link.kind == pb.MESSAGE_KIND_LINK and link.link.title == "FAQ"
    carousel = pb.RichElement(
        type=pb.RICH_TYPE_CAROUSEL,
        cards=[
            pb.RichCard(
                title="Plan A",
                subtitle="¥1,000",
                image_url="https://x.example/a.png",
                buttons=[pb.RichOption(title="Choose", payload="a")],
            )
        ],
    )
    assert (await send(conv, tenant, chat, rich=carousel)).rich.cards[0].title == "Plan A"
    for bad in (
        pb.RichElement(type=pb.RICH_TYPE_BUTTONS),
        pb.RichElement(type=pb.RICH_TYPE_QUICK_REPLIES, options=[pb.RichOption(title="x" * 41)]),
        pb.RichElement(type=pb.RICH_TYPE_TEMPLATE, template_name="Bad Name"),
    ):
        assert await status_of(send(conv, tenant, chat, rich=bad)) == grpc.StatusCode.INVALID_ARGUMENT
    visitor_rich = send(
        conv,
        tenant,
        chat,
        "visitor",
        chat.visitor_id,
        rich=pb.RichElement(type=pb.RICH_TYPE_BUTTONS, options=[pb.RichOption(title="x")]),
    )
    assert await status_of(visitor_rich) == grpc.StatusCode.INVALID_ARGUMENT

    note = await send(conv, tenant, chat, kind=pb.MESSAGE_KIND_NOTE, text="VIP customer, be nice")
    assert note.kind == pb.MESSAGE_KIND_NOTE
    assert "VIP customer, be nice" in [m.text for m in await messages_of(conv, tenant, chat)]
    assert "VIP customer, be nice" not in [m.text for m in await messages_of(conv, tenant, chat, "visitor", chat.visitor_id)]
    transcript = await conv.stub.GetTranscript(pb.GetTranscriptRequest(chat_id=chat.id), metadata=auth(tenant, "agent", AGENT))
    assert "VIP customer" not in transcript.text
    stream = conv.stub.StreamChat(
        pb.StreamChatRequest(chat_id=chat.id, after_seq=note.seq - 1), metadata=visitor_of(chat, tenant)
    )
    async for event in stream:
        assert event.seq == note.seq and not event.HasField("message"), "the note's seq arrives with no content"
        break
    stream.cancel()
    assert (
        await status_of(send(conv, tenant, chat, "visitor", chat.visitor_id, kind=pb.MESSAGE_KIND_NOTE, text="x"))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert await status_of(send(conv, tenant, chat, kind=pb.MESSAGE_KIND_SYSTEM, text="x")) == grpc.StatusCode.INVALID_ARGUMENT


async def test_conv02_messages_are_immutable_in_the_database(conv, tenant):
    chat = await conv.open_chat(tenant)
    sent = await send(conv, tenant, chat, text="original")
    async with conv.ctx.pool.acquire() as conn:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
            await conn.execute("UPDATE messages SET text = 'edited' WHERE id = $1", sent.id)
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
            await conn.execute("DELETE FROM messages WHERE id = $1", sent.id)
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
            await conn.execute("TRUNCATE messages CASCADE")
    assert (await messages_of(conv, tenant, chat))[-1].text == "original"


async def test_conv02_client_message_id_makes_send_idempotent(conv, tenant):
    chat = await conv.open_chat(tenant)
    first = await send(conv, tenant, chat, "visitor", chat.visitor_id, text="hello", client_message_id="c-1")
    again = await send(conv, tenant, chat, "visitor", chat.visitor_id, text="hello", client_message_id="c-1")
    assert (again.id, again.seq) == (first.id, first.seq)
    assert [m.text for m in await messages_of(conv, tenant, chat)].count("hello") == 1


async def test_plat02_a_row_can_only_reference_a_chat_of_its_own_tenant(conv, tenant):
    chat = await conv.open_chat(tenant)
    sent = await send(conv, tenant, chat, text="mine")
    async with conv.ctx.pool.acquire() as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "INSERT INTO participants (tenant, chat_id, agent_id, role) VALUES ('intruder', $1, 'x', 'invited')",
                uuid.UUID(chat.id),
            )
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "INSERT INTO message_status (tenant, chat_id, seq, status) VALUES ('intruder', $1, $2, 'read')",
                uuid.UUID(chat.id),
                sent.seq,
            )
        # The same ids under another tenant are another row: keys start with the tenant.
        key = await conn.fetchval(
            "SELECT array_agg(a.attname ORDER BY k.i) FROM pg_constraint c, "
            "unnest(c.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attnum = k.n "
            "WHERE c.conname = 'messages_pkey' AND a.attrelid = c.conrelid "
            "AND c.connamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
        )
    assert key == ["tenant", "chat_id", "seq"]
