"""CONV-05/06/15: the chat lifecycle as one explicit state machine.

    bot ──handover──▶ queued ──assign──▶ open ──complete (owner)──▶ completed
     │                  ▲  │               │ ▲                          │
     └──assign──────────┼──┼──────────────▶│ └──reopen (agent)──────────┘
                        │  └─miss─┐        │ end (now or countdown, visitor, agent)
          return_to_queue (open)  ▼        ▼
                                ended ◀────┘ ──complete (owner)──▶ completed
                                  └──reopen (agent)──▶ open (owner kept) or queued

- "live" states are queued, bot and open: a chat leaves them exactly once per live period,
  which is when chat_ended is published (also for send-and-complete and auto-complete).
- ended: the conversation is over (agent, visitor, countdown, inactivity, missed);
  completed: the assigned agent has closed the case. Nothing reopens a chat by itself:
  a customer message to a completed chat is added to it and shown to the agent, who
  reopens it by hand (ReopenChat) or by replying; an ended chat takes no new customer
  messages. Inactivity completes open and ended chats.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaiwa_common.errors import FailedPrecondition, InvalidArgument

QUEUED, BOT, OPEN, ENDED, COMPLETED = "queued", "bot", "open", "ended", "completed"
LIVE = frozenset({QUEUED, BOT, OPEN})

ASSIGN, HANDOVER, RETURN_TO_QUEUE, END, MISS, COMPLETE, REOPEN = (
    "assign",
    "handover",
    "return_to_queue",
    "end",
    "miss",
    "complete",
    "reopen",
)

_TRANSITIONS: dict[tuple[str, str], str] = {
    (BOT, HANDOVER): QUEUED,
    (BOT, ASSIGN): OPEN,
    (QUEUED, ASSIGN): OPEN,
    (OPEN, ASSIGN): OPEN,  # transfer / reassignment
    (OPEN, RETURN_TO_QUEUE): QUEUED,
    (BOT, END): ENDED,
    (QUEUED, END): ENDED,
    (OPEN, END): ENDED,
    (QUEUED, MISS): ENDED,
    (OPEN, COMPLETE): COMPLETED,
    (ENDED, COMPLETE): COMPLETED,
    (COMPLETED, REOPEN): OPEN,  # or QUEUED when nobody owns it (see next_state)
    (ENDED, REOPEN): OPEN,
}

_WHY_NOT = {
    COMPLETE: "only an open or ended chat with an assigned agent can be completed",
    REOPEN: "only a completed or ended chat can be reopened",
    END: "the chat has already ended",
    HANDOVER: "only a bot conversation can be handed over",
    ASSIGN: "the chat is no longer live",
    MISS: "only a queued chat can be missed",
    RETURN_TO_QUEUE: "only an open chat can return to the queue",
}


class IllegalTransition(FailedPrecondition):
    """The operation is not allowed in the chat's state (a FAILED_PRECONDITION for the caller)."""

    def __init__(self, state: str, op: str):
        super().__init__(f"{_WHY_NOT.get(op, op)} (the chat is {state})")
        self.state = state
        self.op = op


def allowed(state: str, op: str) -> bool:
    return (state, op) in _TRANSITIONS


def next_state(state: str, op: str, has_owner: bool = True) -> str:
    """The state after `op`, or IllegalTransition."""
    try:
        target = _TRANSITIONS[(state, op)]
    except KeyError:
        raise IllegalTransition(state, op) from None
    if op == COMPLETE and not has_owner:
        raise IllegalTransition(state, op)
    if op == REOPEN and not has_owner:
        return QUEUED
    return target


@dataclass(frozen=True)
class Countdown:
    """CONV-06: the agent's timed end."""

    CHOICES = (30, 45, 60, 90)

    @staticmethod
    def validate(seconds: int) -> None:
        if seconds not in (0, *Countdown.CHOICES):
            raise InvalidArgument(f"countdown_seconds must be 0 (end now) or one of 30, 45, 60, 90, not {seconds}")
