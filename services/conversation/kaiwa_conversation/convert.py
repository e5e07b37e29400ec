"""Rows and domain values <-> protobuf messages."""

from __future__ import annotations

from datetime import datetime, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from kaiwa.conversation.v1 import conversation_pb2 as pb

from kaiwa_common.errors import InvalidArgument

from .domain import system_messages as sysmsg
from .domain.channels import CHANNELS
from .domain.messages import FILE_NOTICES, Span
from .handlers import session_expires_at

STATES = {
    "queued": pb.CHAT_STATE_QUEUED,
    "bot": pb.CHAT_STATE_BOT,
    "open": pb.CHAT_STATE_OPEN,
    "ended": pb.CHAT_STATE_ENDED,
    "completed": pb.CHAT_STATE_COMPLETED,
}
SENDERS = {
    "visitor": pb.SENDER_KIND_VISITOR,
    "agent": pb.SENDER_KIND_AGENT,
    "bot": pb.SENDER_KIND_BOT,
    "system": pb.SENDER_KIND_SYSTEM,
}
KINDS = {
    "text": pb.MESSAGE_KIND_TEXT,
    "file": pb.MESSAGE_KIND_FILE,
    "link": pb.MESSAGE_KIND_LINK,
    "rich": pb.MESSAGE_KIND_RICH,
    "note": pb.MESSAGE_KIND_NOTE,
    "system": pb.MESSAGE_KIND_SYSTEM,
}
STATUSES = {
    "sent": pb.MESSAGE_STATUS_SENT,
    "delivered": pb.MESSAGE_STATUS_DELIVERED,
    "read": pb.MESSAGE_STATUS_READ,
    "failed": pb.MESSAGE_STATUS_FAILED,
}
RICH = {
    "buttons": pb.RICH_TYPE_BUTTONS,
    "carousel": pb.RICH_TYPE_CAROUSEL,
    "list": pb.RICH_TYPE_LIST,
    "quick_replies": pb.RICH_TYPE_QUICK_REPLIES,
    "template": pb.RICH_TYPE_TEMPLATE,
}
DISPLAY = {"thumbnail": pb.FILE_DISPLAY_THUMBNAIL, "link": pb.FILE_DISPLAY_LINK, "audio_player": pb.FILE_DISPLAY_AUDIO_PLAYER}
NOTICES = {"unsupported_type": pb.FILE_NOTICE_UNSUPPORTED_TYPE, "preview_unavailable": pb.FILE_NOTICE_PREVIEW_UNAVAILABLE}


def _reverse(mapping: dict) -> dict:
    return {v: k for k, v in mapping.items()}


def channel_name(value: int) -> str:
    if value == pb.CHANNEL_UNSPECIFIED or value not in pb.Channel.values():
        raise InvalidArgument(f"channel is required: one of {', '.join(n for n in pb.Channel.keys()[1:])}")
    return pb.Channel.Name(value).removeprefix("CHANNEL_").lower()


def channel_value(name: str) -> int:
    return pb.Channel.Value(f"CHANNEL_{name.upper()}")


def enum_in(value: int, mapping: dict, what: str, allow_unspecified: bool = True) -> str:
    if value == 0 and allow_unspecified:
        return ""
    reverse = _reverse(mapping)
    if value not in reverse:
        raise InvalidArgument(f"{what} {value} is not valid")
    return reverse[value]


def ts(value) -> Timestamp | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    out = Timestamp()
    out.FromDatetime(value.astimezone(timezone.utc))
    return out


def _set_ts(message, field: str, value) -> None:
    stamp = ts(value)
    if stamp is not None:
        getattr(message, field).CopyFrom(stamp)


def participant_pb(p: dict) -> pb.Participant:
    out = pb.Participant(agent_id=p["agent_id"], name=p["name"], role=p["role"])
    _set_ts(out, "joined_at", p.get("joined_at"))
    _set_ts(out, "left_at", p.get("left_at"))
    return out


def chat_pb(chat: dict, participants: list[dict] | None = None) -> pb.Chat:
    out = pb.Chat(
        id=str(chat["id"]),
        channel=channel_value(chat["channel"]),
        state=STATES[chat["state"]],
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
    )
    for field in ("started_at", "ended_at", "completed_at", "countdown_ends_at", "last_activity_at"):
        _set_ts(out, field, chat.get(field))
    if CHANNELS[chat["channel"]].session_window is not None:
        parsed = {
            k: datetime.fromisoformat(chat[k]) if isinstance(chat[k], str) else chat[k] for k in ("last_inbound_at", "started_at")
        }
        _set_ts(out, "session_expires_at", session_expires_at({"channel": chat["channel"], **parsed}))
    people = participants if participants is not None else chat.get("participants", [])
    out.participants.extend(participant_pb(p) for p in people)
    return out


def message_pb(row: dict, locale: str) -> pb.Message:
    body = row["body"] or {}
    out = pb.Message(
        id=str(row["id"]),
        chat_id=str(row["chat_id"]),
        seq=row["seq"],
        sender_kind=SENDERS[row["sender_kind"]],
        sender_id=row["sender_id"],
        kind=KINDS[row["kind"]],
        text=row["text"],
        channel=channel_value(row["channel"]),
        status=STATUSES.get(row.get("status") or "", pb.MESSAGE_STATUS_UNSPECIFIED),
        failure_reason=row.get("failure_reason") or "",
        reply_to_seq=row["reply_to_seq"] or 0,
        part=row["part"],
        parts=row["parts"],
        client_message_id=row["client_message_id"] or "",
        resent_from_seq=row["resent_from_seq"] or 0,
        emoji_only=row["emoji_only"],
    )
    _set_ts(out, "sent_at", row["sent_at"])
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
                display=DISPLAY[f["display"]],
                preview_url=f["preview_url"],
            )
        )
        if f.get("notice"):
            out.file.notice = NOTICES[f["notice"]]
            out.file.notice_text = FILE_NOTICES[f["notice"]][sysmsg.locale_of(locale)]
    if "link" in body:
        out.link.CopyFrom(pb.SharedLink(**body["link"]))
    if "rich" in body:
        out.rich.CopyFrom(rich_pb(body["rich"]))
    if "system" in body:
        system = body["system"]
        out.system.CopyFrom(
            pb.SystemEvent(
                type=system["type"], params=system["params"], rendered=sysmsg.render(system["type"], system["params"], locale)
            )
        )
        out.text = out.system.rendered
    return out


def rich_pb(rich: dict) -> pb.RichElement:
    return pb.RichElement(
        type=RICH[rich["type"]],
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
    reverse = _reverse(RICH)
    if message.type not in reverse:
        raise InvalidArgument("rich.type must be BUTTONS, CAROUSEL, LIST, QUICK_REPLIES or TEMPLATE")
    option = lambda o: {"title": o.title, "payload": o.payload, "url": o.url}
    return {
        "type": reverse[message.type],
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
    _set_ts(out, "created_at", row["created_at"])
    return out


def canned_pb(row: dict) -> pb.CannedResponse:
    out = pb.CannedResponse(shortcut=row["shortcut"], text=row["text"], updated_by=row["updated_by"])
    _set_ts(out, "updated_at", row["updated_at"])
    return out


def channels_pb() -> list[pb.ChannelCapabilities]:
    return [
        pb.ChannelCapabilities(
            channel=channel_value(c.name),
            name=c.name,
            statuses=sorted(STATUSES[s] for s in c.statuses),
            reply_to=c.reply_to,
            rich_types=sorted(RICH[r] for r in c.rich_types),
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
