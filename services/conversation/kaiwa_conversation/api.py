"""grpc.aio servicer: protobuf <-> use cases, nothing else. Identity and errors are the
interceptor's (kaiwa_common): use cases raise domain errors, which it maps to status
codes. Calls whose caller may be an agent routing has just given the chat to run through
the ROUT-02 gate (assignment.py)."""

from __future__ import annotations

from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.conversation.v1 import conversation_pb2_grpc as pb_grpc

from kaiwa_common.auth import ADMIN, AGENT, SERVICE
from kaiwa_common.errors import InvalidArgument
from kaiwa_common.protobuf import enum_name, enum_value, timestamp, to_datetime

from . import canned, commands, convert, history, lifecycle, notes, resend, send, settings, status, stream, system_events, timers
from .assignment import AssignmentGate
from .config import ConversationSettings
from kaiwa_common.addresses import caller_address
from .domain.commands import is_escaped, unescape
from .domain.system_messages import locale_of
from .live import Typing
from .peers import Peers
from .start import StartRequest, start_chat
from .typing_indicator import notify_typing
from .unit_of_work import Actor, Deps, chat_participants, read_chat


class ConversationApi(pb_grpc.ConversationServiceServicer):
    def __init__(self, deps: Deps, gate: AssignmentGate):
        self.deps = deps
        self.gate = gate
        self.trusted_proxies = ConversationSettings().trusted_proxies
        self.peers = Peers(deps.ctx)

    async def _gated(self, use_case, *args):
        """Run a use case for the current caller through the ROUT-02 gate."""
        actor = Actor.current()
        return await self.gate.run(actor.tenant, lambda: use_case(self.deps, actor, *args))

    async def _chat(self, chat: dict) -> pb.Chat:
        return convert.chat_pb(chat, await chat_participants(self.deps, chat))

    # --- chats ---------------------------------------------------------------------

    async def StartChat(self, request: pb.StartChatRequest, context) -> pb.Chat:
        actor = Actor.current()
        forwarded = next((v for k, v in context.invocation_metadata() or () if k == "x-forwarded-for"), "")
        req = StartRequest(
            channel=convert.channel_name(request.channel),
            department_id=request.department_id,
            question=request.question,
            visitor_name=request.visitor_name,
            visitor_email=request.visitor_email,
            visitor_id=request.visitor_id,
            bot_id=request.bot_id,
            request_id=request.request_id,
            fields=dict(request.fields),
            visitor_ip=caller_address(actor.role == SERVICE, context.peer(), forwarded, self.trusted_proxies),
        )
        chat, people = await start_chat(self.deps, actor, req)
        return convert.chat_pb(chat, people)

    async def GetChat(self, request: pb.GetChatRequest, context) -> pb.Chat:
        return convert.chat_pb(*await read_chat(self.deps, Actor.current(), request.chat_id))

    async def EndChat(self, request: pb.EndChatRequest, context) -> pb.Chat:
        return await self._chat(await self._gated(lifecycle.end_chat, request.chat_id, request.countdown_seconds))

    async def CancelEndChat(self, request: pb.CancelEndChatRequest, context) -> pb.Chat:
        return await self._chat(await self._gated(timers.cancel_end, request.chat_id))

    async def CompleteChat(self, request: pb.CompleteChatRequest, context) -> pb.Chat:
        return await self._chat(await self._gated(lifecycle.complete_chat, request.chat_id))

    async def ReopenChat(self, request: pb.ReopenChatRequest, context) -> pb.Chat:
        template = convert.rich_in(request.template) if request.HasField("template") else None
        return await self._chat(await self._gated(lifecycle.reopen_chat, request.chat_id, template))

    async def HandOverToHuman(self, request: pb.HandOverToHumanRequest, context) -> pb.Chat:
        chat = await lifecycle.hand_over(self.deps, Actor.current(), request.chat_id, request.summary, request.department_id)
        return await self._chat(chat)

    # --- messages --------------------------------------------------------------------

    async def SendMessage(self, request: pb.SendMessageRequest, context) -> pb.Message:
        if request.reply_to_seq < 0:
            raise InvalidArgument("reply_to_seq must not be negative")
        text = request.text
        staff_text = Actor.current().role in (AGENT, ADMIN) and request.kind in (
            pb.MESSAGE_KIND_UNSPECIFIED,
            pb.MESSAGE_KIND_TEXT,
        )
        if staff_text and text.lstrip().startswith("#"):
            if not is_escaped(text):  # CMD-01: a command, never a message to the visitor
                reply = await self._command(request.chat_id, text, request.locale, context)
                return convert.command_reply_message(reply)
            text = unescape(text)
        cmd = send.SendCommand(
            chat_id=request.chat_id,
            text=text,
            kind=enum_name(pb.MessageKind, request.kind, "kind", default=""),
            spans=convert.spans_in(request.spans),
            file=convert.file_in(request.file) if request.HasField("file") else None,
            link={"url": request.link.url, "title": request.link.title} if request.HasField("link") else None,
            rich=convert.rich_in(request.rich) if request.HasField("rich") else None,
            reply_to_seq=request.reply_to_seq,
            complete=request.complete,
            canned_shortcut=request.canned_shortcut,
            client_message_id=request.client_message_id,
            as_sender=enum_name(pb.SenderKind, request.as_sender, "as_sender", default=""),
            channel_sent_at=to_datetime(request.channel_sent_at, request.HasField("channel_sent_at")),
        )
        return convert.messages_pb(await self._gated(send.send_message, cmd), locale_of(request.locale))

    async def RunCommand(self, request: pb.RunCommandRequest, context) -> pb.CommandReply:
        return convert.command_reply_pb(await self._command(request.chat_id, request.text, request.locale, context))

    async def _command(self, chat_id: str, text: str, locale: str, context) -> commands.Reply:
        own = tuple((k, v) for k, v in context.invocation_metadata() or () if k == "authorization")
        return await self._gated(commands.run_command, self.peers, chat_id, text, locale_of(locale), own)

    async def UpdateMessageStatus(self, request: pb.UpdateMessageStatusRequest, context) -> pb.Message:
        new = enum_name(pb.MessageStatus, request.status, "status")
        if request.seq <= 0:
            raise InvalidArgument("seq must be a message's sequence number (> 0)")
        row = await status.update_status(self.deps, Actor.current(), request.chat_id, request.seq, new, request.failure_reason)
        return convert.message_pb(row, "en")

    async def ResendMessage(self, request: pb.ResendMessageRequest, context) -> pb.Message:
        if request.seq <= 0:
            raise InvalidArgument("seq must be a message's sequence number (> 0)")
        template = convert.rich_in(request.template) if request.HasField("template") else None
        rows = await self._gated(resend.resend, request.chat_id, request.seq, template, request.request_id)
        return convert.messages_pb(rows, "en")

    async def PostSystemEvent(self, request: pb.PostSystemEventRequest, context) -> pb.Message:
        row = await system_events.post_system(
            self.deps, Actor.current(), request.chat_id, request.type, dict(request.params), request.request_id
        )
        return convert.message_pb(row, "en")

    async def NotifyTyping(self, request: pb.NotifyTypingRequest, context) -> pb.NotifyTypingResponse:
        cancelled = await self._gated(notify_typing, request.chat_id, request.typing)
        return pb.NotifyTypingResponse(countdown_cancelled=cancelled)

    # --- CONV-14: the live stream ------------------------------------------------------

    async def StreamChat(self, request: pb.StreamChatRequest, context):
        locale = locale_of(request.locale)
        async for item in stream.follow(self.deps, Actor.current(), request.chat_id, request.after_seq):
            yield _chat_event(item, locale)

    # --- history, notes, transcripts ----------------------------------------------------

    async def ListMessages(self, request: pb.ListMessagesRequest, context) -> pb.ListMessagesResponse:
        actor = Actor.current()
        rows, token = await history.messages(self.deps, actor, request.chat_id, request.page_size, request.page_token)
        locale = locale_of(request.locale)
        return pb.ListMessagesResponse(messages=[convert.message_pb(r, locale) for r in rows], next_page_token=token)

    async def ListVisitorChats(self, request: pb.ListVisitorChatsRequest, context) -> pb.ListChatsResponse:
        page, token = await history.visitor_chats(
            self.deps, Actor.current(), request.visitor_id, request.page_size, request.page_token, request.message_limit
        )
        return _chats_pb(page, token, locale_of(request.locale))

    async def ListAgentChats(self, request: pb.ListAgentChatsRequest, context) -> pb.ListChatsResponse:
        page, token = await history.agent_chats(
            self.deps, Actor.current(), request.agent_id, request.page_size, request.page_token
        )
        return _chats_pb(page, token, "en")

    async def AddNote(self, request: pb.AddNoteRequest, context) -> pb.Note:
        row = await notes.add_note(
            self.deps, Actor.current(), request.chat_id, request.visitor_id, request.text, request.request_id
        )
        return convert.note_pb(row)

    async def ListNotes(self, request: pb.ListNotesRequest, context) -> pb.ListNotesResponse:
        rows, token = await notes.list_notes(
            self.deps, Actor.current(), request.chat_id, request.visitor_id, request.page_size, request.page_token
        )
        return pb.ListNotesResponse(notes=[convert.note_pb(r) for r in rows], next_page_token=token)

    async def GetTranscript(self, request: pb.GetTranscriptRequest, context) -> pb.Transcript:
        locale = locale_of(request.locale)
        doc = await history.transcript_of(
            self.deps, Actor.current(), request.chat_id, locale, request.time_zone, request.include_pdf
        )
        return pb.Transcript(
            chat=convert.chat_pb(doc.chat, doc.participants),
            messages=[convert.message_pb(r, locale) for r in doc.messages],
            text=doc.text,
            pdf=doc.pdf,
        )

    # --- canned responses, settings, channels -----------------------------------------

    async def PutCannedResponse(self, request: pb.PutCannedResponseRequest, context) -> pb.CannedResponse:
        return convert.canned_pb(await canned.put_canned(self.deps, Actor.current(), request.shortcut, request.text))

    async def ListCannedResponses(self, request: pb.ListCannedResponsesRequest, context) -> pb.ListCannedResponsesResponse:
        rows = await canned.list_canned(self.deps, Actor.current(), request.prefix)
        return pb.ListCannedResponsesResponse(responses=[convert.canned_pb(r) for r in rows])

    async def DeleteCannedResponse(self, request: pb.DeleteCannedResponseRequest, context) -> pb.DeleteCannedResponseResponse:
        await canned.delete_canned(self.deps, Actor.current(), request.shortcut)
        return pb.DeleteCannedResponseResponse()

    async def GetSettings(self, request: pb.GetSettingsRequest, context) -> pb.Settings:
        return pb.Settings(inactivity_seconds=await settings.inactivity_seconds(self.deps, Actor.current()))

    async def UpdateSettings(self, request: pb.Settings, context) -> pb.Settings:
        seconds = await settings.update_inactivity_seconds(self.deps, Actor.current(), request.inactivity_seconds)
        return pb.Settings(inactivity_seconds=seconds)

    async def ListChannels(self, request: pb.ListChannelsRequest, context) -> pb.ListChannelsResponse:
        return pb.ListChannelsResponse(channels=convert.channels_pb())


def _chat_event(item: stream.Stored | stream.Tick | Typing, locale: str) -> pb.ChatEvent:
    if isinstance(item, Typing):
        kind = enum_value(pb.SenderKind, item.sender_kind)
        return pb.ChatEvent(seq=0, typing=pb.TypingEvent(sender_kind=kind, sender_id=item.sender_id, typing=item.typing))
    if isinstance(item, stream.Tick):
        return pb.ChatEvent(seq=0, countdown=pb.CountdownTick(seconds_left=item.seconds_left, ends_at=timestamp(item.ends_at)))
    data = item.data
    if item.kind == "message":
        return pb.ChatEvent(seq=item.seq, message=convert.message_pb(data, locale))
    if item.kind == "chat":
        return pb.ChatEvent(seq=item.seq, chat=convert.chat_pb(data))
    if item.kind == "status":
        change = pb.StatusChange(
            message_seq=data["message_seq"],
            status=enum_value(pb.MessageStatus, data["status"]),
            failure_reason=data["failure_reason"],
        )
        return pb.ChatEvent(seq=item.seq, status=change)
    if item.kind == "queue":
        queue = pb.QueueUpdate(position=data["position"], estimated_wait_seconds=data["estimated_wait_seconds"])
        return pb.ChatEvent(seq=item.seq, queue=queue)
    return pb.ChatEvent(seq=item.seq)  # hidden from this watcher: its seq only, so there is no gap


def _chats_pb(page: list[history.History], token: str, locale: str) -> pb.ListChatsResponse:
    return pb.ListChatsResponse(
        next_page_token=token,
        chats=[
            pb.ChatHistory(
                chat=convert.chat_pb(h.chat, h.participants),
                more_messages=h.more_messages,
                messages=[convert.message_pb(m, locale) for m in h.messages],
            )
            for h in page
        ],
    )
