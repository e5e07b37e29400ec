"""Rows and domain values <-> protobuf messages.

Every enum follows the contracts' convention (kaiwa_common.protobuf): the domain's
lower-case name is the enum value's name without its prefix (CHAT_STATE_QUEUED <->
"queued", RICH_TYPE_QUICK_REPLIES <-> "quick_replies"), so there is no mapping table.
Rows come from the database (datetimes) or from the stream log and NOTIFY payloads
(ISO strings); both convert the same way.
"""

from __future__ import annotations

from datetime import datetime

from kaiwa.conversation.v1 import conversation_pb2 as pb

from kaiwa_common.protobuf import enum_name, enum_value, timestamp

from .domain import system_messages as sysmsg
from .domain.channels import CHANNELS, session_expires_at
from .domain.attachments import FILE_NOTICES
from .domain.messages import Span


def _when(value) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _set_time(message, field: str, value) -> None:
    stamp = timestamp(_when(value))
    if stamp is not None:
        getattr(message, field).CopyFrom(stamp)


def channel_name(value: int) -> str:
    return enum_name(pb.Channel, value, "channel")


def participant_pb(p: dict) -> pb.Participant:
    out = pb.Participant(agent_id=p["agent_id"], name=p["name"], role=p["role"])
    _set_time(out, "joined_at", p.get("joined_at"))
    _set_time(out, "left_at", p.get("left_at"))
    return out


def chat_pb(chat: dict, participants: list[dict] | None = None) -> pb.Chat:
    out = pb.Chat(
        id=str(chat["id"]),
        channel=enum_value(pb.Channel, chat["channel"]),
        state=enum_value(pb.ChatState, chat["state"]),
        department_id=chat["department_id"],
        visitor_id=chat["visitor_id"],
        visitor_name=chat["visitor_name"],
        visitor_email=chat["visitor_email"],
        question=chat["question"],
        agent_id=chat["agent_id"],
        last_seq=chat["last_seq"],
        end_reason=chat["end_reason"],
        queue_position=chat["queue_position"],
        estimated_wait_seconds=chat["estimated_wait_seconds"],
        bot_id=chat["bot_id"],
        fields=chat.get("form_fields") or {},
    )
    for field in ("started_at", "ended_at", "completed_at", "countdown_ends_at", "last_activity_at"):
        _set_time(out, field, chat.get(field))
    if CHANNELS[chat["channel"]].session_window is not None:
        times = {k: _when(chat[k]) for k in ("last_inbound_at", "started_at")}
        _set_time(out, "session_expires_at", session_expires_at({"channel": chat["channel"], **times}))
    people = participants if participants is not None else chat.get("participants", [])
    out.participants.extend(participant_pb(p) for p in people)
    return out


def message_pb(row: dict, locale: str) -> pb.Message:
    body = row["body"] or {}
    out = pb.Message(
        id=str(row["id"]),
        chat_id=str(row["chat_id"]),
        seq=row["seq"],
        sender_kind=enum_value(pb.SenderKind, row["sender_kind"]),
        sender_id=row["sender_id"],
        kind=enum_value(pb.MessageKind, row["kind"]),
        text=row["text"],
        channel=enum_value(pb.Channel, row["channel"]),
        status=enum_value(pb.MessageStatus, row.get("status") or ""),
        failure_reason=row.get("failure_reason") or "",
        reply_to_seq=row["reply_to_seq"] or 0,
        part=row["part"],
        parts=row["parts"],
        client_message_id=row["client_message_id"] or "",
        resent_from_seq=row["resent_from_seq"] or 0,
        emoji_only=row["emoji_only"],
    )
    _set_time(out, "sent_at", row["sent_at"])
    for span in body.get("spans", []):
        out.spans.append(pb.TextSpan(**span))
    if "file" in body:
        f = body["file"]
        out.file.CopyFrom(
            pb.FileAttachment(
                name=f["name"],
                mime_type=f["mime_type"],
                size_bytes=f["size_bytes"],
                url=f["url"],
                display=enum_value(pb.FileDisplay, f["display"]),
                preview_url=f["preview_url"],
            )
        )
        if f.get("notice"):
            out.file.notice = enum_value(pb.FileNotice, f["notice"])
            out.file.notice_text = FILE_NOTICES[f["notice"]][sysmsg.locale_of(locale)]
    if "link" in body:
        out.link.CopyFrom(pb.SharedLink(**body["link"]))
    if "rich" in body:
        out.rich.CopyFrom(rich_pb(body["rich"]))
    if "system" in body:
        system = body["system"]
        rendered = sysmsg.render(system["type"], system["params"], locale)
        out.system.CopyFrom(pb.SystemEvent(type=system["type"], params=system["params"], rendered=rendered))
        out.text = rendered
    return out


def messages_pb(rows: list[dict], locale: str) -> pb.Message:
    """The first part of a message, the others as its continuation."""
    first = message_pb(rows[0], locale)
    first.continuation.extend(message_pb(r, locale) for r in rows[1:])
    return first


def rich_pb(rich: dict) -> pb.RichElement:
    return pb.RichElement(
        type=enum_value(pb.RichType, rich["type"]),
        options=[pb.RichOption(**o) for o in rich.get("options", [])],
        cards=[
            pb.RichCard(
                title=c["title"],
                subtitle=c["subtitle"],
                image_url=c["image_url"],
                buttons=[pb.RichOption(**b) for b in c["buttons"]],
            )
            for c in rich.get("cards", [])
        ],
        template_name=rich.get("template_name", ""),
        template_language=rich.get("template_language", ""),
        template_params=rich.get("template_params", []),
    )


def rich_in(message: pb.RichElement) -> dict:
    def option(o: pb.RichOption) -> dict:
        return {"title": o.title, "payload": o.payload, "url": o.url}

    return {
        "type": enum_name(pb.RichType, message.type, "rich.type"),
        "options": [option(o) for o in message.options],
        "cards": [
            {"title": c.title, "subtitle": c.subtitle, "image_url": c.image_url, "buttons": [option(b) for b in c.buttons]}
            for c in message.cards
        ],
        "template_name": message.template_name,
        "template_language": message.template_language,
        "template_params": list(message.template_params),
    }


def spans_in(spans) -> list[Span]:
    return [Span(start=s.start, end=s.end, bold=s.bold, italic=s.italic, underline=s.underline, color=s.color) for s in spans]


def file_in(f: pb.FileAttachment) -> dict:
    return {"name": f.name, "mime_type": f.mime_type, "size_bytes": f.size_bytes, "url": f.url}


def note_pb(row: dict) -> pb.Note:
    out = pb.Note(
        id=str(row["id"]),
        chat_id=str(row["chat_id"] or ""),
        visitor_id=row["visitor_id"] or "",
        author_id=row["author_id"],
        text=row["text"],
    )
    _set_time(out, "created_at", row["created_at"])
    return out


def canned_pb(row: dict) -> pb.CannedResponse:
    out = pb.CannedResponse(shortcut=row["shortcut"], text=row["text"], updated_by=row["updated_by"])
    _set_time(out, "updated_at", row["updated_at"])
    return out


def channels_pb() -> list[pb.ChannelCapabilities]:
    return [
        pb.ChannelCapabilities(
            channel=enum_value(pb.Channel, c.name),
            name=c.name,
            statuses=sorted(enum_value(pb.MessageStatus, s) for s in c.statuses),
            reply_to=c.reply_to,
            rich_types=sorted(enum_value(pb.RichType, r) for r in c.rich_types),
            typing_indicator=c.typing_indicator,
            file_preview=c.file_preview,
            session_window_seconds=int(c.session_window.total_seconds()) if c.session_window else 0,
            max_text_length=c.max_text,
            max_file_bytes=c.max_file_bytes,
            file_types=list(c.file_types),
            markup=sorted(c.markup),
        )
        for c in CHANNELS.values()
    ]


def command_reply_pb(reply) -> pb.CommandReply:
    """CMD-01: a command's private reply (commands.Reply)."""
    return pb.CommandReply(
        outcome=enum_value(pb.CommandOutcome, reply.outcome),
        command=reply.command,
        lines=reply.lines,
        text="\n".join(reply.lines),
        chat_id=reply.chat_id,
    )


def command_reply_message(reply) -> pb.Message:
    """CMD-01: the reply to an agent's "#..." SendMessage: a message for the caller only,
    never stored (seq 0), kind SYSTEM of type command_reply."""
    text = "\n".join(reply.lines)
    out = pb.Message(
        chat_id=reply.chat_id,
        seq=0,
        sender_kind=pb.SENDER_KIND_SYSTEM,
        kind=pb.MESSAGE_KIND_SYSTEM,
        text=text,
        system=pb.SystemEvent(type="command_reply", params={"outcome": reply.outcome, "command": reply.command}, rendered=text),
    )
    _set_time(out, "sent_at", datetime.now().astimezone())
    return out
