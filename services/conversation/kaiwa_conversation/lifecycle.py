"""CONV-05/06/15 use cases that move a chat through its lifecycle: EndChat (now, or an
agent's countdown), CompleteChat, ReopenChat and HandOverToHuman. StartChat is start.py;
the state machine itself is domain/lifecycle.py; what each change writes is
transitions.py; timers (countdown end, inactivity) are timers.py.
"""

from __future__ import annotations

from kaiwa.events.v1.conversation_pb2 import BotHandedOver

from kaiwa_common.auth import AGENT, SERVICE, VISITOR
from kaiwa_common.errors import FailedPrecondition, InvalidArgument, PermissionDenied, parse_uuid

from . import transitions
from .domain import lifecycle as lc
from .domain.channels import channel, window_closed
from .domain.attachments import check_rich
from .domain.messages import Draft, check_field
from .start import checked_department
from .timers import start_countdown
from .unit_of_work import Actor, Deps, check_read, name_of, now, require_owner, writing


async def end_chat(deps: Deps, actor: Actor, chat_id: str, countdown: int) -> dict:
    """The visitor or the assigned agent (or an admin) ends the chat now; an agent may
    instead start a countdown (30/45/60/90 s) that ends it unless interrupted."""
    chat_id = parse_uuid(chat_id, "chat_id")
    lc.Countdown.validate(countdown)
    async with writing(deps, actor.tenant, chat_id) as w:
        if actor.role == VISITOR:
            check_read(actor, w.chat, chat_id)
            if countdown:
                raise PermissionDenied("only the agent starts an end countdown")
        elif actor.role == AGENT:
            require_owner(w.chat, actor.sub, "only the assigned agent (or an admin) can end this chat")
        if countdown:
            await start_countdown(deps, w, countdown)
        else:
            await transitions.end(w, "visitor" if actor.role in (VISITOR, SERVICE) else "agent")
        return w.chat


async def complete_chat(deps: Deps, actor: Actor, chat_id: str) -> dict:
    """The assigned agent closes the case (from open or ended)."""
    chat_id = parse_uuid(chat_id, "chat_id")
    async with writing(deps, actor.tenant, chat_id) as w:
        await transitions.complete(w, "agent", actor)
        return w.chat


async def reopen_chat(deps: Deps, actor: Actor, chat_id: str, template: dict | None) -> dict:
    """The chat's agent (or an admin) reopens an ended or completed chat; outside the
    channel's session window only with an approved template, which is sent with it."""
    chat_id = parse_uuid(chat_id, "chat_id")
    async with writing(deps, actor.tenant, chat_id) as w:
        chat = w.chat
        if actor.role == AGENT:
            require_owner(chat, actor.sub, "only the chat's agent (or an admin) can reopen it")
        draft = None
        if template is not None:
            draft = Draft(kind="rich", rich=check_rich(template, channel(chat["channel"])))
            if draft.rich["type"] != "template":
                raise InvalidArgument("template must be a RICH_TYPE_TEMPLATE element")
        if window_closed(chat, now()) and draft is None:
            raise FailedPrecondition(f"the {chat['channel']} session window has closed: reopen with an approved template")
        name = await name_of(w.conn, chat, actor.sub) if actor.role == AGENT else actor.sub
        await transitions.reopen(w, by_name=name, reason="agent")
        if draft is not None and chat["state"] == lc.OPEN:
            await w.append([draft], "agent", chat["agent_id"], outgoing=True)
        return w.chat


async def hand_over(deps: Deps, actor: Actor, chat_id: str, summary: str, department_id: str) -> dict:
    """CONV-15: the bot hands its chat to the agents (of a department, checked with routing
    like StartChat's, or of the chat's own), its summary kept as an internal note."""
    chat_id = parse_uuid(chat_id, "chat_id")
    summary = check_field(summary, "summary", 2000)
    department_id = checked_department(department_id)
    if department_id:
        await deps.routing.check_department(actor.tenant, department_id)
    async with writing(deps, actor.tenant, chat_id) as w:
        chat = w.chat
        state = lc.next_state(chat["state"], lc.HANDOVER)
        department_id = department_id or chat["department_id"]  # none: every agent of the tenant
        if summary:
            await w.append([Draft(kind="note", text=summary)], "bot", chat["bot_id"] or actor.sub, outgoing=False)
        w.set(state=state, department_id=department_id)
        await w.system("bot_handover")
        await w.snapshot()
        await w.publish(
            BotHandedOver(
                chat_id=str(chat["id"]),
                department_id=department_id,
                visitor_id=chat["visitor_id"],
                visitor_email=chat["visitor_email"],
                summary=summary,
            )
        )
        return chat
