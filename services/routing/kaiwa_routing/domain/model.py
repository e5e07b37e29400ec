"""Names, defaults and validation of routing's entities."""

from __future__ import annotations

import re
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

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(value: str, what: str = "email") -> str:
    email = (value or "").strip().lower()
    if not email:
        raise InvalidArgument(f"{what} is required")
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidArgument(f"{what} {value!r} is not a valid e-mail address")
    return email


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


@dataclass(frozen=True)
class Candidate:
    """An online agent of a department, as the strategies see them."""

    agent_id: str
    email: str
    active_chats: int
    max_chats: int
    free_slots: int                    # capacity left for new offers (max - active - open offers)
    last_assigned_at: datetime | None  # for "longest idle"
    last_offered_at: datetime | None   # for round robin
