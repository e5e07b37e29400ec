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
that the event's transaction sends at commit (`store.chats.insert`/`tombstone`, channel
`routing_chats`, key <tenant>/<chat id>, on every replica; wakeups.py) and re-checks the
database every 100 ms besides, so a lost notification costs at most that. The question
to conversation is conversation_client.py (the only gRPC here).
"""

from __future__ import annotations

import time

from kaiwa_common.errors import NotFound, Unavailable
from kaiwa_common.fanout import Fanout, Subscription

from . import store
from .conversation_client import chat_exists
from .wakeups import CHATS, chat_key

ARRIVAL_WAIT = 2.5  # seconds a call waits for a chat conversation says exists
RECHECK = 0.1  # seconds between database re-checks while waiting


class ChatNotKnownYet(NotFound):
    """Routing has no row for this chat (yet). Use cases raise it; `ChatArrivals.resolve`
    decides between NOT_FOUND, waiting, and UNAVAILABLE."""

    def __init__(self, chat_id: str):
        super().__init__(f"chat {chat_id} is not known to routing")
        self.chat_id = chat_id


class ChatArrivals:
    def __init__(self, ctx, fanout: Fanout):
        self.ctx = ctx
        self.fanout = fanout

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
        with self.fanout.subscribe(CHATS, chat_key(tenant, chat_id)) as arrived:  # before the first look
            if await self._known(tenant, chat_id):
                return
            exists = await chat_exists(self.ctx, tenant, chat_id)
            if exists is False:
                raise NotFound(f"chat {chat_id} does not exist")
            if await self._wait(tenant, chat_id, arrived):
                return
        if exists:
            raise Unavailable(
                f"chat {chat_id} exists but is not yet known to routing (its chat_started event "
                "has not been applied yet); retry shortly"
            )
        raise Unavailable(
            f"chat {chat_id} is not known to routing and the conversation service could not be "
            "asked whether it exists; retry shortly"
        )

    async def _known(self, tenant: str, chat_id: str) -> bool:
        async with self.ctx.pool.acquire() as conn:
            return await store.chats.get(conn, tenant, chat_id) is not None

    async def _wait(self, tenant: str, chat_id: str, arrived: Subscription) -> bool:
        deadline = time.monotonic() + ARRIVAL_WAIT
        while (left := deadline - time.monotonic()) > 0:
            await arrived.next(min(left, RECHECK))  # a notification, RESYNC or the re-check: look again
            if await self._known(tenant, chat_id):
                return True
        return False
