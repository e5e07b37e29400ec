"""CONV-02/11/12/13: SendMessage, by the visitor, an agent, the bot or a channel's
service, in one transaction with the chat row locked (or the one-statement fast path):

    checks (who, what, which state) ─▶ canned response expanded ─▶ split per channel
    ─▶ messages + message_sent (outbox) + live wake-up
    visitor: cancels a running countdown; agent reply: reopens a completed chat (owner);
    complete=true: the agent's last word, then the chat is completed

Resending a failed message is resend.py; typing is typing_indicator.py.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kaiwa_common.auth import ADMIN, AGENT, SERVICE, VISITOR
from kaiwa_common.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, parse_uuid

from . import store, transitions
from .domain import lifecycle as lc
from .domain.attachments import check_file, check_link, check_rich
from .domain.channels import Channel, channel, session_expires_at, window_closed
from .domain.messages import MAX_NOTE, MAX_TEXT, Draft, Span, check_spans, check_text, is_emoji_only, split
from .unit_of_work import Actor, ChatWriter, Deps, message_row, message_sent, name_of, now, require_member, writing


@dataclass
class SendCommand:
    chat_id: str
    text: str = ""
    kind: str = ""  # text, file, link, rich, note; "" = from the fields set
    spans: list[Span] = field(default_factory=list)
    file: dict | None = None
    link: dict | None = None
    rich: dict | None = None
    reply_to_seq: int = 0
    complete: bool = False
    canned_shortcut: str = ""
    client_message_id: str = ""
    as_sender: str = ""  # service tokens: visitor or bot
    channel_sent_at: datetime | None = None


async def send_message(deps: Deps, actor: Actor, cmd: SendCommand) -> list[dict]:
    """The stored message (the parts of a long one); a repeated client_message_id returns
    what the first call stored."""
    chat_id = parse_uuid(cmd.chat_id, "chat_id")
    _precheck(actor, cmd)
    fast = await _send_fast(deps, actor, chat_id, cmd)
    if fast is not None:
        return fast
    async with writing(deps, actor.tenant, chat_id) as w:
        chat, conn = w.chat, w.conn
        ch = channel(chat["channel"])
        sender_kind, sender_id = await _sender(conn, actor, chat, cmd)
        if cmd.client_message_id:
            existing = await store.messages_by_client_id(conn, actor.tenant, chat_id, sender_id, cmd.client_message_id)
            if existing:
                return existing
        draft = await _draft(conn, cmd, ch, sender_kind, chat)
        outgoing = sender_kind in ("agent", "bot") and draft.kind != "note"
        await _reopen_by_reply(w, sender_kind, sender_id, draft)
        _refuse_state(chat, sender_kind, draft, outgoing)
        if draft.reply_to_seq:
            await _check_reply(conn, chat, ch, draft.reply_to_seq, sender_kind)
        if sender_kind == "visitor" and chat["countdown_ends_at"] is not None:
            await transitions.cancel_countdown(w, by="visitor")
        parts = split(draft, ch.max_text)
        rows = await w.append(parts, sender_kind, sender_id, outgoing=outgoing, client_message_id=cmd.client_message_id or None)
        if sender_kind == "visitor":
            w.set(last_inbound_at=cmd.channel_sent_at or rows[0]["sent_at"])
        if cmd.complete:
            await transitions.complete(w, "agent", actor)
    return rows


async def _send_fast(deps: Deps, actor: Actor, chat_id, cmd: SendCommand) -> list[dict] | None:
    """The common case in one statement: validate against a snapshot of the chat, then
    write only if the chat's row is still that version (optimistic; None = take the
    locked path). The snapshot is this replica's from its last write to the chat when it
    has one (one round trip in all), else read first.

    Anything that changes the chat besides appending (reopen, countdown cancel, complete),
    needs another lookup (reply-to, canned, idempotency key, invited agents) or several
    parts goes the locked way."""
    if cmd.complete or cmd.reply_to_seq or cmd.canned_shortcut or cmd.client_message_id:
        return None
    async with deps.ctx.pool.acquire() as conn:
        known = deps.snapshots.get(actor.tenant, chat_id)
        if known is not None:
            with contextlib.suppress(DomainError):  # a refusal is only ever given on a fresh read
                rows = await _append_to_snapshot(deps, conn, actor, cmd, *known)
                if rows is not _STALE:
                    return rows
            deps.snapshots.drop(actor.tenant, chat_id)
        fresh = await store.get_chat_versioned(conn, actor.tenant, chat_id)
        if fresh is None:
            raise NotFound(f"chat {chat_id} not found")
        rows = await _append_to_snapshot(deps, conn, actor, cmd, *fresh)
        return None if rows is _STALE else rows


_STALE = object()  # the chat changed since its snapshot: nothing was written


async def _append_to_snapshot(deps: Deps, conn, actor: Actor, cmd: SendCommand, chat: dict, version: str):
    """The message, if the snapshot allows it and is still current: its rows, None (the
    locked path must decide) or _STALE."""
    if actor.role in (AGENT, ADMIN) and chat["agent_id"] != actor.sub:
        return None
    sender_kind, sender_id = await _sender(conn, actor, chat, cmd)
    if sender_kind == "visitor" and chat["countdown_ends_at"] is not None:
        return None
    if sender_kind == "agent" and chat["state"] == lc.COMPLETED:
        return None  # the agent's reply reopens it
    ch = channel(chat["channel"])
    draft = await _draft(conn, cmd, ch, sender_kind, chat)
    outgoing = sender_kind in ("agent", "bot") and draft.kind != "note"
    _refuse_state(chat, sender_kind, draft, outgoing)
    if len(draft.text) > ch.max_text and not draft.emoji_only:
        return None
    row = message_row(chat, chat["last_seq"] + 1, draft, sender_kind, sender_id, outgoing)
    outbox_row = deps.ctx.outbox.prepare(actor.tenant, message_sent(row))
    inbound = (cmd.channel_sent_at or now()) if sender_kind == "visitor" else None
    written = await store.append_if_unchanged(
        conn, chat, version, row, inbound, outbox_row, deps.ctx.outbox.channel, deps.hub.channel
    )
    if written is None:
        return _STALE
    # The row as the statement left it (the same three columns it sets).
    chat.update(last_seq=row["seq"], last_activity_at=row["sent_at"], last_inbound_at=inbound or chat["last_inbound_at"])
    deps.snapshots.put(chat, written)
    return [row]


def _precheck(actor: Actor, cmd: SendCommand) -> None:
    """What the request alone says is not allowed (before the chat is read)."""
    if cmd.as_sender and actor.role != SERVICE:
        raise PermissionDenied("only a service relaying a channel may set as_sender")
    if cmd.as_sender not in ("", "visitor", "bot"):
        raise InvalidArgument("as_sender must be SENDER_KIND_VISITOR or SENDER_KIND_BOT")
    if cmd.channel_sent_at is not None:
        if actor.role != SERVICE:
            raise PermissionDenied("only a service relaying a channel may set channel_sent_at")
        if not now() - timedelta(days=30) <= cmd.channel_sent_at <= now() + timedelta(minutes=1):
            raise InvalidArgument("channel_sent_at must lie within the last 30 days and not in the future")
    if cmd.complete and actor.role != AGENT:
        raise PermissionDenied("only the assigned agent can send and complete")
    if len(cmd.client_message_id) > 100:
        raise InvalidArgument("client_message_id is too long (at most 100 characters)")
    if cmd.kind == "system":
        raise InvalidArgument("system messages are written by the service (see PostSystemEvent)")
    if cmd.kind == "note" and actor.role not in (AGENT, ADMIN):
        raise PermissionDenied("only agents write internal notes")
    if sum(x is not None for x in (cmd.file, cmd.link, cmd.rich)) > 1:
        raise InvalidArgument("set only one of file, link and rich")
    if cmd.canned_shortcut and cmd.text:
        raise InvalidArgument("set either text or canned_shortcut, not both")
    if cmd.canned_shortcut and actor.role not in (AGENT, ADMIN):
        raise PermissionDenied("only agents use canned responses")


async def _sender(conn, actor: Actor, chat: dict, cmd: SendCommand) -> tuple[str, str]:
    """(sender kind, sender id) of this caller in this chat."""
    if actor.role == VISITOR:
        if chat["visitor_id"] != actor.sub:
            raise PermissionDenied("this chat belongs to another visitor")
        return "visitor", actor.sub
    if actor.role == SERVICE:
        if cmd.as_sender == "bot":
            return "bot", chat["bot_id"] or actor.sub
        return "visitor", chat["visitor_id"]
    await require_member(conn, chat, actor.sub)
    return "agent", actor.sub


async def _draft(conn, cmd: SendCommand, ch: Channel, sender_kind: str, chat: dict) -> Draft:
    text = cmd.text
    if cmd.canned_shortcut:
        canned = await store.canned(conn, chat["tenant"], cmd.canned_shortcut)
        if canned is None:
            raise NotFound(f"canned response {cmd.canned_shortcut!r} not found")
        text = canned["text"].replace("{visitor_name}", chat["visitor_name"] or "")
    kind = cmd.kind or ("file" if cmd.file else "link" if cmd.link else "rich" if cmd.rich else "text")
    needs = {"file": cmd.file, "link": cmd.link, "rich": cmd.rich}
    if kind in needs and needs[kind] is None:
        raise InvalidArgument(f"a {kind} message needs its {kind} field")
    if kind in ("text", "note") and (cmd.file or cmd.link or cmd.rich):
        raise InvalidArgument(f"a {kind} message carries text only")
    note = kind == "note"
    check_text(text, required=kind in ("text", "note"), limit=MAX_NOTE if note else MAX_TEXT, what="note" if note else "text")
    spans = check_spans(text, cmd.spans, ch)
    if kind == "rich" and sender_kind == "visitor":
        raise InvalidArgument("visitors cannot send rich elements (a chosen option is sent as text)")
    return Draft(
        kind=kind,
        text=text,
        spans=spans,
        file=check_file(cmd.file, ch, inbound=sender_kind == "visitor") if cmd.file else None,
        link=check_link(cmd.link) if cmd.link else None,
        rich=check_rich(cmd.rich, ch) if cmd.rich else None,
        reply_to_seq=cmd.reply_to_seq,
        emoji_only=kind == "text" and is_emoji_only(text),
    )


async def _reopen_by_reply(w: ChatWriter, sender_kind: str, sender_id: str, draft: Draft) -> None:
    """CONV-05: the assigned agent's reply reopens a completed chat (outside the session
    window only a template may go out: _refuse_state then refuses anything else and the
    transaction, reopen included, rolls back)."""
    chat = w.chat
    if sender_kind == "agent" and chat["state"] == lc.COMPLETED and draft.kind != "note" and chat["agent_id"] == sender_id:
        await transitions.reopen(w, by_name=await name_of(w.conn, chat, sender_id), reason="agent")


def _refuse_state(chat: dict, sender_kind: str, draft: Draft, outgoing: bool) -> None:
    """Who may write in which state. A customer message to a completed chat is added to
    it and shown to the agent; it does not reopen the chat (nothing reopens by itself)."""
    state = chat["state"]
    if sender_kind == "visitor" and chat["visitor_blocked"]:
        raise PermissionDenied("this visitor has been blocked: their messages are no longer accepted in this chat")
    if draft.kind == "note":
        return
    if sender_kind == "visitor" and state == lc.ENDED:
        raise FailedPrecondition("the chat has ended: start a new chat")
    if sender_kind == "bot" and state != lc.BOT:
        raise FailedPrecondition(f"the bot no longer holds this chat (it is {state})")
    if sender_kind == "agent" and state != lc.OPEN:
        hint = {lc.ENDED: ": reopen it first", lc.COMPLETED: ": its assigned agent reopens it (by hand or by replying)"}
        raise FailedPrecondition(f"the chat is {state}{hint.get(state, '')}")
    if outgoing and window_closed(chat, now()) and (draft.rich or {}).get("type") != "template":
        raise FailedPrecondition(
            f"the {chat['channel']} session window closed at {session_expires_at(chat):%Y-%m-%d %H:%M} UTC: "
            "only an approved template may be sent"
        )


async def _check_reply(conn, chat: dict, ch: Channel, seq: int, sender_kind: str) -> None:
    if not ch.reply_to:
        raise InvalidArgument(f"channel {ch.name} does not support replying to a message")
    target = await store.message(conn, chat["tenant"], chat["id"], seq)
    if target is None or (target["kind"] == "note" and sender_kind == "visitor"):
        raise NotFound(f"message {seq} not found in this chat")
    if target["kind"] in ("system", "note"):
        raise InvalidArgument(f"message {seq} is a {target['kind']} message and cannot be quoted to the visitor")
