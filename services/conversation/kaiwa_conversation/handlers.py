"""Use cases: each runs in one transaction that locks the chat row, so a chat's sequence
numbers, state and outbox events always change together and in order."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import AsyncIterator

import asyncpg
from kaiwa.events.v1.conversation_pb2 import BotHandedOver, ChatCompleted, ChatEnded, ChatReopened, MessageSent

from kaiwa_common import timers
from kaiwa_common.auth import current_identity
from kaiwa_common.db import unit_of_work
from kaiwa_common.idempotency import claim_request, fingerprint_of
from kaiwa_common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, parse_uuid

from . import store
from .domain import lifecycle as lc
from .domain import system_messages as sysmsg
from .domain.channels import Channel, channel
from .domain.messages import (
    FAILURE_REASONS,
    MAX_NOTE,
    Draft,
    Span,
    check_file,
    check_link,
    check_rich,
    check_spans,
    check_text,
    is_emoji_only,
    next_status,
    split,
)
from .assignment import MEMBER, OWNER, NotAssignedYet
from .routing_client import RoutingClient
from .writer import ChatWriter, now

COUNTDOWN = "conversation.countdown"
INACTIVITY = "conversation.inactivity"


@dataclass(frozen=True)
class Actor:
    tenant: str
    role: str
    sub: str

    @classmethod
    def current(cls) -> "Actor":
        identity = current_identity()
        return cls(identity.tenant, identity.role, identity.sub)

    @property
    def is_staff(self) -> bool:
        return self.role in ("agent", "admin", "service")


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


def short(value: str, what: str, limit: int, required: bool = False) -> str:
    value = (value or "").strip()
    try:
        check_text(value, required=required, limit=limit, what=what)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    return value


def invalid(exc: ValueError) -> InvalidArgument:
    return InvalidArgument(str(exc))


def session_expires_at(chat: dict) -> datetime | None:
    window = channel(chat["channel"]).session_window
    if window is None:
        return None
    return (chat["last_inbound_at"] or chat["started_at"]) + window


def window_closed(chat: dict) -> bool:
    expires = session_expires_at(chat)
    return expires is not None and expires <= now()


class Conversation:
    def __init__(self, ctx, schema: str, countdown_scale: float = 1.0, routing: RoutingClient | None = None):
        self.ctx = ctx
        self.routing = routing or RoutingClient(ctx)
        self.notify_channel = f"kaiwa_live_{schema}"
        self.countdown_scale = countdown_scale

    # --- plumbing -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def writing(self, tenant: str, chat_id, conn: asyncpg.Connection | None = None) -> AsyncIterator[ChatWriter]:
        """Lock the chat, hand out a writer, save the chat and wake watchers at the end."""
        async with contextlib.AsyncExitStack() as stack:
            if conn is None:
                conn = await stack.enter_async_context(unit_of_work(self.ctx.pool))
            chat = await store.get_chat(conn, tenant, chat_id, lock=True)
            if chat is None:
                raise NotFound(f"chat {chat_id} not found")
            writer = ChatWriter(conn, self.ctx.outbox, self.notify_channel, chat)
            first_seq = chat["last_seq"]
            yield writer
            if writer.changed or chat["last_seq"] != first_seq:
                await writer.finish()

    async def _member(self, conn, chat: dict, agent_id: str) -> bool:
        if chat["agent_id"] == agent_id:
            return True
        people = (await store.participants(conn, chat["tenant"], [chat["id"]])).get(str(chat["id"]), [])
        return any(p["agent_id"] == agent_id and p["role"] != "former" for p in people)

    async def _name(self, conn, chat: dict, agent_id: str) -> str:
        people = (await store.participants(conn, chat["tenant"], [chat["id"]])).get(str(chat["id"]), [])
        return next((p["name"] for p in people if p["agent_id"] == agent_id and p["name"]), agent_id)

    @staticmethod
    def check_read(actor: Actor, chat: dict | None, chat_id) -> dict:
        if chat is None:
            raise NotFound(f"chat {chat_id} not found")
        if actor.role == "visitor" and chat["visitor_id"] != actor.sub:
            raise PermissionDenied("this chat belongs to another visitor")
        return chat

    async def read_chat(self, actor: Actor, chat_id: str) -> tuple[dict, list[dict]]:
        chat_id = parse_uuid(chat_id, "chat_id")
        async with self.ctx.pool.acquire() as conn:
            chat = self.check_read(actor, await store.get_chat(conn, actor.tenant, chat_id), chat_id)
            people = (await store.participants(conn, actor.tenant, [chat["id"]])).get(str(chat["id"]), [])
        return chat, people

    # --- CONV-02/11/12/13: send ---------------------------------------------------------

    async def send_message(self, actor: Actor, cmd: SendCommand) -> list[dict]:
        chat_id = parse_uuid(cmd.chat_id, "chat_id")
        self._precheck(actor, cmd)
        fast = await self._send_fast(actor, chat_id, cmd)
        if fast is not None:
            return fast
        async with self.writing(actor.tenant, chat_id) as w:
            chat, conn = w.chat, w.conn
            ch = channel(chat["channel"])
            sender_kind, sender_id = await self._sender(conn, actor, chat, cmd)
            if cmd.client_message_id:
                existing = await store.messages_by_client_id(conn, actor.tenant, chat_id, sender_id, cmd.client_message_id)
                if existing:
                    return existing
            draft = await self._draft(conn, cmd, ch, sender_kind, chat)
            outgoing = sender_kind in ("agent", "bot") and draft.kind != "note"
            await self._check_state(w, sender_kind, sender_id, draft, outgoing)
            if draft.reply_to_seq:
                await self._check_reply(conn, chat, ch, draft.reply_to_seq, sender_kind)
            if sender_kind == "visitor" and chat["countdown_ends_at"] is not None:
                await self._cancel_countdown(w, by="visitor")
            rows = await w.append(
                split(draft, ch.max_text),
                sender_kind,
                sender_id,
                outgoing=outgoing,
                client_message_id=cmd.client_message_id or None,
            )
            if sender_kind == "visitor":
                w.set(last_inbound_at=cmd.channel_sent_at or rows[0]["sent_at"])
            if cmd.complete:
                await self._complete(w, actor, "agent")
        return rows

    async def _send_fast(self, actor: Actor, chat_id, cmd: SendCommand) -> list[dict] | None:
        """The common case in one statement: validate against a snapshot of the chat, then
        write only if the chat is still exactly as seen (optimistic; None = take the locked path).

        Anything that changes the chat besides appending (reopen, countdown cancel, complete),
        needs another lookup (reply-to, canned, idempotency key, invited agents) or several
        parts goes the locked way."""
        if cmd.complete or cmd.reply_to_seq or cmd.canned_shortcut or cmd.client_message_id:
            return None
        async with self.ctx.pool.acquire() as conn:
            chat = await store.get_chat(conn, actor.tenant, chat_id)
            if chat is None:
                raise NotFound(f"chat {chat_id} not found")
            if actor.role in ("agent", "admin") and chat["agent_id"] != actor.sub:
                return None
            sender_kind, sender_id = await self._sender(conn, actor, chat, cmd)
            if sender_kind == "visitor" and chat["countdown_ends_at"] is not None:
                return None
            if sender_kind == "agent" and chat["state"] == lc.COMPLETED:
                return None  # the agent's reply reopens it
            ch = channel(chat["channel"])
            draft = await self._draft(conn, cmd, ch, sender_kind, chat)
            outgoing = sender_kind in ("agent", "bot") and draft.kind != "note"
            self._refuse_state(chat, sender_kind, draft, outgoing)
            if len(draft.text) > ch.max_text and not draft.emoji_only:
                return None
            row = {
                "tenant": actor.tenant,
                "chat_id": chat_id,
                "seq": chat["last_seq"] + 1,
                "id": uuid.uuid4(),
                "sender_kind": sender_kind,
                "sender_id": sender_id,
                "kind": draft.kind,
                "channel": chat["channel"],
                "text": draft.text,
                "body": draft.body(),
                "outgoing": outgoing,
                "reply_to_seq": None,
                "part": 0,
                "parts": 0,
                "resent_from_seq": None,
                "client_message_id": None,
                "emoji_only": draft.emoji_only,
                "status": "sent" if outgoing else None,
                "failure_reason": "",
            }
            outbox_row = self.ctx.outbox.prepare(
                actor.tenant,
                MessageSent(
                    chat_id=str(chat_id),
                    seq=row["seq"],
                    message_id=str(row["id"]),
                    sender_kind=sender_kind,
                    sender_id=sender_id,
                    kind=draft.kind,
                    text=draft.text,
                ),
            )
            inbound = (cmd.channel_sent_at or now()) if sender_kind == "visitor" else None
            written = await store.append_if_unchanged(
                conn, chat, row, inbound, outbox_row, self.ctx.outbox.channel, self.notify_channel
            )
            return [row] if written else None

    @staticmethod
    def _precheck(actor: Actor, cmd: SendCommand) -> None:
        if cmd.as_sender and actor.role != "service":
            raise PermissionDenied("only a service relaying a channel may set as_sender")
        if cmd.as_sender not in ("", "visitor", "bot"):
            raise InvalidArgument("as_sender must be SENDER_KIND_VISITOR or SENDER_KIND_BOT")
        if cmd.channel_sent_at is not None:
            if actor.role != "service":
                raise PermissionDenied("only a service relaying a channel may set channel_sent_at")
            if not now() - timedelta(days=30) <= cmd.channel_sent_at <= now() + timedelta(minutes=1):
                raise InvalidArgument("channel_sent_at must lie within the last 30 days and not in the future")
        if cmd.complete and actor.role != "agent":
            raise PermissionDenied("only the assigned agent can send and complete")
        if len(cmd.client_message_id) > 100:
            raise InvalidArgument("client_message_id is too long (at most 100 characters)")
        if cmd.kind == "system":
            raise InvalidArgument("system messages are written by the service (see PostSystemEvent)")
        if cmd.kind == "note" and actor.role not in ("agent", "admin"):
            raise PermissionDenied("only agents write internal notes")
        if sum(x is not None for x in (cmd.file, cmd.link, cmd.rich)) > 1:
            raise InvalidArgument("set only one of file, link and rich")
        if cmd.canned_shortcut and cmd.text:
            raise InvalidArgument("set either text or canned_shortcut, not both")
        if cmd.canned_shortcut and actor.role not in ("agent", "admin"):
            raise PermissionDenied("only agents use canned responses")

    async def _sender(self, conn, actor: Actor, chat: dict, cmd: SendCommand) -> tuple[str, str]:
        if actor.role == "visitor":
            if chat["visitor_id"] != actor.sub:
                raise PermissionDenied("this chat belongs to another visitor")
            return "visitor", actor.sub
        if actor.role == "service":
            if cmd.as_sender == "bot":
                return "bot", chat["bot_id"] or actor.sub
            return "visitor", chat["visitor_id"]
        if not await self._member(conn, chat, actor.sub):
            raise NotAssignedYet(f"agent {actor.sub} is not in this chat", chat["id"], actor.sub, MEMBER)
        return "agent", actor.sub

    async def _draft(self, conn, cmd: SendCommand, ch: Channel, sender_kind: str, chat: dict) -> Draft:
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
        try:
            check_text(
                text,
                required=kind in ("text", "note"),
                limit=MAX_NOTE if kind == "note" else 20000,
                what="note" if kind == "note" else "text",
            )
            spans = check_spans(text, cmd.spans, ch)
            if kind == "rich" and sender_kind == "visitor":
                raise ValueError("visitors cannot send rich elements (a chosen option is sent as text)")
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
        except ValueError as exc:
            raise invalid(exc) from None

    async def _check_state(self, w: ChatWriter, sender_kind: str, sender_id: str, draft: Draft, outgoing: bool) -> None:
        """CONV-05: the assigned agent's reply reopens a completed chat (outside the session
        window only a template may go out: the check below refuses anything else and the
        transaction, reopen included, rolls back)."""
        chat = w.chat
        if sender_kind == "agent" and chat["state"] == lc.COMPLETED and draft.kind != "note" and chat["agent_id"] == sender_id:
            await self._reopen(w, by_name=await self._name(w.conn, chat, sender_id), reason="agent")
        self._refuse_state(w.chat, sender_kind, draft, outgoing)

    @staticmethod
    def _refuse_state(chat: dict, sender_kind: str, draft: Draft, outgoing: bool) -> None:
        """Who may write in which state. A customer message to a completed chat is added to
        it and shown to the agent; it does not reopen the chat (nothing reopens by itself)."""
        state = chat["state"]
        if draft.kind == "note":
            return
        if sender_kind == "visitor" and state == lc.ENDED:
            raise FailedPrecondition("the chat has ended: start a new chat")
        if sender_kind == "bot" and state != lc.BOT:
            raise FailedPrecondition(f"the bot no longer holds this chat (it is {state})")
        if sender_kind == "agent" and state != lc.OPEN:
            hint = {lc.ENDED: ": reopen it first", lc.COMPLETED: ": its assigned agent reopens it (by hand or by replying)"}.get(
                state, ""
            )
            raise FailedPrecondition(f"the chat is {state}{hint}")
        if outgoing and window_closed(chat) and (draft.rich or {}).get("type") != "template":
            raise FailedPrecondition(
                f"the {chat['channel']} session window closed at {session_expires_at(chat):%Y-%m-%d %H:%M} UTC: "
                "only an approved template may be sent"
            )

    async def _check_reply(self, conn, chat: dict, ch: Channel, seq: int, sender_kind: str) -> None:
        if not ch.reply_to:
            raise InvalidArgument(f"channel {ch.name} does not support replying to a message")
        target = await store.message(conn, chat["tenant"], chat["id"], seq)
        if target is None or (target["kind"] == "note" and sender_kind == "visitor"):
            raise NotFound(f"message {seq} not found in this chat")
        if target["kind"] in ("system", "note"):
            raise InvalidArgument(f"message {seq} is a {target['kind']} message and cannot be quoted to the visitor")

    # --- CONV-05/06: end, countdown, complete, reopen -------------------------------

    async def end_chat(self, actor: Actor, chat_id: str, countdown: int) -> dict:
        chat_id = parse_uuid(chat_id, "chat_id")
        try:
            lc.Countdown.validate(countdown)
        except ValueError as exc:
            raise invalid(exc) from None
        async with self.writing(actor.tenant, chat_id) as w:
            chat = w.chat
            if actor.role == "visitor":
                self.check_read(actor, chat, chat_id)
                if countdown:
                    raise PermissionDenied("only the agent starts an end countdown")
            elif actor.role == "agent" and chat["agent_id"] != actor.sub:
                raise NotAssignedYet("only the assigned agent (or an admin) can end this chat", chat_id, actor.sub, OWNER)
            if countdown:
                if chat["state"] != lc.OPEN:
                    raise FailedPrecondition(f"a countdown needs an open chat (the chat is {chat['state']})")
                ends = now() + timedelta(seconds=countdown * self.countdown_scale)
                w.set(countdown_ends_at=ends)
                await timers.schedule(w.conn, actor.tenant, COUNTDOWN, str(chat_id), due_at=ends)
                await w.system("countdown_started", seconds=countdown, ends_at=ends.isoformat())
                await w.snapshot()
            else:
                await self._end(w, "visitor" if actor.role in ("visitor", "service") else "agent")
            return w.chat

    async def cancel_end(self, actor: Actor, chat_id: str) -> dict:
        chat_id = parse_uuid(chat_id, "chat_id")
        async with self.writing(actor.tenant, chat_id) as w:
            if actor.role == "agent" and w.chat["agent_id"] != actor.sub:
                raise NotAssignedYet(
                    "only the assigned agent (or an admin) can cancel the end countdown", chat_id, actor.sub, OWNER
                )
            if w.chat["countdown_ends_at"] is None:
                raise FailedPrecondition("no end countdown is running")
            await self._cancel_countdown(w, by="agent")
            return w.chat

    async def _cancel_countdown(self, w: ChatWriter, by: str) -> None:
        await timers.cancel(w.conn, w.tenant, COUNTDOWN, str(w.chat["id"]))
        w.set(countdown_ends_at=None)
        await w.system("countdown_cancelled", by=by)
        await w.snapshot()

    async def _end(self, w: ChatWriter, reason: str, missed: tuple[str, int] | None = None) -> None:
        chat = w.chat
        try:
            lc.next_state(chat["state"], lc.MISS if missed else lc.END)
        except lc.IllegalTransition as exc:
            raise FailedPrecondition(str(exc)) from None
        if chat["countdown_ends_at"] is not None:
            await timers.cancel(w.conn, w.tenant, COUNTDOWN, str(chat["id"]))
        ended = now()
        w.set(
            state=lc.ENDED, ended_at=ended, end_reason=reason, countdown_ends_at=None, queue_position=0, estimated_wait_seconds=0
        )
        if missed:
            await w.system("missed", reason=missed[0])
        await w.system("ended", time=ended.isoformat(), reason=reason)
        await w.snapshot()
        await w.publish(self._ended_event(chat, reason, missed))
        await self._schedule_inactivity(w)

    @staticmethod
    def _ended_event(chat: dict, reason: str, missed: tuple[str, int] | None = None) -> ChatEnded:
        event = ChatEnded(
            chat_id=str(chat["id"]),
            agent_id=chat["agent_id"],
            department_id=chat["department_id"],
            visitor_id=chat["visitor_id"],
            visitor_email=chat["visitor_email"],
            visitor_name=chat["visitor_name"],
            reason=reason,
            channel=f"CHANNEL_{chat['channel'].upper()}",
            question=chat["question"],
        )
        event.started_at.FromDatetime(chat["started_at"])
        event.ended_at.FromDatetime(chat["ended_at"] or now())
        if missed:
            event.missed_reason, event.waited_seconds = missed
        return event

    async def complete(self, actor: Actor, chat_id: str) -> dict:
        chat_id = parse_uuid(chat_id, "chat_id")
        async with self.writing(actor.tenant, chat_id) as w:
            await self._complete(w, actor, "agent")
            return w.chat

    async def _complete(self, w: ChatWriter, actor: Actor | None, reason: str) -> None:
        chat = w.chat
        if actor is not None and not (actor.role == "agent" and chat["agent_id"] == actor.sub):
            if actor.role == "agent":
                raise NotAssignedYet("only the assigned agent can complete this chat", chat["id"], actor.sub, OWNER)
            raise PermissionDenied("only the assigned agent can complete this chat")
        try:
            lc.next_state(chat["state"], lc.COMPLETE, has_owner=bool(chat["agent_id"]))
        except lc.IllegalTransition as exc:
            raise FailedPrecondition(str(exc)) from None
        if chat["state"] == lc.OPEN:
            if chat["countdown_ends_at"] is not None:
                await timers.cancel(w.conn, w.tenant, COUNTDOWN, str(chat["id"]))
            w.set(ended_at=now(), end_reason=reason, countdown_ends_at=None)
            await w.publish(self._ended_event(chat, reason))
        w.set(state=lc.COMPLETED, completed_at=now())
        if reason == "inactivity":
            await w.system("auto_completed")
        else:
            await w.system("completed", agent_name=await self._name(w.conn, chat, chat["agent_id"]))
            await timers.cancel(w.conn, w.tenant, INACTIVITY, str(chat["id"]))
        await w.snapshot()
        await w.publish(
            ChatCompleted(
                chat_id=str(chat["id"]),
                agent_id=chat["agent_id"],
                reason=reason,
                department_id=chat["department_id"],
                visitor_id=chat["visitor_id"],
            )
        )

    async def reopen(self, actor: Actor, chat_id: str, template: dict | None) -> dict:
        chat_id = parse_uuid(chat_id, "chat_id")
        async with self.writing(actor.tenant, chat_id) as w:
            chat = w.chat
            if actor.role == "agent" and chat["agent_id"] != actor.sub:
                raise NotAssignedYet("only the chat's agent (or an admin) can reopen it", chat_id, actor.sub, OWNER)
            ch = channel(chat["channel"])
            draft = None
            if template is not None:
                try:
                    draft = Draft(kind="rich", rich=check_rich(template, ch))
                except ValueError as exc:
                    raise invalid(exc) from None
                if draft.rich["type"] != "template":
                    raise InvalidArgument("template must be a RICH_TYPE_TEMPLATE element")
            if window_closed(chat) and draft is None:
                raise FailedPrecondition(f"the {chat['channel']} session window has closed: reopen with an approved template")
            name = await self._name(w.conn, chat, actor.sub) if actor.role == "agent" else actor.sub
            await self._reopen(w, by_name=name, reason="agent")
            if draft is not None and chat["state"] == lc.OPEN:
                await w.append([draft], "agent", chat["agent_id"], outgoing=True)
            return w.chat

    async def _reopen(self, w: ChatWriter, by_name: str, reason: str) -> None:
        chat = w.chat
        try:
            state = lc.next_state(chat["state"], lc.REOPEN, has_owner=bool(chat["agent_id"]))
        except lc.IllegalTransition as exc:
            raise FailedPrecondition(str(exc)) from None
        w.set(state=state, ended_at=None, completed_at=None, end_reason="")
        await w.system("reopened", by_name=by_name)
        await w.snapshot()
        await w.publish(
            ChatReopened(
                chat_id=str(chat["id"]),
                agent_id=chat["agent_id"],
                department_id=chat["department_id"],
                visitor_id=chat["visitor_id"],
                state=state,
                reason=reason,
            )
        )
        if state == lc.OPEN:
            await self._schedule_inactivity(w)
        else:
            await timers.cancel(w.conn, w.tenant, INACTIVITY, str(chat["id"]))

    async def _schedule_inactivity(self, w: ChatWriter) -> None:
        expiry = await store.inactivity_seconds(w.conn, w.tenant)
        await timers.schedule(w.conn, w.tenant, INACTIVITY, str(w.chat["id"]), delay=expiry)

    # --- timers ---------------------------------------------------------------------

    async def on_countdown(self, timer: timers.Timer, conn) -> None:
        async with self.writing(timer.tenant, uuid.UUID(timer.key), conn) as w:
            ends = w.chat["countdown_ends_at"]
            if w.chat["state"] == lc.OPEN and ends is not None and ends <= now() + timedelta(seconds=0.5):
                await self._end(w, "countdown")

    async def on_inactivity(self, timer: timers.Timer, conn) -> None:
        async with self.writing(timer.tenant, uuid.UUID(timer.key), conn) as w:
            chat = w.chat
            if chat["state"] not in (lc.OPEN, lc.ENDED) or not chat["agent_id"]:
                return  # nobody to complete it for (e.g. a missed chat): it stays ended
            expiry = timedelta(seconds=await store.inactivity_seconds(conn, w.tenant))
            due = max(chat["last_activity_at"], chat["ended_at"] or chat["last_activity_at"]) + expiry
            if due <= now():
                await self._complete(w, None, "inactivity")
            else:
                await timers.schedule(conn, w.tenant, INACTIVITY, timer.key, due_at=due)

    # --- CONV-04: delivery status -------------------------------------------------------

    async def update_status(self, actor: Actor, chat_id: str, seq: int, status: str, reason: str) -> dict:
        chat_id = parse_uuid(chat_id, "chat_id")
        if status == "failed" and reason not in FAILURE_REASONS:
            raise InvalidArgument(f"a failed status needs failure_reason, one of {', '.join(FAILURE_REASONS)}")
        if status != "failed" and reason:
            raise InvalidArgument("failure_reason goes with the FAILED status only")
        async with self.writing(actor.tenant, chat_id) as w:
            self.check_read(actor, w.chat, chat_id)
            message = await store.message(w.conn, actor.tenant, chat_id, seq)
            if message is None:
                raise NotFound(f"message {seq} not found in this chat")
            if not message["outgoing"]:
                raise FailedPrecondition(f"message {seq} was not sent to the visitor: it has no delivery status")
            try:
                new = next_status(message["status"], status, channel(w.chat["channel"]))
            except ValueError as exc:
                raise invalid(exc) from None
            except LookupError as exc:
                raise FailedPrecondition(str(exc)) from None
            if new is not None:
                await store.set_status(w.conn, actor.tenant, chat_id, seq, new, reason)
                await w.event("status", {"message_seq": seq, "status": new, "failure_reason": reason})
                message.update(status=new, failure_reason=reason)
            return message

    async def resend(self, actor: Actor, chat_id: str, seq: int, template: dict | None, request_id: str = "") -> list[dict]:
        chat_id = parse_uuid(chat_id, "chat_id")
        async with self.writing(actor.tenant, chat_id) as w:
            chat = w.chat
            if not await self._member(w.conn, chat, actor.sub):
                raise NotAssignedYet(f"agent {actor.sub} is not in this chat", chat_id, actor.sub, MEMBER)
            claim = await claim_request(
                w.conn, actor.tenant, f"ResendMessage:{actor.sub}", request_id, fingerprint_of(str(chat_id), seq, template)
            )
            if claim.result_id:
                first, count = (int(x) for x in claim.result_id.split(":"))
                return await store.messages_from(w.conn, actor.tenant, chat_id, first, count)
            original = await store.message(w.conn, actor.tenant, chat_id, seq)
            if original is None:
                raise NotFound(f"message {seq} not found in this chat")
            if original["status"] != "failed":
                raise FailedPrecondition(
                    f"message {seq} has not failed ({original['status'] or 'incoming'}): only failed messages are resent"
                )
            if chat["state"] != lc.OPEN:
                raise FailedPrecondition(f"the chat is {chat['state']}")
            ch = channel(chat["channel"])
            body = original["body"]
            draft = Draft(
                kind=original["kind"],
                text=original["text"],
                spans=tuple(Span(**s) for s in body.get("spans", [])),
                file=body.get("file"),
                link=body.get("link"),
                rich=body.get("rich"),
            )
            if template is not None:
                try:
                    draft = Draft(kind="rich", rich=check_rich(template, ch))
                except ValueError as exc:
                    raise invalid(exc) from None
            if window_closed(chat) and (draft.rich or {}).get("type") != "template":
                raise FailedPrecondition(f"the {chat['channel']} session window has closed: resend with an approved template")
            rows = await w.append(split(draft, ch.max_text), "agent", actor.sub, outgoing=True, resent_from_seq=seq)
            await claim.record(w.conn, f"{rows[0]['seq']}:{len(rows)}")
            return rows

    # --- typing ----------------------------------------------------------------------

    async def typing_check(self, actor: Actor, chat_id: str) -> tuple[dict, str, str]:
        """CONV-14: who is typing where. The customer's typing reaches the agents where the
        channel reports it (refused elsewhere); an agent's typing reaches the other agents
        on every channel and the customer on the web widget only (see the stream)."""
        chat, _ = await self.read_chat(actor, chat_id)
        if actor.role in ("visitor", "service"):
            if not channel(chat["channel"]).typing_indicator:
                raise FailedPrecondition(f"channel {chat['channel']} does not report the customer's typing")
            return chat, "visitor", chat["visitor_id"]
        async with self.ctx.pool.acquire() as conn:
            if not await self._member(conn, chat, actor.sub):
                raise NotAssignedYet(f"agent {actor.sub} is not in this chat", chat["id"], actor.sub, MEMBER)
        return chat, "agent", actor.sub

    async def visitor_input(self, actor: Actor, chat_id) -> bool:
        """Visitor typing during a countdown stops it ("support end interrupted")."""
        async with self.writing(actor.tenant, chat_id) as w:
            if w.chat["countdown_ends_at"] is None:
                return False
            await self._cancel_countdown(w, by="visitor")
            return True

    # --- CONV-03/15: system events and bot handover ---------------------------------

    async def post_system(self, actor: Actor, chat_id: str, type_name: str, params: dict[str, str], request_id: str = "") -> dict:
        chat_id = parse_uuid(chat_id, "chat_id")
        if len(params) > 10 or any(len(k) > 40 or len(v) > 200 or "\x00" in v for k, v in params.items()):
            raise InvalidArgument("params: at most 10, names up to 40 and values up to 200 characters")
        try:
            sysmsg.validate(type_name, params, external=True)
        except ValueError as exc:
            raise invalid(exc) from None
        async with self.writing(actor.tenant, chat_id) as w:
            claim = await claim_request(
                w.conn, actor.tenant, f"PostSystemEvent:{actor.sub}", request_id, fingerprint_of(str(chat_id), type_name, params)
            )
            if claim.result_id:
                return (await store.messages_from(w.conn, actor.tenant, chat_id, int(claim.result_id), 1))[0]
            row = await w.system(type_name, **params)
            await claim.record(w.conn, str(row["seq"]))
            return row

    async def hand_over(self, actor: Actor, chat_id: str, summary: str, department_id: str) -> dict:
        chat_id = parse_uuid(chat_id, "chat_id")
        summary = short(summary, "summary", 2000)
        department_id = short(department_id, "department_id", 64)
        if department_id:  # like StartChat: one of the tenant's departments (routing says)
            department_id = parse_uuid(department_id, "department_id")
            await self.routing.check_department(actor.tenant, department_id)
        async with self.writing(actor.tenant, chat_id) as w:
            chat = w.chat
            try:
                state = lc.next_state(chat["state"], lc.HANDOVER)
            except lc.IllegalTransition as exc:
                raise FailedPrecondition(str(exc)) from None
            department_id = department_id or chat["department_id"]  # none: every agent of the tenant
            if summary:
                await w.append([Draft(kind="note", text=summary)], "bot", chat["bot_id"] or actor.sub, outgoing=False)
            w.set(state=state, department_id=department_id)
            await w.system("bot_handover")
            await w.snapshot()
            await w.publish(
                BotHandedOver(
                    chat_id=str(chat["id"]),
                    department_id=department_id,
                    visitor_id=chat["visitor_id"],
                    visitor_email=chat["visitor_email"],
                    summary=summary,
                )
            )
            return chat

    # --- events from routing ------------------------------------------------------------

    async def assigned(
        self, conn, tenant: str, chat_id, agent_id: str, agent_name: str, previous: str, how: str, department_id: str
    ) -> None:
        async with self.writing(tenant, chat_id, conn) as w:
            chat = w.chat
            if chat["state"] not in lc.LIVE or (chat["state"] == lc.OPEN and chat["agent_id"] == agent_id):
                return
            old = chat["agent_id"] or previous
            if old and old != agent_id:
                await store.leave(conn, tenant, chat["id"], old)
            # Routing names the agent (its agents all have one); a name seen before is the fallback.
            agent_name = agent_name or await self._name(conn, chat, agent_id)
            await store.upsert_participant(conn, tenant, chat["id"], agent_id, agent_name, "owner")
            w.set(
                state=lc.OPEN,
                agent_id=agent_id,
                queue_position=0,
                estimated_wait_seconds=0,
                **({"department_id": department_id} if department_id else {}),
            )
            kind = {"accepted": "accepted", "transferred": "transferred"}.get(how, "assigned")
            await w.system(kind, agent_name=agent_name, agent_id=agent_id)
            await w.snapshot()
            await self._schedule_inactivity(w)

    async def invited(self, conn, tenant: str, chat_id, agent_id: str, agent_name: str, by_agent: str, note: str) -> None:
        async with self.writing(tenant, chat_id, conn) as w:
            if w.chat["state"] not in lc.LIVE or await self._member(conn, w.chat, agent_id):
                return
            by_name = await self._name(conn, w.chat, by_agent)
            await store.upsert_participant(conn, tenant, w.chat["id"], agent_id, agent_name, "invited")
            await w.system("agent_invited", agent_name=agent_name or agent_id, by_name=by_name, note=note)
            await w.snapshot()

    async def transfer_requested(
        self, conn, tenant: str, chat_id, from_agent: str, to_agent: str, to_department: str, note: str, transfer_id: str
    ) -> None:
        """The target is the department's name, or the agent's name if the agent has been in
        this chat (routing's event names no target agent), else the agent's id."""
        async with self.writing(tenant, chat_id, conn) as w:
            target = to_department or await self._name(conn, w.chat, to_agent)
            await w.system(
                "transfer_requested",
                from_name=await self._name(conn, w.chat, from_agent),
                target=target,
                note=note or "-",
                transfer_id=transfer_id,
            )

    async def transfer_declined(
        self,
        conn,
        tenant: str,
        chat_id,
        to_agent: str,
        to_department: str,
        reason: str,
        note: str,
        transfer_id: str,
        returned_to_queue: bool,
    ) -> None:
        async with self.writing(tenant, chat_id, conn) as w:
            under, target = 0, ""
            if transfer_id:
                under = (
                    await store.find_system_message(conn, tenant, w.chat["id"], "transfer_requested", "transfer_id", transfer_id)
                    or 0
                )
            if under:  # named as the request under which the decline is shown
                target = (await store.message(conn, tenant, w.chat["id"], under))["body"]["system"]["params"]["target"]
            target = target or (await self._name(conn, w.chat, to_agent) if to_agent else to_department)
            await w.system(
                "transfer_declined",
                reply_to_seq=under,
                target=target,
                reason=reason or "-",
                note=note or "-",
                transfer_id=transfer_id,
            )
            if returned_to_queue and w.chat["state"] == lc.OPEN:
                lc.next_state(lc.OPEN, lc.RETURN_TO_QUEUE)
                if w.chat["agent_id"]:
                    await store.leave(conn, tenant, w.chat["id"], w.chat["agent_id"])
                w.set(state=lc.QUEUED, agent_id="")
                await timers.cancel(conn, w.tenant, INACTIVITY, str(w.chat["id"]))
                await w.system("returned_to_queue")
                await w.snapshot()

    async def missed(self, conn, tenant: str, chat_id, reason: str, waited: int) -> None:
        async with self.writing(tenant, chat_id, conn) as w:
            if lc.allowed(w.chat["state"], lc.MISS):
                await self._end(w, "missed", missed=(reason or "no_agent_accepted", waited))

    async def queue_position(self, conn, tenant: str, chat_id, position: int, wait: int) -> None:
        async with self.writing(tenant, chat_id, conn) as w:
            if w.chat["state"] != lc.QUEUED:
                return
            w.set(queue_position=position, estimated_wait_seconds=wait)
            await w.event("queue", {"position": position, "estimated_wait_seconds": wait})
