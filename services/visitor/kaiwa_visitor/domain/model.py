"""What the visitor service keeps: widget keys, visitor sessions, visitors and their page views."""

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


@dataclass(frozen=True)
class RevokedSession:
    visitor_id: str
    revoked_at: datetime
