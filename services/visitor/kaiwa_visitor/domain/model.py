"""What the visitor service keeps: widget keys, visitor sessions, visitors, visits, page
views, blocks, proactive triggers and the tenant's tracking settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class WidgetKey:
    key: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Client:
    """What the user agent says (VIS-02)."""

    user_agent: str = ""
    browser: str = ""
    browser_version: str = ""
    os: str = ""
    os_version: str = ""
    platform: str = ""  # desktop, mobile, tablet, bot, other
    device: str = ""


@dataclass(frozen=True)
class Location:
    """Where the address is, per the GeoIP database (VIS-02)."""

    country_code: str = ""
    country: str = ""
    region: str = ""
    city: str = ""
    postcode: str = ""
    latitude: float | None = None
    longitude: float | None = None
    time_zone: str = ""


@dataclass(frozen=True)
class Campaign:
    source: str = ""
    medium: str = ""
    term: str = ""
    content: str = ""
    name: str = ""


@dataclass(frozen=True)
class VisitContext:
    """A visit's enrichment, taken from its first event."""

    client: Client = field(default_factory=Client)
    location: Location | None = None
    referrer: str = ""
    search_engine: str = ""
    search_keywords: str = ""
    campaign: Campaign = field(default_factory=Campaign)
    ip: str = ""
    language: str = ""
    screen: str = ""


@dataclass(frozen=True)
class PageView:
    id: str
    visitor_id: str
    visit_id: str
    url: str
    title: str
    referrer: str
    user_agent: str
    ip: str
    landing: bool
    viewed_at: datetime
    time_on_page: int = 0  # seconds, 0 while unknown
    left_at: datetime | None = None


@dataclass(frozen=True)
class Action:
    kind: str  # access, navigate, chat
    title: str
    url: str
    at: datetime
    time_spent: int = 0
    chat_id: str = ""


@dataclass(frozen=True)
class CrmLink:
    record_id: str
    record_type: str  # lead, contact
    owner: str


@dataclass(frozen=True)
class VisitorSummary:
    id: str
    name: str
    email: str
    lead_score: int
    visitor_type: str
    crm: CrmLink | None
    visit_count: int


@dataclass(frozen=True)
class Visit:
    id: str
    visitor_id: str
    started_at: datetime
    last_seen_at: datetime
    page_view_count: int
    landing_url: str
    landing_title: str
    current_url: str
    current_title: str
    context: VisitContext
    chatted: bool
    left_at: datetime | None = None
    visitor: VisitorSummary | None = None
    priority: int | None = None
    actions: list[Action] = field(default_factory=list)

    @property
    def time_spent(self) -> int:
        end = self.left_at if self.left_at and self.left_at > self.last_seen_at else self.last_seen_at
        return int((end - self.started_at).total_seconds())


@dataclass(frozen=True)
class Visitor:
    id: str
    name: str
    email: str
    visit_count: int
    page_view_count: int
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    recent_page_views: list[PageView] = field(default_factory=list)
    phone: str = ""
    lead_score: int = 0
    visitor_type: str = "unknown"
    crm: CrmLink | None = None
    chat_count: int = 0
    time_spent: int = 0
    identified_at: datetime | None = None
    current_visit: Visit | None = None


@dataclass(frozen=True)
class RevokedSession:
    visitor_id: str
    revoked_at: datetime


@dataclass(frozen=True)
class Block:
    id: str
    kind: str  # ip, thread
    network: str
    channel: str
    thread_id: str
    visitor_id: str
    reason: str
    blocked_by: str
    created_at: datetime
    chat_id: str = ""
    unblocked_at: datetime | None = None
    unblocked_by: str = ""


@dataclass(frozen=True)
class TrackingSettings:
    visit_timeout_minutes: int = 30
    time_zone: str = "UTC"
    top_lead_score: int = 50
