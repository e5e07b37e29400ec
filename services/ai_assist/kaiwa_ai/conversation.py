"""Reads the customer's side of a chat from the conversation service (AI-02, and context
for the LLM), over gRPC with a service token for the caller's tenant and a deadline.

Only the visitor's own text messages count; agents', bots' and system messages, notes,
files and rich elements do not. ListMessages pages from the oldest message on, so the
pages are read to the end (at most MAX_PAGES of 500) and the latest `limit` kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
from kaiwa.conversation.v1 import conversation_pb2 as cpb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub

from kaiwa_common.app import ServiceContext
from kaiwa_common.chat_members import agents_in
from kaiwa_common.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable

MAX_PAGES = 20
PAGE = 500


@dataclass(frozen=True)
class CustomerMessage:
    seq: int
    text: str


class ConversationReader:
    def __init__(self, ctx: ServiceContext, deadline: float):
        self.ctx = ctx
        self.deadline = deadline

    async def customer_messages(self, tenant: str, chat_id: str, limit: int) -> list[CustomerMessage]:
        stub = ConversationServiceStub(self.ctx.channel("conversation"))
        ends_at = time.monotonic() + self.deadline
        found: list[CustomerMessage] = []
        token = ""
        for _ in range(MAX_PAGES):
            page = await self._page(stub, tenant, chat_id, token, ends_at)
            found += [
                CustomerMessage(m.seq, m.text)
                for m in page.messages
                if m.sender_kind == cpb.SENDER_KIND_VISITOR and m.kind == cpb.MESSAGE_KIND_TEXT and m.text.strip()
            ]
            found = found[-limit:]
            token = page.next_page_token
            if not token:
                break
        return found

    async def require_member(self, tenant: str, chat_id: str, agent_id: str) -> None:
        """An agent reads a chat only when in it: its agent or an invited one who has not
        left (the rule conversation applies to agents acting in a chat)."""
        stub = ConversationServiceStub(self.ctx.channel("conversation"))
        try:
            chat = await stub.GetChat(
                cpb.GetChatRequest(chat_id=chat_id), metadata=self.ctx.service_metadata(tenant), timeout=self.deadline
            )
        except grpc.aio.AioRpcError as err:
            raise _domain_error(err, chat_id) from None
        if agent_id not in agents_in(chat):
            raise PermissionDenied(f"agent {agent_id} is not in chat {chat_id}")

    async def _page(self, stub, tenant: str, chat_id: str, token: str, ends_at: float) -> cpb.ListMessagesResponse:
        request = cpb.ListMessagesRequest(chat_id=chat_id, page_size=PAGE, page_token=token)
        try:
            return await stub.ListMessages(
                request, metadata=self.ctx.service_metadata(tenant), timeout=max(0.05, ends_at - time.monotonic())
            )
        except grpc.aio.AioRpcError as err:
            raise _domain_error(err, chat_id) from None


def _domain_error(err: grpc.aio.AioRpcError, chat_id: str) -> Exception:
    code = err.code()
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"no chat {chat_id} in this tenant", field="chat_id")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(f"chat_id: {err.details()}", field="chat_id")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"the chat's messages may not be read: {err.details()}")
    return Unavailable(
        f"the conversation service cannot be reached to read the chat ({code.name}: {err.details()}); retry shortly"
    )
