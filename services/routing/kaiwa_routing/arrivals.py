"""Calls that race their own events (ROUT-02): a chat the conversation service has
started but whose `chat_started` routing has not applied yet.

Routing learns chats from events, so a client that calls AssignChat (or GetQueuePosition,
TransferChat, ...) right after StartChat may reach routing first. A chat that exists is
never answered NOT_FOUND; when routing does not know a chat id:

    ask conversation (GetChat, service token of the caller's tenant, deadline 1 s)
      NOT_FOUND    -> NOT_FOUND: no such chat in this tenant; nothing to wait for
      found        -> wait for the chat to arrive (at most 2.5 s) -> go on with the call
                                                                  -> else UNAVAILABLE, retry
      unreachable  -> wait the same way                           -> go on with the call
                                                                  -> else UNAVAILABLE, retry

Asking first, before waiting, answers an id that does not exist (a typo, another
tenant's chat) at once instead of after the whole wait, and waits only for chats known
to exist; the extra call costs about a millisecond, only on the rare miss (the common
path, a chat routing knows, never reaches this module). The wait is woken by the NOTIFY
that the event's transaction sends at commit (`insert_chat`/`tombstone`, channel
`routing_chats`, key <tenant>/<chat id>, on every replica) and re-checks the database
every 100 ms besides, so a lost notification costs at most that.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from kaiwa.conversation.v1 import conversation_pb2 as conv_pb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub

from kaiwa_common.errors import NotFound, Unavailable

from . import store

log = logging.getLogger("kaiwa.routing.arrivals")

CHATS = "routing_chats"        # NOTIFY channel; key: <tenant>/<chat id>
ARRIVAL_WAIT = 2.5             # seconds a call waits for a chat conversation says exists
RECHECK = 0.1                  # seconds between database re-checks while waiting
CONVERSATION_DEADLINE = 1.0    # seconds for conversation's GetChat


def chat_key(tenant: str, chat_id: str) -> str:
    return f"{tenant}/{chat_id}"


class ChatNotKnownYet(NotFound):
    """Routing has no row for this chat (yet). Use cases raise it; `ChatArrivals.resolve`
    decides between NOT_FOUND, waiting, and UNAVAILABLE."""

    def __init__(self, chat_id: str):
        super().__init__(f"chat {chat_id} is not known to routing")
        self.chat_id = chat_id


class ChatArrivals:
    def __init__(self, ctx, notifier):
        self.ctx = ctx
        self.notifier = notifier

    async def run_for_chat(self, tenant: str, chat_id: str, call):
        """`call()` (a use case on this chat); if it finds the chat unknown, resolve that
        (see the module docstring) and run it once more."""
        try:
            return await call()
        except ChatNotKnownYet:
            await self.resolve(tenant, chat_id)
            return await call()

    async def resolve(self, tenant: str, chat_id: str) -> None:
        """Return once routing knows the chat; raise NotFound or Unavailable otherwise."""
        key = chat_key(tenant, chat_id)
        arrived = self.notifier.subscribe(CHATS, key)  # before the first look: no notification missed
        try:
            if await self._known(tenant, chat_id):
                return
            exists = await self._conversation_has(tenant, chat_id)
            if exists is False:
                raise NotFound(f"chat {chat_id} does not exist")
            if await self._wait(tenant, chat_id, arrived):
                return
        finally:
            self.notifier.unsubscribe(CHATS, key, arrived)
        if exists:
            raise Unavailable(f"chat {chat_id} exists but is not yet known to routing (its chat_started event "
                              "has not been applied yet); retry shortly")
        raise Unavailable(f"chat {chat_id} is not known to routing and the conversation service could not be "
                          "asked whether it exists; retry shortly")

    async def _known(self, tenant: str, chat_id: str) -> bool:
        async with self.ctx.pool.acquire() as conn:
            return await store.chat(conn, tenant, chat_id) is not None

    async def _wait(self, tenant: str, chat_id: str, arrived: asyncio.Event) -> bool:
        deadline = time.monotonic() + ARRIVAL_WAIT
        while (left := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(arrived.wait(), min(left, RECHECK))
            except asyncio.TimeoutError:
                pass
            arrived.clear()
            if await self._known(tenant, chat_id):
                return True
        return False

    async def _conversation_has(self, tenant: str, chat_id: str) -> bool | None:
        """True / False: conversation says the chat exists / does not; None: no answer."""
        stub = ConversationServiceStub(self.ctx.channel("conversation"))
        try:
            await stub.GetChat(conv_pb.GetChatRequest(chat_id=chat_id), metadata=self.ctx.service_metadata(tenant),
                               timeout=CONVERSATION_DEADLINE)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return False
            log.warning("conversation could not say whether a chat exists",
                        extra={"fields": {"tenant": tenant, "chat_id": chat_id, "code": exc.code().name,
                                          "error": exc.details()}})
            return None
        return True
