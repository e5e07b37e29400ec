"""DESK-01: tickets, numbered as the seed numbers them (003, "#support conasreq <p><s><c>"):

    priority   0 none   1 low      2 medium     3 high
    status     0 open   1 on hold  2 escalated  3 closed
    category   0 none   1 question 2 problem    3 feature  4 other

Reopen is status 0, close is status 3. A search query is an e-mail, a ticket number
("6165" or "#6165"), a ticket id (UUID), or else part of a name.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from kaiwa_common.errors import InvalidArgument

PRIORITIES = ("none", "low", "medium", "high")
STATUSES = ("open", "on_hold", "escalated", "closed")
CATEGORIES = ("none", "question", "problem", "feature", "other")
OPEN, CLOSED = 0, 3
MAX_SUBJECT = 255
MAX_QUERY = 200

_NUMBER = re.compile(r"^#?(\d{1,18})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class NewTicket:
    subject: str
    description: str
    email: str
    name: str
    priority: int
    status: int
    category: int
    chat_id: str
    message_seq: int
    created_by: str


@dataclass(frozen=True)
class Ticket:
    id: str
    number: int
    subject: str
    description: str
    email: str
    name: str
    priority: int
    status: int
    category: int
    chat_id: str
    message_seq: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    chat_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Query:
    kind: str  # email, number, id, name
    value: str


def check_numbers(priority: int, status: int, category: int) -> tuple[int, int, int]:
    _within("priority", priority, PRIORITIES)
    _within("status", status, STATUSES)
    _within("category", category, CATEGORIES)
    return priority, status, category


def check_status(status: int) -> int:
    _within("status", status, STATUSES)
    return status


def parse_query(raw: str) -> Query:
    q = (raw or "").strip()
    if not q:
        raise InvalidArgument("query is required: an e-mail, a ticket number or id, or a name", field="query")
    if len(q) > MAX_QUERY:
        raise InvalidArgument(f"query is longer than {MAX_QUERY} characters", field="query")
    if _EMAIL.match(q):
        return Query("email", q.lower())
    number = _NUMBER.match(q)
    if number:
        return Query("number", number.group(1))
    try:
        return Query("id", str(uuid.UUID(q)))
    except ValueError:
        return Query("name", q)


def ticket_ref(raw: str, what: str = "ticket") -> Query:
    """A ticket id or number (what AssociateChat, SetTicketStatus and GetTicket take)."""
    q = (raw or "").strip()
    if not q:
        raise InvalidArgument(f"{what} is required: a ticket id or number", field=what)
    number = _NUMBER.match(q)
    if number:
        return Query("number", number.group(1))
    try:
        return Query("id", str(uuid.UUID(q)))
    except ValueError:
        raise InvalidArgument(f"{what} {q[:40]!r} is not a ticket id or number", field=what) from None


def subject_from(text: str) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= 100 else line[:99] + "…"


def _within(name: str, value: int, names: tuple[str, ...]) -> None:
    if not 0 <= value < len(names):
        choices = ", ".join(f"{i} {n}" for i, n in enumerate(names))
        raise InvalidArgument(f"{name} must be one of {choices}; not {value}", field=name)
