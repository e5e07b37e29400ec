"""The conversation service, asked (gRPC GetChat) whether a chat routing has not heard of
exists (arrivals.py)."""

from __future__ import annotations

import logging

import grpc
from kaiwa.conversation.v1 import conversation_pb2 as conv_pb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub

log = logging.getLogger("kaiwa.routing.arrivals")

DEADLINE = 1.0  # seconds for conversation's GetChat


async def chat_exists(ctx, tenant: str, chat_id: str) -> bool | None:
    """True / False: conversation says the chat exists / does not; None: no answer."""
    stub = ConversationServiceStub(ctx.channel("conversation"))
    try:
        await stub.GetChat(conv_pb.GetChatRequest(chat_id=chat_id), metadata=ctx.service_metadata(tenant), timeout=DEADLINE)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return False
        log.warning(
            "conversation could not say whether a chat exists",
            extra={"fields": {"tenant": tenant, "chat_id": chat_id, "code": exc.code().name, "error": exc.details()}},
        )
        return None
    return True
