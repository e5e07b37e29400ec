"""Routing's events that change a chat (CONV-03/05), applied by one durable consumer in
the consumer's transaction (kaiwa_common.consumer: effect and processed-event row
together, ack after commit):

    chat_assigned           open with the agent (accepted / transferred / assigned); the
                            previous agent leaves; the agent's name from the event
    agent_invited           an invited participant (agents only see the note)
    transfer_requested      an internal note naming the target (agent or department)
    transfer_declined       an internal note under the request; the chat may go back to
                            the queue (returned_to_queue)
    chat_missed             the queued chat ends with reason "missed" (system messages
                            "missed" and "ended", chat_ended with routing's reason and the
                            time waited, so the CRM notes the missed chat); the visitor
                            cannot write to it any more
    queue_position_changed  the visitor's position and estimated wait

Events of an unknown chat can never apply: they are parked (PermanentEventError).
"""

from __future__ import annotations

import uuid

from kaiwa.events.v1.envelope_pb2 import Event
from kaiwa.events.v1.routing_pb2 import (
    AgentInvited,
    ChatAssigned,
    ChatMissed,
    QueuePositionChanged,
    TransferDeclined,
    TransferRequested,
)

from kaiwa_common import timers
from kaiwa_common.consumer import ConsumerSpec
from kaiwa_common.errors import NotFound, PermanentEventError

from . import store, transitions
from .domain import lifecycle as lc
from .unit_of_work import ChatWriter, Deps, is_member, name_of, writing

SYSTEM_KIND_OF = {"accepted": "accepted", "transferred": "transferred"}  # any other `how`: "assigned"


async def assigned(w: ChatWriter, p: ChatAssigned) -> None:
    chat, conn = w.chat, w.conn
    if chat["state"] not in lc.LIVE or (chat["state"] == lc.OPEN and chat["agent_id"] == p.agent_id):
        return
    old = chat["agent_id"] or p.previous_agent_id
    if old and old != p.agent_id:
        await store.leave(conn, w.tenant, chat["id"], old)
    # Routing names the agent (its agents all have one); a name seen before is the fallback.
    agent_name = p.agent_name or await name_of(conn, chat, p.agent_id)
    await store.upsert_participant(conn, w.tenant, chat["id"], p.agent_id, agent_name, "owner")
    department = {"department_id": p.department_id} if p.department_id else {}
    w.set(state=lc.OPEN, agent_id=p.agent_id, queue_position=0, estimated_wait_seconds=0, **department)
    await w.system(SYSTEM_KIND_OF.get(p.how, "assigned"), agent_name=agent_name, agent_id=p.agent_id)
    await w.snapshot()
    await transitions.schedule_inactivity(w)


async def invited(w: ChatWriter, p: AgentInvited) -> None:
    if w.chat["state"] not in lc.LIVE or await is_member(w.conn, w.chat, p.agent_id):
        return
    by_name = await name_of(w.conn, w.chat, p.by_agent_id)
    await store.upsert_participant(w.conn, w.tenant, w.chat["id"], p.agent_id, p.agent_name, "invited")
    await w.system("agent_invited", agent_name=p.agent_name or p.agent_id, by_name=by_name, note=p.note)
    await w.snapshot()


async def transfer_requested(w: ChatWriter, p: TransferRequested) -> None:
    """The target is the department (its name when routing gives it), or the agent by the
    name routing gives, else by a name seen in this chat, else by id."""
    target = p.to_department_name or p.to_department_id or p.to_agent_name or await name_of(w.conn, w.chat, p.to_agent_id)
    await w.system(
        "transfer_requested",
        from_name=await name_of(w.conn, w.chat, p.from_agent_id),
        target=target,
        note=p.note or "-",
        transfer_id=p.transfer_id,
    )


async def transfer_declined(w: ChatWriter, p: TransferDeclined) -> None:
    """Shown under its request. Who declined: the agent (or the unanswered department) by
    the name routing gives; without names, as the request named its target, else by a name
    seen in this chat or the id."""
    chat, conn = w.chat, w.conn
    under = 0
    if p.transfer_id:
        under = await store.find_system_message(conn, w.tenant, chat["id"], "transfer_requested", "transfer_id", p.transfer_id)
    target = p.to_agent_name or p.to_department_name
    if not target and under:
        target = (await store.message(conn, w.tenant, chat["id"], under))["body"]["system"]["params"]["target"]
    if not target:
        target = await name_of(conn, chat, p.to_agent_id) if p.to_agent_id else p.to_department_id
    note, reason = p.note or "-", p.reason or "-"
    await w.system(
        "transfer_declined", reply_to_seq=under or 0, target=target, reason=reason, note=note, transfer_id=p.transfer_id
    )
    if p.returned_to_queue and chat["state"] == lc.OPEN:
        lc.next_state(lc.OPEN, lc.RETURN_TO_QUEUE)
        if chat["agent_id"]:
            await store.leave(conn, w.tenant, chat["id"], chat["agent_id"])
        w.set(state=lc.QUEUED, agent_id="")
        await timers.cancel(conn, w.tenant, transitions.INACTIVITY, str(chat["id"]))
        await w.system("returned_to_queue")
        await w.snapshot()


async def missed(w: ChatWriter, p: ChatMissed) -> None:
    if lc.allowed(w.chat["state"], lc.MISS):
        await transitions.end(w, "missed", missed=(p.reason or "no_agent_accepted", p.waited_seconds))


async def queue_position(w: ChatWriter, p: QueuePositionChanged) -> None:
    if w.chat["state"] != lc.QUEUED:
        return
    w.set(queue_position=p.position, estimated_wait_seconds=p.estimated_wait_seconds)
    await w.event("queue", {"position": p.position, "estimated_wait_seconds": p.estimated_wait_seconds})


APPLY = {
    "chat_assigned": assigned,
    "agent_invited": invited,
    "transfer_requested": transfer_requested,
    "transfer_declined": transfer_declined,
    "chat_missed": missed,
    "queue_position_changed": queue_position,
}


def routing_consumer(deps: Deps, durable: str) -> ConsumerSpec:
    async def handle(event: Event, conn) -> None:
        payload = getattr(event, event.type)
        try:
            chat_id = uuid.UUID(payload.chat_id)
        except ValueError:
            raise PermanentEventError(f"{event.type}: chat_id {payload.chat_id!r} is not a UUID") from None
        try:
            async with writing(deps, event.tenant, chat_id, conn) as w:
                await APPLY[event.type](w, payload)
        except NotFound as exc:
            raise PermanentEventError(f"{event.type}: {exc.message} in tenant {event.tenant}") from None

    return ConsumerSpec(durable, "routing", list(APPLY), handle)
