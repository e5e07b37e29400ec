"""The chat's lifecycle changes as written (CONV-05/06), shared by the use cases that
trigger them (lifecycle.py, send.py, timers.py, consumers.py). Each one, inside the
chat's unit of work, checks the move with the state machine (domain/lifecycle.py, which
refuses with a FailedPrecondition saying why), then writes the new state, its system
messages, a snapshot for the stream, its outbox events and its timers together:

    end       live -> ended        "missed"? + "ended", chat_ended; inactivity timer
    complete  open/ended -> completed  chat_ended (from open), "completed", chat_completed
    reopen    ended/completed -> open (or queued without an owner), chat_reopened

Timers are rows (kaiwa_common.timers): COUNTDOWN ends the chat at the end of an agent's
countdown, INACTIVITY completes an open or ended chat nobody wrote in for the tenant's
expiry (both handled in timers.py).
"""

from __future__ import annotations

from kaiwa.events.v1.conversation_pb2 import ChatCompleted, ChatEnded, ChatReopened

from kaiwa_common import timers
from kaiwa_common.auth import AGENT
from kaiwa_common.errors import PermissionDenied

from . import store
from .domain import lifecycle as lc
from .unit_of_work import Actor, ChatWriter, name_of, now, require_owner

COUNTDOWN = "conversation.countdown"
INACTIVITY = "conversation.inactivity"


async def end(w: ChatWriter, reason: str, missed: tuple[str, int] | None = None) -> None:
    """End a live chat now; `missed`: (routing's reason, seconds waited) for a missed chat."""
    chat = w.chat
    lc.next_state(chat["state"], lc.MISS if missed else lc.END)
    if chat["countdown_ends_at"] is not None:
        await timers.cancel(w.conn, w.tenant, COUNTDOWN, str(chat["id"]))
    ended = now()
    w.set(state=lc.ENDED, ended_at=ended, end_reason=reason, countdown_ends_at=None, queue_position=0, estimated_wait_seconds=0)
    if missed:
        await w.system("missed", reason=missed[0])
    await w.system("ended", time=ended.isoformat(), reason=reason)
    await w.snapshot()
    await w.publish(ended_event(chat, reason, missed))
    await schedule_inactivity(w)


def ended_event(chat: dict, reason: str, missed: tuple[str, int] | None = None) -> ChatEnded:
    event = ChatEnded(
        chat_id=str(chat["id"]),
        agent_id=chat["agent_id"],
        department_id=chat["department_id"],
        visitor_id=chat["visitor_id"],
        visitor_email=chat["visitor_email"],
        visitor_name=chat["visitor_name"],
        reason=reason,
        channel=f"CHANNEL_{chat['channel'].upper()}",
        question=chat["question"],
    )
    event.started_at.FromDatetime(chat["started_at"])
    event.ended_at.FromDatetime(chat["ended_at"] or now())
    if missed:
        event.missed_reason, event.waited_seconds = missed
    return event


async def complete(w: ChatWriter, reason: str, actor: Actor | None = None) -> None:
    """Complete the chat: by its assigned agent (`actor`), or by inactivity (no actor)."""
    chat = w.chat
    if actor is not None:
        if actor.role != AGENT:
            raise PermissionDenied("only the assigned agent can complete this chat")
        require_owner(chat, actor.sub, "only the assigned agent can complete this chat")
    lc.next_state(chat["state"], lc.COMPLETE, has_owner=bool(chat["agent_id"]))
    if chat["state"] == lc.OPEN:
        if chat["countdown_ends_at"] is not None:
            await timers.cancel(w.conn, w.tenant, COUNTDOWN, str(chat["id"]))
        w.set(ended_at=now(), end_reason=reason, countdown_ends_at=None)
        await w.publish(ended_event(chat, reason))
    w.set(state=lc.COMPLETED, completed_at=now())
    if reason == "inactivity":
        await w.system("auto_completed")
    else:
        await w.system("completed", agent_name=await name_of(w.conn, chat, chat["agent_id"]))
        await timers.cancel(w.conn, w.tenant, INACTIVITY, str(chat["id"]))
    await w.snapshot()
    await w.publish(
        ChatCompleted(
            chat_id=str(chat["id"]),
            agent_id=chat["agent_id"],
            reason=reason,
            department_id=chat["department_id"],
            visitor_id=chat["visitor_id"],
        )
    )


async def reopen(w: ChatWriter, by_name: str, reason: str) -> None:
    """Reopen an ended or completed chat: open with its agent, or queued without one."""
    chat = w.chat
    state = lc.next_state(chat["state"], lc.REOPEN, has_owner=bool(chat["agent_id"]))
    w.set(state=state, ended_at=None, completed_at=None, end_reason="")
    await w.system("reopened", by_name=by_name)
    await w.snapshot()
    await w.publish(
        ChatReopened(
            chat_id=str(chat["id"]),
            agent_id=chat["agent_id"],
            department_id=chat["department_id"],
            visitor_id=chat["visitor_id"],
            state=state,
            reason=reason,
        )
    )
    if state == lc.OPEN:
        await schedule_inactivity(w)
    else:
        await timers.cancel(w.conn, w.tenant, INACTIVITY, str(chat["id"]))


async def cancel_countdown(w: ChatWriter, by: str) -> None:
    """Stop a running end countdown ("support end interrupted"); `by`: visitor or agent."""
    await timers.cancel(w.conn, w.tenant, COUNTDOWN, str(w.chat["id"]))
    w.set(countdown_ends_at=None)
    await w.system("countdown_cancelled", by=by)
    await w.snapshot()


async def schedule_inactivity(w: ChatWriter) -> None:
    expiry = await store.inactivity_seconds(w.conn, w.tenant)
    await timers.schedule(w.conn, w.tenant, INACTIVITY, str(w.chat["id"]), delay=expiry)
