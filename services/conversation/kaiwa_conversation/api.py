"""grpc.aio servicer: protobuf <-> use cases. Errors are DomainErrors (see kaiwa_common)."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta, timezone

from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.conversation.v1 import conversation_pb2_grpc as pb_grpc

from kaiwa_common.errors import InvalidArgument

from . import convert, store, transcript
from .domain.system_messages import locale_of
from .handlers import Actor, Conversation, SendCommand
from .live import TYPING, WAKE, LiveHub
from .assignment import AssignmentGate
from .reads import Reads, visible
from .start import ChatStarter, StartRequest

REPLAY_BATCH = 500
POLL_SECONDS = 5.0


class ConversationApi(pb_grpc.ConversationServiceServicer):
    def __init__(self, ctx, conversation: Conversation, reads: Reads, hub: LiveHub, starter: ChatStarter, gate: AssignmentGate):
        self.ctx = ctx
        self.conversation = conversation
        self.reads = reads
        self.hub = hub
        self.starter = starter
        self.gate = gate  # ROUT-02: calls that depend on routing's events run through it

    # --- chats ---------------------------------------------------------------------

    async def StartChat(self, request: pb.StartChatRequest, context) -> pb.Chat:
        chat, people = await self.starter.start(
            Actor.current(),
            StartRequest(
                channel=convert.channel_name(request.channel),
                department_id=request.department_id,
                question=request.question,
                visitor_name=request.visitor_name,
                visitor_email=request.visitor_email,
                visitor_id=request.visitor_id,
                bot_id=request.bot_id,
                request_id=request.request_id,
            ),
        )
        return convert.chat_pb(chat, people)

    async def GetChat(self, request: pb.GetChatRequest, context) -> pb.Chat:
        chat, people = await self.conversation.read_chat(Actor.current(), request.chat_id)
        return convert.chat_pb(chat, people)

    async def EndChat(self, request: pb.EndChatRequest, context) -> pb.Chat:
        actor = Actor.current()
        chat = await self.gate.run(
            actor.tenant, lambda: self.conversation.end_chat(actor, request.chat_id, request.countdown_seconds)
        )
        return await self._chat(chat)

    async def CancelEndChat(self, request, context) -> pb.Chat:
        actor = Actor.current()
        return await self._chat(await self.gate.run(actor.tenant, lambda: self.conversation.cancel_end(actor, request.chat_id)))

    async def CompleteChat(self, request, context) -> pb.Chat:
        actor = Actor.current()
        return await self._chat(await self.gate.run(actor.tenant, lambda: self.conversation.complete(actor, request.chat_id)))

    async def ReopenChat(self, request: pb.ReopenChatRequest, context) -> pb.Chat:
        actor = Actor.current()
        template = convert.rich_in(request.template) if request.HasField("template") else None
        return await self._chat(
            await self.gate.run(actor.tenant, lambda: self.conversation.reopen(actor, request.chat_id, template))
        )

    async def HandOverToHuman(self, request, context) -> pb.Chat:
        chat = await self.conversation.hand_over(Actor.current(), request.chat_id, request.summary, request.department_id)
        return await self._chat(chat)

    async def _chat(self, chat: dict) -> pb.Chat:
        async with self.ctx.pool.acquire() as conn:
            people = (await store.participants(conn, chat["tenant"], [chat["id"]])).get(str(chat["id"]), [])
        return convert.chat_pb(chat, people)

    # --- messages --------------------------------------------------------------------

    async def SendMessage(self, request: pb.SendMessageRequest, context) -> pb.Message:
        kind = convert.enum_in(request.kind, convert.KINDS, "kind")
        cmd = SendCommand(
            chat_id=request.chat_id,
            text=request.text,
            kind=kind,
            spans=convert.spans_in(request.spans),
            file=convert.file_in(request.file) if request.HasField("file") else None,
            link={"url": request.link.url, "title": request.link.title} if request.HasField("link") else None,
            rich=convert.rich_in(request.rich) if request.HasField("rich") else None,
            reply_to_seq=request.reply_to_seq,
            complete=request.complete,
            canned_shortcut=request.canned_shortcut,
            client_message_id=request.client_message_id,
            as_sender=convert.enum_in(request.as_sender, convert.SENDERS, "as_sender"),
            channel_sent_at=request.channel_sent_at.ToDatetime(timezone.utc) if request.HasField("channel_sent_at") else None,
        )
        if request.reply_to_seq < 0:
            raise InvalidArgument("reply_to_seq must not be negative")
        actor = Actor.current()
        rows = await self.gate.run(actor.tenant, lambda: self.conversation.send_message(actor, cmd))
        locale = locale_of(request.locale)
        first = convert.message_pb(rows[0], locale)
        first.continuation.extend(convert.message_pb(r, locale) for r in rows[1:])
        return first

    async def UpdateMessageStatus(self, request: pb.UpdateMessageStatusRequest, context) -> pb.Message:
        status = convert.enum_in(request.status, convert.STATUSES, "status", allow_unspecified=False)
        if request.seq <= 0:
            raise InvalidArgument("seq must be a message's sequence number (> 0)")
        row = await self.conversation.update_status(Actor.current(), request.chat_id, request.seq, status, request.failure_reason)
        return convert.message_pb(row, "en")

    async def ResendMessage(self, request: pb.ResendMessageRequest, context) -> pb.Message:
        if request.seq <= 0:
            raise InvalidArgument("seq must be a message's sequence number (> 0)")
        template = convert.rich_in(request.template) if request.HasField("template") else None
        actor = Actor.current()
        rows = await self.gate.run(
            actor.tenant, lambda: self.conversation.resend(actor, request.chat_id, request.seq, template, request.request_id)
        )
        first = convert.message_pb(rows[0], "en")
        first.continuation.extend(convert.message_pb(r, "en") for r in rows[1:])
        return first

    async def PostSystemEvent(self, request: pb.PostSystemEventRequest, context) -> pb.Message:
        row = await self.conversation.post_system(
            Actor.current(), request.chat_id, request.type, dict(request.params), request.request_id
        )
        return convert.message_pb(row, "en")

    async def NotifyTyping(self, request: pb.NotifyTypingRequest, context) -> pb.NotifyTypingResponse:
        actor = Actor.current()
        chat, sender_kind, sender_id = await self.gate.run(
            actor.tenant, lambda: self.conversation.typing_check(actor, request.chat_id)
        )
        cancelled = False
        if sender_kind == "visitor" and request.typing and chat["countdown_ends_at"] is not None:
            cancelled = await self.conversation.visitor_input(actor, chat["id"])
        await self.hub.publish_typing(actor.tenant, str(chat["id"]), sender_kind, sender_id, request.typing)
        return pb.NotifyTypingResponse(countdown_cancelled=cancelled)

    # --- CONV-14: the live stream ------------------------------------------------------

    async def StreamChat(self, request: pb.StreamChatRequest, context):
        actor = Actor.current()
        locale = locale_of(request.locale)
        if request.after_seq < 0:
            raise InvalidArgument("after_seq must not be negative")
        chat, _ = await self.conversation.read_chat(actor, request.chat_id)
        if request.after_seq > chat["last_seq"]:
            raise InvalidArgument(f"after_seq {request.after_seq} is ahead of the chat (last_seq {chat['last_seq']})")
        chat_id, last = str(chat["id"]), request.after_seq
        countdown_ends = chat["countdown_ends_at"]
        next_tick = _now()
        me = actor.sub
        # CONV-14: on messaging channels the customer is never shown that an agent is typing.
        customer_side = actor.role in ("visitor", "service") and chat["channel"] != "web"
        with self.hub.watch(chat_id) as watcher:
            # Registered first, then read: nothing committed in between can be missed.
            async with self.ctx.pool.acquire() as conn:
                target = await store.last_seq(conn, actor.tenant, chat["id"])
            while True:
                while last < target:  # replay, or fill the gap up to what was notified
                    async with self.ctx.pool.acquire() as conn:
                        rows = await store.events_between(conn, actor.tenant, chat["id"], last, min(target, last + REPLAY_BATCH))
                    if not rows:
                        break
                    for seq, kind, data in rows:
                        if kind == "chat":
                            countdown_ends = _parse(data.get("countdown_ends_at"))
                        last = seq
                        yield self._event(actor, seq, kind, data, locale)
                if countdown_ends is not None and _now() >= next_tick:
                    left = math.ceil((countdown_ends - _now()).total_seconds())
                    if left >= 0:
                        tick = pb.CountdownTick(seconds_left=left)
                        tick.ends_at.FromDatetime(countdown_ends)
                        yield pb.ChatEvent(seq=0, countdown=tick)
                    next_tick = _now() + timedelta(seconds=1)
                timeout = (next_tick - _now()).total_seconds() if countdown_ends is not None else POLL_SECONDS
                item = await self._next(watcher, max(timeout, 0.01))
                if item is None or (item[0] == WAKE and item[1] == 0):  # poll, or the listener reconnected
                    async with self.ctx.pool.acquire() as conn:
                        target = max(target, await store.last_seq(conn, actor.tenant, chat["id"]) or 0)
                elif item[0] == WAKE:
                    seq, row = item[1], item[2]
                    if row is not None and seq == last + 1 and target <= seq:  # in order: no database read
                        last = target = seq
                        yield self._event(actor, seq, "message", row, locale)
                    target = max(target, seq)
                elif (
                    item[0] == TYPING and item[1]["sender_id"] != me and not (customer_side and item[1]["sender_kind"] == "agent")
                ):
                    data = item[1]
                    yield pb.ChatEvent(
                        seq=0,
                        typing=pb.TypingEvent(
                            sender_kind=convert.SENDERS[data["sender_kind"]], sender_id=data["sender_id"], typing=data["typing"]
                        ),
                    )

    @staticmethod
    async def _next(watcher, timeout: float):
        try:
            return await asyncio.wait_for(watcher.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    @staticmethod
    def _event(actor: Actor, seq: int, kind: str, data: dict, locale: str) -> pb.ChatEvent:
        """A durable event; what this watcher may not see keeps its seq with no content (no gap)."""
        if kind == "message":
            if not visible(actor, data):
                return pb.ChatEvent(seq=seq)
            return pb.ChatEvent(seq=seq, message=convert.message_pb(data, locale))
        if kind == "chat":
            return pb.ChatEvent(seq=seq, chat=convert.chat_pb(data))
        if kind == "status":
            return pb.ChatEvent(
                seq=seq,
                status=pb.StatusChange(
                    message_seq=data["message_seq"],
                    status=convert.STATUSES[data["status"]],
                    failure_reason=data["failure_reason"],
                ),
            )
        return pb.ChatEvent(
            seq=seq, queue=pb.QueueUpdate(position=data["position"], estimated_wait_seconds=data["estimated_wait_seconds"])
        )

    # --- history, notes, transcripts ----------------------------------------------------

    async def ListMessages(self, request: pb.ListMessagesRequest, context) -> pb.ListMessagesResponse:
        rows, token = await self.reads.messages(Actor.current(), request.chat_id, request.page_size, request.page_token)
        locale = locale_of(request.locale)
        return pb.ListMessagesResponse(messages=[convert.message_pb(r, locale) for r in rows], next_page_token=token)

    async def ListVisitorChats(self, request: pb.ListVisitorChatsRequest, context) -> pb.ListChatsResponse:
        histories, token = await self.reads.visitor_chats(
            Actor.current(), request.visitor_id, request.page_size, request.page_token, request.message_limit
        )
        return self._histories(histories, token, locale_of(request.locale))

    async def ListAgentChats(self, request: pb.ListAgentChatsRequest, context) -> pb.ListChatsResponse:
        histories, token = await self.reads.agent_chats(Actor.current(), request.agent_id, request.page_size, request.page_token)
        return self._histories(histories, token, "en")

    @staticmethod
    def _histories(histories, token: str, locale: str) -> pb.ListChatsResponse:
        return pb.ListChatsResponse(
            next_page_token=token,
            chats=[
                pb.ChatHistory(
                    chat=convert.chat_pb(chat, people),
                    more_messages=more,
                    messages=[convert.message_pb(m, locale) for m in messages],
                )
                for chat, people, messages, more in histories
            ],
        )

    async def AddNote(self, request: pb.AddNoteRequest, context) -> pb.Note:
        row = await self.reads.add_note(Actor.current(), request.chat_id, request.visitor_id, request.text, request.request_id)
        return convert.note_pb(row)

    async def ListNotes(self, request: pb.ListNotesRequest, context) -> pb.ListNotesResponse:
        rows, token = await self.reads.list_notes(
            Actor.current(), request.chat_id, request.visitor_id, request.page_size, request.page_token
        )
        return pb.ListNotesResponse(notes=[convert.note_pb(r) for r in rows], next_page_token=token)

    async def GetTranscript(self, request: pb.GetTranscriptRequest, context) -> pb.Transcript:
        time_zone = transcript.zone(request.time_zone)
        chat, people, rows = await self.reads.transcript(Actor.current(), request.chat_id)
        locale = locale_of(request.locale)
        chat_msg = convert.chat_pb(chat, people)
        messages = [convert.message_pb(r, locale) for r in rows]
        doc = transcript.Document.build(chat, people, rows, locale, time_zone)
        out = pb.Transcript(chat=chat_msg, messages=messages, text=doc.text())
        if request.include_pdf:
            out.pdf = await asyncio.to_thread(doc.pdf)
        return out

    # --- canned responses, settings, channels -----------------------------------------

    async def PutCannedResponse(self, request, context) -> pb.CannedResponse:
        return convert.canned_pb(await self.reads.put_canned(Actor.current(), request.shortcut, request.text))

    async def ListCannedResponses(self, request, context) -> pb.ListCannedResponsesResponse:
        rows = await self.reads.list_canned(Actor.current(), request.prefix)
        return pb.ListCannedResponsesResponse(responses=[convert.canned_pb(r) for r in rows])

    async def DeleteCannedResponse(self, request, context) -> pb.DeleteCannedResponseResponse:
        await self.reads.delete_canned(Actor.current(), request.shortcut)
        return pb.DeleteCannedResponseResponse()

    async def GetSettings(self, request, context) -> pb.Settings:
        return pb.Settings(inactivity_seconds=await self.reads.settings(Actor.current()))

    async def UpdateSettings(self, request: pb.Settings, context) -> pb.Settings:
        return pb.Settings(inactivity_seconds=await self.reads.update_settings(Actor.current(), request.inactivity_seconds))

    async def ListChannels(self, request, context) -> pb.ListChannelsResponse:
        return pb.ListChannelsResponse(channels=convert.channels_pb())


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _parse(value) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value) if isinstance(value, str) else value
