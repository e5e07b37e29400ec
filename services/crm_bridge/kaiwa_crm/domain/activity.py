"""What Kaiwa writes next to a record: notes, tasks, the chat activity, visits, new
records and conversions. Values only; every write carries a natural key so that doing it
twice (an event replayed, a retried call) leaves one copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

# Note kinds (CRM-06).
CHAT_NOTE, MISSED_NOTE, MANUAL_NOTE, SALES_NOTE = "chat", "missed_chat", "manual", "notify_sales"


@dataclass(frozen=True)
class NewNote:
    key: str
    kind: str
    title: str
    text: str
    author: str
    chat_id: str = ""
    notify: str = ""  # notify_sales: the owner's e-mail


@dataclass(frozen=True)
class Note:
    id: str
    record_id: str
    kind: str
    title: str
    text: str
    author: str
    notify: str
    created_at: datetime | None


@dataclass(frozen=True)
class NewTask:
    key: str
    subject: str
    due_date: date
    owner: str = ""


@dataclass(frozen=True)
class Task:
    id: str
    record_id: str
    subject: str
    due_date: date | None
    owner: str
    status: str


@dataclass(frozen=True)
class ChatActivity:
    """CRM-07: a chat in a record's feed (and its open deals'): start, agent, end, link."""

    chat_id: str
    subject: str
    agent: str
    visitor: str
    link: str
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True)
class Activity:
    id: str
    kind: str  # chat, task
    chat_id: str
    subject: str
    agent: str
    visitor: str
    link: str
    started_at: datetime | None
    ended_at: datetime | None
    due_date: date | None = None


@dataclass(frozen=True)
class VisitPage:
    """CRM-08: one page of a visit, recorded on the visitor's record."""

    visit_id: str
    page_view_id: str
    url: str
    title: str
    referrer: str
    ip: str
    user_agent: str
    viewed_at: datetime
    attended_by: str = ""
    visitor_type: str = ""
    search_engine: str = ""
    search_keywords: str = ""


@dataclass(frozen=True)
class Visit:
    visit_id: str
    ip: str
    pages: list[str]
    page_titles: list[str]
    referrer: str
    user_agent: str
    attended_by: str
    visitor_type: str
    search_engine: str
    search_keywords: str
    first_at: datetime | None
    last_at: datetime | None

    @property
    def time_spent_minutes(self) -> float:
        if not self.first_at or not self.last_at:
            return 0.0
        return round((self.last_at - self.first_at).total_seconds() / 60, 1)


@dataclass(frozen=True)
class NewRecord:
    """A record Kaiwa adds (CRM-03): by e-mail, so adding twice finds the first."""

    type: str
    email: str
    name: str
    owner: str = ""
    source: str = ""
    label: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    account: str = ""


@dataclass(frozen=True)
class NewDeal:
    key: str
    name: str
    stage: str
    amount: float
    closing_date: date | None


@dataclass(frozen=True)
class Conversion:
    """CRM-09: a lead becomes a contact (of an account), with a deal or not."""

    account: str
    deal: NewDeal | None
