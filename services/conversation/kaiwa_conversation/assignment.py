"""ROUT-02: an agent who has just accepted (or been assigned, invited) a chat in routing
can act on it at once, although conversation learns it from routing's event a moment
later.

Conversation decides who may write from its own view (the chat's agent, its
participants), which routing's events keep up to date. When that view refuses a staff
caller, the use case raises NotAssignedYet instead of a plain PermissionDenied, and the
gate asks routing before answering:

    use case ─NotAssignedYet─▶ routing GetAssignment (+ ListMembers for members), 1 s
        routing: someone else / nobody / unknown chat ─▶ PERMISSION_DENIED at once
        routing down or slow                          ─▶ UNAVAILABLE (retry)
        routing: it is this agent ─▶ wait (LISTEN/NOTIFY on the chat, bounded) until the
                                     event is applied, then run the use case once more
                                     ─▶ not applied in time: UNAVAILABLE (retry)

The gate never writes the assignment itself: the event is the only writer of
assignments (and of their system messages), so nothing is applied twice or out of
order with later transfers.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, TypeVar

from kaiwa_common.errors import PermissionDenied, Unavailable

from . import store

OWNER, MEMBER = "owner", "member"
SETTLE_SECONDS = 2.5
RECHECK_SECONDS = 0.25  # a NOTIFY missed while the listener reconnects is caught by this poll

T = TypeVar("T")


class NotAssignedYet(PermissionDenied):
    """Conversation's view refuses this staff caller; routing may know better (see above).
    Unhandled, it is a plain PERMISSION_DENIED."""

    def __init__(self, message: str, chat_id, agent_id: str, need: str):
        super().__init__(message)
        self.chat_id = str(chat_id)
        self.agent_id = agent_id
        self.need = need  # OWNER: the chat's agent; MEMBER: its agent or an invited one


class AssignmentGate:
    def __init__(self, deps, settle_seconds: float = SETTLE_SECONDS):
        """deps: unit_of_work.Deps (the pool, routing, the live hub)."""
        self.ctx = deps.ctx
        self.routing = deps.routing
        self.hub = deps.hub
        self.settle_seconds = settle_seconds

    async def run(self, tenant: str, use_case: Callable[[], Awaitable[T]]) -> T:
        """Run the use case; if only a not-yet-applied routing event stands in the way,
        wait for it and run it once more."""
        try:
            return await use_case()
        except NotAssignedYet as refused:
            await self.settle(tenant, refused)
        return await use_case()

    async def settle(self, tenant: str, refused: NotAssignedYet) -> None:
        """Return once conversation's view includes the caller as routing says it should;
        raise PermissionDenied (routing says no) or Unavailable (cannot tell, or too late)."""
        if not await self._routing_says_yes(tenant, refused):
            raise PermissionDenied(refused.message)
        if not await self._applied(tenant, refused):
            raise Unavailable(
                f"routing has given this chat to {refused.agent_id}, but the assignment has not reached "
                f"the conversation service yet (waited {self.settle_seconds:g} s): retry in a moment"
            )

    async def _routing_says_yes(self, tenant: str, refused: NotAssignedYet) -> bool:
        assignment = await self.routing.assignment(tenant, refused.chat_id)
        if assignment is None:
            return False
        if assignment.assigned and assignment.agent_id == refused.agent_id:
            return True
        return (
            refused.need == MEMBER
            and assignment.assigned
            and await self.routing.is_invited(tenant, refused.chat_id, refused.agent_id)
        )

    async def _applied(self, tenant: str, refused: NotAssignedYet) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle_seconds
        with self.hub.subscribe(refused.chat_id) as subscription:  # registered before reading: no wake-up lost
            while True:
                async with self.ctx.pool.acquire() as conn:
                    if await store.has_agent(conn, tenant, refused.chat_id, refused.agent_id, owner_only=refused.need == OWNER):
                        return True
                left = deadline - loop.time()
                if left <= 0:
                    return False
                await subscription.next(min(left, RECHECK_SECONDS))  # a wake-up, or time to look again
