"""CONV-03 typed system messages (ja/en) fed by routing's events and other services;
CONV-04 delivery status that only moves forward, per channel, and resend."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.events.v1.routing_pb2 import (
    AgentInvited,
    ChatAssigned,
    ChatMissed,
    QueuePositionChanged,
    TransferDeclined,
    TransferRequested,
)

from services.conversation.tests.helpers import visitor_of
from tests.fixtures import auth, eventually, status_of

AGENT = "agent-1"


async def listed(conv, tenant, chat, locale="en", role="agent", sub=AGENT):
    return list(
        (
            await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id, locale=locale), metadata=auth(tenant, role, sub))
        ).messages
    )


async def system_types(conv, tenant, chat, **kw):
    return [m.system.type for m in await listed(conv, tenant, chat, **kw) if m.kind == pb.MESSAGE_KIND_SYSTEM]


async def test_conv03_system_messages_render_in_japanese_and_english(conv, tenant):
    chat = await conv.open_chat(tenant, agent_name="川根太郎")
    service = auth(tenant, "service", "crm_bridge")
    ticket = await conv.stub.PostSystemEvent(
        pb.PostSystemEventRequest(chat_id=chat.id, type="converted_to_ticket", params={"ticket_number": "6165"}), metadata=service
    )
    assert ticket.kind == pb.MESSAGE_KIND_SYSTEM and ticket.sender_kind == pb.SENDER_KIND_SYSTEM
    await conv.stub.PostSystemEvent(
        pb.PostSystemEventRequest(chat_id=chat.id, type="visitor_blocked", params={"agent_name": "川根太郎"}), metadata=service
    )
    ja = {m.system.type: m.system.rendered for m in await listed(conv, tenant, chat, "ja") if m.system.type}
    en = {m.system.type: m.system.rendered for m in await listed(conv, tenant, chat, "en") if m.system.type}
    assert ja["accepted"] == "川根太郎がチャットを承諾しました"
    assert ja["converted_to_ticket"] == "チャットをもとに問い合わせが作成されました(問い合わせ番号:6165)"
    assert ja["visitor_blocked"] == "川根太郎が利用者をブロックしました"
    assert en["converted_to_ticket"] == "A ticket was created from this chat (ticket number: 6165)"
    assert en["accepted"] == "川根太郎 accepted the chat"
    bad = [
        pb.PostSystemEventRequest(chat_id=chat.id, type="made_up", params={}),
        pb.PostSystemEventRequest(chat_id=chat.id, type="accepted", params={"agent_name": "x"}),
        pb.PostSystemEventRequest(chat_id=chat.id, type="converted_to_ticket", params={}),
    ]
    for request in bad:
        assert await status_of(conv.stub.PostSystemEvent(request, metadata=service)) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        await status_of(conv.stub.PostSystemEvent(bad[0], metadata=auth(tenant, "agent", AGENT)))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await status_of(
            conv.stub.PostSystemEvent(
                pb.PostSystemEventRequest(chat_id=chat.id, type="converted_to_ticket", params={"ticket_number": "1"}),
                metadata=auth("other-tenant", "service", "crm_bridge"),
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )


# Seed 002, 「システムによるメッセージの表示」: every example, with the agent named.
SEED_002 = {
    "bot_handover": ("ボットがチャットを担当者に転送しました", "The bot handed the chat over to an agent"),
    "assigned": ("チャットが川根太郎に割り当てられました", "Chat assigned to 川根太郎"),
    "converted_to_ticket": (
        "チャットをもとに問い合わせが作成されました(問い合わせ番号:6165)",
        "A ticket was created from this chat (ticket number: 6165)",
    ),
    "visitor_blocked": ("川根太郎が利用者をブロックしました", "川根太郎 blocked the visitor"),
    "visitor_unblocked": ("川根太郎が利用者のブロックを解除しました", "川根太郎 unblocked the visitor"),
    "reopened": ("川根太郎がチャットを再開しました", "川根太郎 reopened the chat"),
    "auto_completed": ("チャットが自動で完了しました", "Chat auto-completed after inactivity"),
}


async def test_conv03_every_seed_system_message_in_ja_and_en_names_the_agent(conv, tenant):
    chat = await conv.start(tenant, bot_id="faq-bot")
    service, agent = auth(tenant, "service", "faq-bot"), auth(tenant, "agent", AGENT)
    await conv.stub.HandOverToHuman(pb.HandOverToHumanRequest(chat_id=chat.id), metadata=service)
    # Routing's chat_assigned carries the agent's name (routing requires one for every agent).
    await conv.routing_event(tenant, ChatAssigned(chat_id=chat.id, agent_id=AGENT, agent_name="川根太郎", how="assigned"))
    await conv.wait_state(tenant, chat.id, pb.CHAT_STATE_OPEN)
    for type_name, params in (
        ("converted_to_ticket", {"ticket_number": "6165"}),
        ("visitor_blocked", {"agent_name": "川根太郎"}),
        ("visitor_unblocked", {"agent_name": "川根太郎"}),
    ):
        await conv.stub.PostSystemEvent(
            pb.PostSystemEventRequest(chat_id=chat.id, type=type_name, params=params), metadata=auth(tenant, "service", "visitor")
        )
    await conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=agent)
    await conv.stub.ReopenChat(pb.ReopenChatRequest(chat_id=chat.id), metadata=agent)
    await conv.stub.UpdateSettings(pb.Settings(inactivity_seconds=1), metadata=auth(tenant, "admin", "root"))
    ended = await conv.stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=agent)
    await conv.wait_state(tenant, chat.id, pb.CHAT_STATE_COMPLETED, timeout=5)
    ja = {m.system.type: m.system.rendered for m in await listed(conv, tenant, chat, "ja") if m.system.type}
    en = {m.system.type: m.system.rendered for m in await listed(conv, tenant, chat, "en") if m.system.type}
    for type_name, (japanese, english) in SEED_002.items():
        assert (ja[type_name], en[type_name]) == (japanese, english), type_name
    when = ended.ended_at.ToDatetime().strftime("%Y-%m-%d %H:%M UTC")
    assert ja["ended"] == f"チャットが終了しました({when})" and en["ended"] == f"Chat ended ({when})"


async def test_conv03_transfer_invite_and_decline_from_routing_events(conv, tenant):
    chat = await conv.open_chat(tenant, agent=AGENT, agent_name="Aiko")
    await conv.routing_event(tenant, AgentInvited(chat_id=chat.id, agent_id="agent-2", agent_name="Ben", by_agent_id=AGENT))
    await conv.routing_event(
        tenant,
        TransferRequested(
            chat_id=chat.id, from_agent_id=AGENT, to_agent_id="agent-2", note="billing question", transfer_id="t-1"
        ),
    )
    await conv.routing_event(
        tenant,
        TransferDeclined(
            chat_id=chat.id, from_agent_id=AGENT, to_agent_id="agent-2", note="billing question", reason="busy", transfer_id="t-1"
        ),
    )

    async def declined():
        msgs = await listed(conv, tenant, chat)
        return msgs if any(m.system.type == "transfer_declined" for m in msgs) else None

    msgs = await eventually(declined, "the decline is recorded")
    by_type = {m.system.type: m for m in msgs if m.system.type}
    assert by_type["transfer_declined"].reply_to_seq == by_type["transfer_requested"].seq, "decline under the note"
    assert by_type["transfer_requested"].system.rendered == "Aiko asked to transfer the chat to Ben (note: billing question)", (
        "agents named, not their ids"
    )
    assert by_type["transfer_declined"].system.rendered == "Ben declined the transfer: busy (note: billing question)"
    assert by_type["agent_invited"].system.rendered == "Aiko invited Ben to the chat"
    invited = await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=chat.id, text="Ben here"), metadata=auth(tenant, "agent", "agent-2")
    )
    assert invited.sender_id == "agent-2"
    visitor_view = await system_types(conv, tenant, chat, role="visitor", sub=chat.visitor_id)
    assert "transfer_requested" not in visitor_view and "agent_invited" not in visitor_view and "accepted" in visitor_view
    # Only the owner completes, not an invited agent.
    assert (
        await status_of(
            conv.stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=auth(tenant, "agent", "agent-2"))
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )

    # A transfer that is accepted: the new owner takes over, the previous one leaves.
    await conv.routing_event(
        tenant, ChatAssigned(chat_id=chat.id, agent_id="agent-3", agent_name="Chika", previous_agent_id=AGENT, how="transferred")
    )

    async def transferred():
        current = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=auth(tenant, "agent", "agent-3"))
        return current if current.agent_id == "agent-3" else None

    current = await eventually(transferred, "the transfer is applied")
    roles = {p.agent_id: p.role for p in current.participants}
    assert roles == {AGENT: "former", "agent-2": "invited", "agent-3": "owner"}
    assert (
        await status_of(
            conv.stub.SendMessage(
                pb.SendMessageRequest(chat_id=chat.id, text="still here?"), metadata=auth(tenant, "agent", AGENT)
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert "transferred" in await system_types(conv, tenant, chat, sub="agent-3")


async def test_conv03_transfer_notes_name_the_target_as_routing_names_it(conv, tenant):
    chat = await conv.open_chat(tenant, agent=AGENT, agent_name="Aiko")
    billing = str(uuid.uuid4())
    events = [
        # To an agent who has never been in the chat: routing's name for them.
        TransferRequested(
            chat_id=chat.id, from_agent_id=AGENT, to_agent_id="agent-7", to_agent_name="Daichi", note="vip", transfer_id="t-1"
        ),
        TransferDeclined(
            chat_id=chat.id, from_agent_id=AGENT, to_agent_id="agent-7", to_agent_name="Daichi", reason="busy", transfer_id="t-1"
        ),
        # To a department: its name; declined by one of its agents (named), or unanswered (the department).
        TransferRequested(
            chat_id=chat.id, from_agent_id=AGENT, to_department_id=billing, to_department_name="Billing", transfer_id="t-2"
        ),
        TransferDeclined(
            chat_id=chat.id,
            from_agent_id=AGENT,
            to_agent_id="agent-8",
            to_agent_name="Eri",
            to_department_id=billing,
            to_department_name="Billing",
            reason="not mine",
            transfer_id="t-2",
        ),
        TransferRequested(
            chat_id=chat.id, from_agent_id=AGENT, to_department_id=billing, to_department_name="Billing", transfer_id="t-3"
        ),
        TransferDeclined(
            chat_id=chat.id,
            from_agent_id=AGENT,
            to_department_id=billing,
            to_department_name="Billing",
            reason="timeout",
            transfer_id="t-3",
        ),
        # No names in the event (an older routing): the agent's id, and the decline named as its request.
        TransferRequested(chat_id=chat.id, from_agent_id=AGENT, to_agent_id="agent-9", transfer_id="t-4"),
        TransferDeclined(chat_id=chat.id, from_agent_id=AGENT, to_agent_id="agent-9", reason="away", transfer_id="t-4"),
    ]
    for event in events:
        await conv.routing_event(tenant, event)

    async def all_declined():
        msgs = await listed(conv, tenant, chat)
        return msgs if sum(m.system.type == "transfer_declined" for m in msgs) == 4 else None

    msgs = await eventually(all_declined, "the four declines are recorded")
    notes = [m for m in msgs if m.system.type in ("transfer_requested", "transfer_declined")]
    assert [m.system.rendered for m in notes] == [
        "Aiko asked to transfer the chat to Daichi (note: vip)",
        "Daichi declined the transfer: busy (note: -)",
        "Aiko asked to transfer the chat to Billing (note: -)",
        "Eri declined the transfer: not mine (note: -)",
        "Aiko asked to transfer the chat to Billing (note: -)",
        "Billing declined the transfer: timeout (note: -)",
        "Aiko asked to transfer the chat to agent-9 (note: -)",
        "agent-9 declined the transfer: away (note: -)",
    ]
    for request, decline in zip(notes[::2], notes[1::2], strict=True):
        assert decline.reply_to_seq == request.seq, "each decline under its request"
    ja = [m.system.rendered for m in await listed(conv, tenant, chat, "ja") if m.system.type == "transfer_requested"]
    assert ja[0] == "AikoがDaichiへの転送を依頼しました(メモ: vip)"


async def test_conv03_declined_transfer_returning_to_queue(conv, tenant):
    chat = await conv.open_chat(tenant)
    await conv.routing_event(
        tenant,
        TransferDeclined(chat_id=chat.id, from_agent_id=AGENT, to_agent_id="agent-9", reason="offline", returned_to_queue=True),
    )
    queued = await conv.wait_state(tenant, chat.id, pb.CHAT_STATE_QUEUED)
    assert queued.agent_id == "" and "returned_to_queue" in await system_types(conv, tenant, chat, role="admin", sub="a")


async def test_conv05_missed_chat_ends_with_reason_and_event(conv, tenant):
    chat = await conv.start(tenant, visitor_email="late@example.com")
    await conv.routing_event(tenant, QueuePositionChanged(chat_id=chat.id, position=3, estimated_wait_seconds=120))

    async def positioned():
        current = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=visitor_of(chat, tenant))
        return current.queue_position == 3 and current.estimated_wait_seconds == 120

    await eventually(positioned, "the queue position reaches the chat")
    stream = conv.stub.StreamChat(pb.StreamChatRequest(chat_id=chat.id), metadata=visitor_of(chat, tenant))
    async for event in stream:
        if event.HasField("queue"):
            assert (event.queue.position, event.queue.estimated_wait_seconds) == (3, 120)
            break
    stream.cancel()
    await conv.routing_event(tenant, ChatMissed(chat_id=chat.id, reason="no_agent_accepted", waited_seconds=300))
    ended = await conv.wait_state(tenant, chat.id, pb.CHAT_STATE_ENDED)
    assert ended.end_reason == "missed"
    events = await eventually(lambda: conv.events(tenant, "chat_ended", chat.id), "chat_ended for the missed chat")
    payload = events[0].chat_ended
    assert (payload.reason, payload.missed_reason, payload.waited_seconds, payload.visitor_email) == (
        "missed",
        "no_agent_accepted",
        300,
        "late@example.com",
    )
    assert "missed" in await system_types(conv, tenant, chat, role="admin", sub="a")


async def test_conv04_status_moves_only_forward_and_per_channel(conv, tenant):
    chat = await conv.open_chat(tenant, channel=pb.CHANNEL_WHATSAPP)
    sent = await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=chat.id, text="Your order shipped"), metadata=auth(tenant, "agent", AGENT)
    )
    assert sent.status == pb.MESSAGE_STATUS_SENT
    channel = auth(tenant, "service", "whatsapp-adapter")

    def update(status, seq=sent.seq, reason="", metadata=channel):
        return conv.stub.UpdateMessageStatus(
            pb.UpdateMessageStatusRequest(chat_id=chat.id, seq=seq, status=status, failure_reason=reason), metadata=metadata
        )

    assert (await update(pb.MESSAGE_STATUS_DELIVERED)).status == pb.MESSAGE_STATUS_DELIVERED
    assert (await update(pb.MESSAGE_STATUS_READ)).status == pb.MESSAGE_STATUS_READ
    assert (await update(pb.MESSAGE_STATUS_READ)).status == pb.MESSAGE_STATUS_READ, "a repeat is harmless"
    assert await status_of(update(pb.MESSAGE_STATUS_DELIVERED)) == grpc.StatusCode.FAILED_PRECONDITION
    assert await status_of(update(pb.MESSAGE_STATUS_FAILED, reason="bad_format")) == grpc.StatusCode.FAILED_PRECONDITION
    assert await status_of(update(pb.MESSAGE_STATUS_UNSPECIFIED)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(update(9)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status_of(update(pb.MESSAGE_STATUS_READ, seq=9999)) == grpc.StatusCode.NOT_FOUND
    assert (
        await status_of(update(pb.MESSAGE_STATUS_READ, metadata=auth(tenant, "visitor", "intruder")))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await status_of(update(pb.MESSAGE_STATUS_READ, metadata=auth(tenant, "agent", AGENT)))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    incoming = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="thanks"), metadata=channel)
    assert await status_of(update(pb.MESSAGE_STATUS_READ, seq=incoming.seq)) == grpc.StatusCode.FAILED_PRECONDITION
    history = {
        m.seq: m
        for m in (
            await conv.stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=auth(tenant, "agent", AGENT))
        ).messages
    }
    assert history[sent.seq].status == pb.MESSAGE_STATUS_READ

    telegram = await conv.open_chat(tenant, channel=pb.CHANNEL_TELEGRAM)
    out = await conv.stub.SendMessage(
        pb.SendMessageRequest(chat_id=telegram.id, text="hi"), metadata=auth(tenant, "agent", AGENT)
    )
    refused = conv.stub.UpdateMessageStatus(
        pb.UpdateMessageStatusRequest(chat_id=telegram.id, seq=out.seq, status=pb.MESSAGE_STATUS_READ), metadata=channel
    )
    assert await status_of(refused) == grpc.StatusCode.INVALID_ARGUMENT, "Telegram never reports read"


async def test_conv04_failed_message_is_resent_with_template_after_window(conv, tenant):
    chat = await conv.open_chat(tenant, channel=pb.CHANNEL_WHATSAPP)
    agent, channel = auth(tenant, "agent", AGENT), auth(tenant, "service", "whatsapp-adapter")
    sent = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="Here is the form"), metadata=agent)
    assert (
        await status_of(conv.stub.ResendMessage(pb.ResendMessageRequest(chat_id=chat.id, seq=sent.seq), metadata=agent))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    missing_reason = conv.stub.UpdateMessageStatus(
        pb.UpdateMessageStatusRequest(chat_id=chat.id, seq=sent.seq, status=pb.MESSAGE_STATUS_FAILED), metadata=channel
    )
    assert await status_of(missing_reason) == grpc.StatusCode.INVALID_ARGUMENT
    failed = await conv.stub.UpdateMessageStatus(
        pb.UpdateMessageStatusRequest(
            chat_id=chat.id, seq=sent.seq, status=pb.MESSAGE_STATUS_FAILED, failure_reason="bad_format"
        ),
        metadata=channel,
    )
    assert failed.status == pb.MESSAGE_STATUS_FAILED and failed.failure_reason == "bad_format"
    resent = await conv.stub.ResendMessage(pb.ResendMessageRequest(chat_id=chat.id, seq=sent.seq), metadata=agent)
    assert (resent.text, resent.resent_from_seq, resent.status) == ("Here is the form", sent.seq, pb.MESSAGE_STATUS_SENT)

    # The visitor's last message is 25 h old (as the channel reports): the window is closed.
    old = Timestamp()
    old.FromDatetime(datetime.now(timezone.utc) - timedelta(hours=25))
    await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="hello?", channel_sent_at=old), metadata=channel)
    current = await conv.stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=agent)
    assert current.session_expires_at.ToDatetime(timezone.utc) < datetime.now(timezone.utc)
    assert (
        await status_of(conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="free text"), metadata=agent))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    template = pb.RichElement(
        type=pb.RICH_TYPE_TEMPLATE, template_name="order_update", template_language="ja", template_params=["1234"]
    )
    late = await conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, rich=template), metadata=agent)
    await conv.stub.UpdateMessageStatus(
        pb.UpdateMessageStatusRequest(
            chat_id=chat.id, seq=late.seq, status=pb.MESSAGE_STATUS_FAILED, failure_reason="session_expired"
        ),
        metadata=channel,
    )
    await conv.stub.UpdateMessageStatus(
        pb.UpdateMessageStatusRequest(
            chat_id=chat.id, seq=resent.seq, status=pb.MESSAGE_STATUS_FAILED, failure_reason="session_expired"
        ),
        metadata=channel,
    )
    assert (
        await status_of(conv.stub.ResendMessage(pb.ResendMessageRequest(chat_id=chat.id, seq=resent.seq), metadata=agent))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    with_template = await conv.stub.ResendMessage(
        pb.ResendMessageRequest(chat_id=chat.id, seq=resent.seq, template=template), metadata=agent
    )
    assert with_template.rich.template_name == "order_update" and with_template.resent_from_seq == resent.seq
