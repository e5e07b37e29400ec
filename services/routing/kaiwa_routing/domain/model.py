"""Names, defaults and validation of routing's entities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kaiwa_common.errors import InvalidArgument

AVAILABILITIES = ("online", "away", "offline")
STRATEGIES = ("ring_all", "round_robin", "least_loaded", "crm_owner")

# Chat states as routing sees them.
BOT, QUEUED, ASSIGNED, MISSED, ENDED = "bot", "queued", "assigned", "missed", "ended"

DEFAULT_ACCEPT_TIMEOUT = 30.0
DEFAULT_MAX_WAIT = 300.0
MAX_CHATS_RANGE = (1, 100)

# Timers (rows with a deadline, kaiwa_common.timers), keyed by chat id or transfer id.
OFFER_TIMEOUT = "offer_timeout"  # an offer not answered in the department's accept timeout
MAX_WAIT = "max_wait"  # a chat nobody took in the department's maximum wait: missed
TRANSFER_TIMEOUT = "transfer_timeout"  # a transfer not answered in the accept timeout: declined

# A chat to be queued into a department routing does not know: missed at once
# (conversation_events.py; README "Unknown departments").
UNKNOWN_DEPARTMENT = "unknown_department"


def department_settings(name: str, accept_timeout: float, max_wait: float) -> tuple[str, float, float]:
    name = (name or "").strip()
    if not name:
        raise InvalidArgument("department name is required")
    if len(name) > 100:
        raise InvalidArgument("department name is longer than 100 characters")
    accept_timeout = accept_timeout or DEFAULT_ACCEPT_TIMEOUT
    max_wait = max_wait or DEFAULT_MAX_WAIT
    if not 0.1 <= accept_timeout <= 3600:
        raise InvalidArgument(f"accept_timeout_seconds must be between 0.1 and 3600, got {accept_timeout}")
    if not 0.1 <= max_wait <= 86400:
        raise InvalidArgument(f"max_wait_seconds must be between 0.1 and 86400, got {max_wait}")
    return name, accept_timeout, max_wait


def agent_settings(name: str, max_chats: int) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidArgument("agent name is required")
    if len(name) > 200:
        raise InvalidArgument("agent name is longer than 200 characters")
    low, high = MAX_CHATS_RANGE
    if not low <= max_chats <= high:
        raise InvalidArgument(f"max_chats must be between {low} and {high}, got {max_chats}")
    return name


def note_text(note: str) -> str:
    """A transfer's or an invitation's note: trimmed, at most 1000 characters."""
    note = (note or "").strip()
    if len(note) > 1000:
        raise InvalidArgument("note is longer than 1000 characters")
    return note


@dataclass(frozen=True)
class Candidate:
    """An online agent of a department, as the strategies see them."""

    agent_id: str
    email: str
    active_chats: int
    max_chats: int
    free_slots: int  # capacity left for new offers (max - active - open offers)
    last_assigned_at: datetime | None  # for "longest idle"
    last_offered_at: datetime | None  # for round robin
