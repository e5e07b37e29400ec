"""Events from routing that change a chat (CONV-05): assignment, invitations, transfer
notes and declines, missed chats, queue positions.

chat_missed: the queued chat ends with reason "missed" (system messages "missed" and
"ended", and chat_ended with the routing reason and waiting time, so the CRM notes the
missed chat); the visitor cannot write to it any more.
"""

from __future__ import annotations

import uuid

from kaiwa.events.v1.envelope_pb2 import Event

from kaiwa_common.consumer import ConsumerSpec
from kaiwa_common.errors import NotFound, PermanentEventError

from .handlers import Conversation

ROUTING_EVENTS = [
    "chat_assigned",
    "agent_invited",
    "transfer_requested",
    "transfer_declined",
    "chat_missed",
    "queue_position_changed",
]


def routing_consumer(conversation: Conversation, durable: str) -> ConsumerSpec:
    async def handle(event: Event, conn) -> None:
        payload = getattr(event, event.type)
        try:
            chat_id = uuid.UUID(payload.chat_id)
        except ValueError:
            raise PermanentEventError(f"{event.type}: chat_id {payload.chat_id!r} is not a UUID") from None
        try:
            await _apply(conversation, conn, event.tenant, chat_id, event.type, payload)
        except NotFound as exc:
            raise PermanentEventError(f"{event.type}: {exc.message} in tenant {event.tenant}") from None

    return ConsumerSpec(durable, "routing", ROUTING_EVENTS, handle)


async def _apply(c: Conversation, conn, tenant: str, chat_id, kind: str, p) -> None:
    if kind == "chat_assigned":
        await c.assigned(conn, tenant, chat_id, p.agent_id, p.agent_name, p.previous_agent_id, p.how, p.department_id)
    elif kind == "agent_invited":
        await c.invited(conn, tenant, chat_id, p.agent_id, p.agent_name, p.by_agent_id, p.note)
    elif kind == "transfer_requested":
        await c.transfer_requested(
            conn,
            tenant,
            chat_id,
            p.from_agent_id,
            p.to_agent_id,
            p.to_department_name or p.to_department_id,
            p.note,
            p.transfer_id,
        )
    elif kind == "transfer_declined":
        await c.transfer_declined(
            conn, tenant, chat_id, p.to_agent_id, p.to_department_id, p.reason, p.note, p.transfer_id, p.returned_to_queue
        )
    elif kind == "chat_missed":
        await c.missed(conn, tenant, chat_id, p.reason, p.waited_seconds)
    elif kind == "queue_position_changed":
        await c.queue_position(conn, tenant, chat_id, p.position, p.estimated_wait_seconds)
