"""CONV-04: UpdateMessageStatus: the visitor's widget or a channel's service reports what
became of a message sent to the customer. A status only moves forward (sent -> delivered
-> read, or sent -> failed with a reason), and only as far as the channel reports
(domain/messages.next_status); each change is a stream event for the chat's watchers."""

from __future__ import annotations

from kaiwa_common.errors import FailedPrecondition, InvalidArgument, NotFound, parse_uuid

from . import store
from .domain.channels import channel
from .domain.messages import FAILURE_REASONS, next_status
from .unit_of_work import Actor, Deps, check_read, writing


async def update_status(deps: Deps, actor: Actor, chat_id: str, seq: int, status: str, reason: str) -> dict:
    """The message with its status now (unchanged by a repeat)."""
    chat_id = parse_uuid(chat_id, "chat_id")
    if status == "failed" and reason not in FAILURE_REASONS:
        raise InvalidArgument(f"a failed status needs failure_reason, one of {', '.join(FAILURE_REASONS)}")
    if status != "failed" and reason:
        raise InvalidArgument("failure_reason goes with the FAILED status only")
    async with writing(deps, actor.tenant, chat_id) as w:
        check_read(actor, w.chat, chat_id)
        message = await store.message(w.conn, actor.tenant, chat_id, seq)
        if message is None:
            raise NotFound(f"message {seq} not found in this chat")
        if not message["outgoing"]:
            raise FailedPrecondition(f"message {seq} was not sent to the visitor: it has no delivery status")
        new = next_status(message["status"], status, channel(w.chat["channel"]))
        if new is not None:
            await store.set_status(w.conn, actor.tenant, chat_id, seq, new, reason)
            await w.event("status", {"message_seq": seq, "status": new, "failure_reason": reason})
            message.update(status=new, failure_reason=reason)
        return message
