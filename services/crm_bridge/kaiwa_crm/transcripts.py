"""Chat transcripts from the conversation service, as attachments for the CRM."""

from __future__ import annotations

import logging

import grpc
from kaiwa.conversation.v1 import conversation_pb2, conversation_pb2_grpc

from kaiwa_common.app import ServiceContext
from kaiwa_common.errors import PermanentEventError, Unavailable

from .domain import NewAttachment

log = logging.getLogger("kaiwa.crm")

TIMEOUT_SECONDS = 15.0

# Worth another try later: the peer is away, overloaded or restarting.
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}
# Will never succeed for this chat.
_PERMANENT = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}


async def transcript_attachment(ctx: ServiceContext, tenant: str, chat_id: str) -> NewAttachment | None:
    """The chat's transcript as a PDF (or plain text when no PDF can be made); None if empty.

    Raises Unavailable when the conversation service cannot answer now (the event is
    retried) and PermanentEventError when the chat does not exist there.
    """
    try:
        transcript = await _get_transcript(ctx, tenant, chat_id, include_pdf=True)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
            raise _translated(exc, chat_id) from None
        # No PDF renderer over there (e.g. no Japanese font installed): the text will do.
        log.warning("transcript PDF unavailable, attaching text", extra={"fields": {"chat": chat_id, "error": exc.details()}})
        try:
            transcript = await _get_transcript(ctx, tenant, chat_id, include_pdf=False)
        except grpc.aio.AioRpcError as exc2:
            raise _translated(exc2, chat_id) from None
    if transcript.pdf:
        return NewAttachment(
            name=f"chat-transcript-{chat_id}.pdf", mime_type="application/pdf", content=transcript.pdf, chat_id=chat_id
        )
    if transcript.text.strip():
        return NewAttachment(
            name=f"chat-transcript-{chat_id}.txt",
            mime_type="text/plain; charset=utf-8",
            content=transcript.text.encode(),
            chat_id=chat_id,
        )
    return None


async def _get_transcript(ctx: ServiceContext, tenant: str, chat_id: str, include_pdf: bool):
    stub = conversation_pb2_grpc.ConversationServiceStub(ctx.channel("conversation"))
    return await stub.GetTranscript(
        conversation_pb2.GetTranscriptRequest(chat_id=chat_id, include_pdf=include_pdf),
        metadata=ctx.service_metadata(tenant),
        timeout=TIMEOUT_SECONDS,
    )


def _translated(exc: grpc.aio.AioRpcError, chat_id: str) -> Exception:
    what = f"conversation service: GetTranscript({chat_id}) {exc.code().name}: {exc.details()}"
    if exc.code() in _TRANSIENT:
        return Unavailable(what)
    if exc.code() in _PERMANENT:
        return PermanentEventError(what)
    return RuntimeError(what)  # unexpected: retried a few times, then parked as a dead letter
