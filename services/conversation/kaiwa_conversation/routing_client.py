"""What conversation asks routing over gRPC: is this department the tenant's (CONV-05),
who holds this chat (ROUT-02). Calls carry a service token for the tenant and a short
deadline; routing's refusals become domain errors, and routing being down, slow or
unable to answer becomes Unavailable (retry), never a wrong yes or no.

Departments are never deleted in routing, so a department once confirmed is remembered
for a while (a bounded cache) instead of being asked again for every new chat.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import grpc
from kaiwa.routing.v1 import routing_pb2 as rpb
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from kaiwa_common.errors import InvalidArgument, NotFound, Unavailable

log = logging.getLogger("kaiwa.conversation.routing")

DEADLINE = 1.0
# Routing itself waits up to 2.5 s for chat_started before it answers about a chat it has
# not seen yet (routing README); questions about a chat allow for that.
CHAT_DEADLINE = 3.5
DEPARTMENT_TTL = 60.0
MAX_CACHED = 10_000


@dataclass(frozen=True)
class Assignment:
    assigned: bool  # routing has an agent on the chat right now
    agent_id: str


class RoutingClient:
    def __init__(self, ctx, deadline: float = DEADLINE):
        self.ctx = ctx
        self.deadline = deadline
        self._departments: dict[tuple[str, str], float] = {}  # (tenant, id) -> confirmed at

    def _stub(self) -> RoutingServiceStub:
        return RoutingServiceStub(self.ctx.channel("routing"))

    async def _ask(self, method: str, request, tenant: str, doing: str, deadline: float | None = None):
        try:
            return await getattr(self._stub(), method)(
                request, metadata=self.ctx.service_metadata(tenant), timeout=deadline or self.deadline
            )
        except grpc.aio.AioRpcError as err:
            code = err.code()
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(err.details() or f"routing does not know it ({doing})") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(err.details() or doing) from None
            log.warning("routing did not answer", extra={"fields": {"call": method, "code": code.name, "details": err.details()}})
            raise Unavailable(
                f"the routing service could not {doing} right now ({code.name}); nothing was changed: retry in a moment"
            ) from None

    async def check_department(self, tenant: str, department_id: str) -> None:
        """NotFound unless `department_id` (a UUID) is a department of `tenant`."""
        key = (tenant, department_id)
        confirmed = self._departments.get(key)
        if confirmed is not None and time.monotonic() - confirmed < DEPARTMENT_TTL:
            return
        try:
            await self._ask(
                "GetDepartment", rpb.GetDepartmentRequest(department_id=department_id), tenant, "check the department"
            )
        except NotFound:
            raise NotFound(f"department {department_id} is not a department of this portal") from None
        if len(self._departments) >= MAX_CACHED:
            self._departments.clear()
        self._departments[key] = time.monotonic()

    async def assignment(self, tenant: str, chat_id: str) -> Assignment | None:
        """Who routing says holds the chat; None when routing has not heard of it."""
        try:
            reply = await self._ask(
                "GetAssignment", rpb.GetAssignmentRequest(chat_id=chat_id), tenant, "confirm the chat's assignment", CHAT_DEADLINE
            )
        except NotFound:
            return None
        return Assignment(reply.state == rpb.ASSIGNMENT_STATE_ASSIGNED, reply.agent_id)

    async def is_invited(self, tenant: str, chat_id: str, agent_id: str) -> bool:
        """Routing counts `agent_id` among the chat's invited members."""
        try:
            reply = await self._ask(
                "ListMembers", rpb.ListMembersRequest(chat_id=chat_id), tenant, "confirm the chat's members", CHAT_DEADLINE
            )
        except NotFound:
            return False
        return any(m.agent_id == agent_id and m.role == rpb.MEMBER_ROLE_PARTICIPANT for m in reply.members)
