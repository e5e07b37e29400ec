"""CONV-06: the timed end (an agent's 30/45/60/90 s countdown) and inactivity
auto-complete. Both are timer rows (kaiwa_common.timers: a deadline, claimed with SKIP
LOCKED, so each fires once on any replica, after a restart too); the handlers below run
in the claiming transaction and re-check the chat before acting, so a timer that is
stale (the countdown was cancelled, someone wrote meanwhile) changes nothing.

    EndChat(countdown) ─▶ countdown_ends_at + COUNTDOWN row ─▶ at zero: end (reason countdown)
        visitor message or typing, CancelEndChat ─▶ cancelled ("support end interrupted")
    chat open or ended ─▶ INACTIVITY row (tenant's expiry after the last activity)
        ─▶ still idle: complete (reason inactivity); written to meanwhile: rescheduled
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from kaiwa_common import timers as timer_rows
from kaiwa_common.auth import AGENT
from kaiwa_common.errors import FailedPrecondition, parse_uuid

from . import store
from .domain import lifecycle as lc
from .transitions import COUNTDOWN, INACTIVITY, cancel_countdown, complete, end
from .unit_of_work import Actor, ChatWriter, Deps, now, require_owner, writing

# A countdown row claimed this early is still due (timer polls are not to the millisecond).
COUNTDOWN_SLACK = timedelta(seconds=0.5)


async def start_countdown(deps: Deps, w: ChatWriter, seconds: int) -> None:
    """EndChat with countdown_seconds: the chat ends in `seconds` unless interrupted."""
    if w.chat["state"] != lc.OPEN:
        raise FailedPrecondition(f"a countdown needs an open chat (the chat is {w.chat['state']})")
    ends = now() + timedelta(seconds=seconds * deps.countdown_scale)
    w.set(countdown_ends_at=ends)
    await timer_rows.schedule(w.conn, w.tenant, COUNTDOWN, str(w.chat["id"]), due_at=ends)
    await w.system("countdown_started", seconds=seconds, ends_at=ends.isoformat())
    await w.snapshot()


async def cancel_end(deps: Deps, actor: Actor, chat_id: str) -> dict:
    """CancelEndChat: the assigned agent (or an admin) stops the countdown."""
    chat_id = parse_uuid(chat_id, "chat_id")
    async with writing(deps, actor.tenant, chat_id) as w:
        if actor.role == AGENT:
            require_owner(w.chat, actor.sub, "only the assigned agent (or an admin) can cancel the end countdown")
        if w.chat["countdown_ends_at"] is None:
            raise FailedPrecondition("no end countdown is running")
        await cancel_countdown(w, by="agent")
        return w.chat


async def on_countdown(deps: Deps, timer: timer_rows.Timer, conn) -> None:
    async with writing(deps, timer.tenant, uuid.UUID(timer.key), conn) as w:
        ends = w.chat["countdown_ends_at"]
        if w.chat["state"] == lc.OPEN and ends is not None and ends <= now() + COUNTDOWN_SLACK:
            await end(w, "countdown")


async def on_inactivity(deps: Deps, timer: timer_rows.Timer, conn) -> None:
    async with writing(deps, timer.tenant, uuid.UUID(timer.key), conn) as w:
        chat = w.chat
        if chat["state"] not in (lc.OPEN, lc.ENDED) or not chat["agent_id"]:
            return  # nobody to complete it for (e.g. a missed chat): it stays ended
        expiry = timedelta(seconds=await store.inactivity_seconds(conn, w.tenant))
        due = max(chat["last_activity_at"], chat["ended_at"] or chat["last_activity_at"]) + expiry
        if due <= now():
            await complete(w, "inactivity")
        else:
            await timer_rows.schedule(conn, w.tenant, INACTIVITY, timer.key, due_at=due)


def handlers(deps: Deps) -> dict:
    """The timer kinds this service handles (ServiceSpec.timers)."""
    return {
        COUNTDOWN: lambda timer, conn: on_countdown(deps, timer, conn),
        INACTIVITY: lambda timer, conn: on_inactivity(deps, timer, conn),
    }
