"""Calls to the other services (service token of the tenant, a deadline each): the
chat and its transcript (conversation), a department (routing), a visitor (visitor).

Their errors come back as domain errors: UNAVAILABLE, DEADLINE_EXCEEDED and the like as
Unavailable (try again later), NOT_FOUND as NotFound, a refused argument as
InvalidArgument; anything else as RuntimeError (a defect: logged, retried, parked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.routing.v1 import routing_pb2 as routing
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub
from kaiwa.visitor.v1 import visitor_pb2 as visitor
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

from kaiwa_common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable

from .domain import NewAttachment
from .runtime import Runtime

log = logging.getLogger("kaiwa.crm.peers")

_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
}


@dataclass(frozen=True)
class Transcript:
    chat: conv.Chat
    text: str
    attachment: NewAttachment | None
    messages: list

    @property
    def agent_name(self) -> str:
        owner = next((p for p in self.chat.participants if p.agent_id == self.chat.agent_id), None)
        return owner.name if owner and owner.name else self.chat.agent_id


async def transcript(rt: Runtime, tenant: str, chat_id: str, with_pdf: bool) -> Transcript:
    """The chat, its messages and its transcript: a PDF when asked (plain text when the
    conversation service cannot render one)."""
    try:
        t = await _get_transcript(rt, tenant, chat_id, with_pdf)
    except FailedPrecondition as exc:  # no PDF renderer over there: the text will do
        log.warning("transcript PDF unavailable, attaching text", extra={"fields": {"chat": chat_id, "error": exc.message}})
        t = await _get_transcript(rt, tenant, chat_id, False)
    attachment = None
    if t.pdf:
        attachment = NewAttachment(f"chat-transcript-{chat_id}.pdf", "application/pdf", t.pdf, chat_id)
    elif with_pdf and t.text.strip():
        attachment = NewAttachment(f"chat-transcript-{chat_id}.txt", "text/plain; charset=utf-8", t.text.encode(), chat_id)
    return Transcript(t.chat, t.text, attachment, list(t.messages))


async def _get_transcript(rt: Runtime, tenant: str, chat_id: str, with_pdf: bool) -> conv.Transcript:
    stub = ConversationServiceStub(rt.ctx.channel("conversation"))
    request = conv.GetTranscriptRequest(chat_id=chat_id, include_pdf=with_pdf)
    return await _call(rt, tenant, "conversation GetTranscript", stub.GetTranscript, request)


async def chat(rt: Runtime, tenant: str, chat_id: str) -> conv.Chat:
    stub = ConversationServiceStub(rt.ctx.channel("conversation"))
    return await _call(rt, tenant, "conversation GetChat", stub.GetChat, conv.GetChatRequest(chat_id=chat_id))


async def post_ticket_message(rt: Runtime, tenant: str, chat_id: str, number: int, ticket_id: str, url: str = "") -> None:
    """CONV-03 "converted to ticket (number)" in the chat, with the ticket's link (DESK-01)
    when the desk has one; the request id makes a repeat (after a lost answer) post
    nothing more."""
    stub = ConversationServiceStub(rt.ctx.channel("conversation"))
    params = {"ticket_number": str(number)} | ({"ticket_url": url} if url else {})
    request = conv.PostSystemEventRequest(
        chat_id=chat_id, type="converted_to_ticket", params=params, request_id=f"ticket-{ticket_id}"
    )
    await _call(rt, tenant, "conversation PostSystemEvent", stub.PostSystemEvent, request)


async def department(rt: Runtime, tenant: str, department_id: str) -> routing.Department:
    stub = RoutingServiceStub(rt.ctx.channel("routing"))
    request = routing.GetDepartmentRequest(department_id=department_id)
    return await _call(rt, tenant, "routing GetDepartment", stub.GetDepartment, request)


async def page_view(rt: Runtime, tenant: str, visitor_id: str, page_view_id: str) -> visitor.PageView | None:
    """The page view's IP and user agent (the event carries neither), from the visitor's
    recent page views; None when it is no longer among them."""
    found = await visitor_profile(rt, tenant, visitor_id)
    return next((v for v in found.recent_page_views if v.id == page_view_id), None)


async def visitor_profile(rt: Runtime, tenant: str, visitor_id: str) -> visitor.Visitor:
    """The visitor (a merged visitor's id answers with the one it was merged into), with
    its most recent page views (the visitor service returns the newest 20, newest first)."""
    stub = VisitorServiceStub(rt.ctx.channel("visitor"))
    return await _call(rt, tenant, "visitor GetVisitor", stub.GetVisitor, visitor.GetVisitorRequest(visitor_id=visitor_id))


async def _call(rt: Runtime, tenant: str, what: str, method, request):
    try:
        return await method(request, metadata=rt.ctx.service_metadata(tenant), timeout=rt.config.peer_timeout)
    except grpc.aio.AioRpcError as exc:
        code, details = exc.code(), exc.details()
        if code in _TRANSIENT:
            raise Unavailable(f"{what}: {code.name} {details}; try again") from None
        if code == grpc.StatusCode.NOT_FOUND:
            raise NotFound(f"{what}: NOT_FOUND {details}") from None
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            raise InvalidArgument(f"{what}: {details}") from None
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            raise FailedPrecondition(f"{what}: {details}") from None
        raise RuntimeError(f"{what}: {code.name} {details}") from None
