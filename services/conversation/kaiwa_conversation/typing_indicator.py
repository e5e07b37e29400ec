"""CONV-14: NotifyTyping. The customer's typing reaches the agents where the channel
reports it (refused elsewhere) and stops a running end countdown; an agent's typing
(an agent of the chat: ROUT-02 gate) reaches the other agents on every channel and the
customer on the web widget only (stream.py filters). Typing is never stored: it goes
over core NATS to every replica's watchers of the chat (live.py)."""

from __future__ import annotations

from kaiwa_common.auth import SERVICE, VISITOR
from kaiwa_common.errors import FailedPrecondition

from . import transitions
from .domain.channels import channel
from .live import Typing
from .unit_of_work import Actor, Deps, read_chat, require_member, writing


async def notify_typing(deps: Deps, actor: Actor, chat_id: str, typing: bool) -> bool:
    """Whether this typing stopped the chat's end countdown."""
    chat, _ = await read_chat(deps, actor, chat_id)
    if actor.role in (VISITOR, SERVICE):
        if not channel(chat["channel"]).typing_indicator:
            raise FailedPrecondition(f"channel {chat['channel']} does not report the customer's typing")
        who = Typing("visitor", chat["visitor_id"], typing)
    else:
        async with deps.ctx.pool.acquire() as conn:
            await require_member(conn, chat, actor.sub)
        who = Typing("agent", actor.sub, typing)
    cancelled = False
    if who.sender_kind == "visitor" and typing and chat["countdown_ends_at"] is not None:
        cancelled = await _interrupt_countdown(deps, actor.tenant, chat["id"])
    await deps.hub.publish_typing(actor.tenant, str(chat["id"]), who)
    return cancelled


async def _interrupt_countdown(deps: Deps, tenant: str, chat_id) -> bool:
    """Visitor input during a countdown stops it ("support end interrupted")."""
    async with writing(deps, tenant, chat_id) as w:
        if w.chat["countdown_ends_at"] is None:
            return False
        await transitions.cancel_countdown(w, by="visitor")
        return True
