"""Page views, leaves and visits (VIS-01): what an event must look like, and which visit
it belongs to.

    a visitor's events, in time order:
      no visit yet, or more than the idle timeout after its last event  -> a NEW visit
                                                          (this event is its landing page)
      otherwise, even a little out of order                             -> the CURRENT visit
      more than the idle timeout BEFORE its last event                  -> refused: LATE
                                                          (its visit is over; not reopened)

A visitor tracks only itself; a service (a gateway, a collector) tracks any visitor and
may date its events: at most MAX_DELAY late, never in the future (CLOCK_SKEW allowed).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from kaiwa_common.errors import FailedPrecondition, InvalidArgument, PermissionDenied

from .sources import language_of, screen_of

MAX_URL = 2048
MAX_TITLE = 512
MAX_USER_AGENT = 1024
MAX_LANGUAGE = 200
VISIT_TIMEOUT = timedelta(minutes=30)
MAX_DELAY = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=1)


@dataclass(frozen=True)
class PageViewInput:
    visitor_id: str
    url: str
    title: str
    referrer: str
    user_agent: str
    ip: str  # empty when unknown
    language: str = ""
    screen: str = ""


@dataclass(frozen=True)
class LeaveInput:
    visitor_id: str
    page_view_id: str  # empty: the visitor's last page view


_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f]")


@lru_cache(maxsize=50_000)
def _check_url(value: str, what: str, schemes: tuple[str, ...]) -> str:
    """The URL trimmed, or InvalidArgument (cached: pages and referrers repeat)."""
    value = value.strip()
    if len(value) > MAX_URL:
        raise InvalidArgument(f"{what} is longer than {MAX_URL} characters")
    if _SPACE_OR_CONTROL.search(value):
        raise InvalidArgument(f"{what} {value[:100]!r} contains spaces or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme.lower() not in schemes or not host:
        raise InvalidArgument(f"{what} {value[:100]!r} is not an absolute {' or '.join(schemes)} URL")
    return value


def check_ip(ip: str, what: str = "ip") -> str:
    ip = ip.strip()
    if not ip:
        return ""
    canonical = _canonical_ip(ip)
    if canonical is None:
        raise InvalidArgument(f"{what} {ip[:64]!r} is not an IPv4 or IPv6 address")
    return canonical


@lru_cache(maxsize=50_000)
def _canonical_ip(ip: str) -> str | None:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def validate_page_view(
    *,
    visitor_id: str,
    url: str,
    title: str,
    referrer: str,
    user_agent: str,
    ip: str,
    language: str = "",
    screen_width: int = 0,
    screen_height: int = 0,
) -> PageViewInput:
    if not url.strip():
        raise InvalidArgument("url is required")
    url = _check_url(url, "url", ("http", "https"))
    # Referrers may come from apps too (android-app://...), so any scheme with a host will do.
    referrer = _check_url(referrer, "referrer", ("http", "https", "android-app")) if referrer.strip() else ""
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise InvalidArgument(f"title is longer than {MAX_TITLE} characters")
    user_agent = user_agent.strip()
    if len(user_agent) > MAX_USER_AGENT:
        raise InvalidArgument(f"user_agent is longer than {MAX_USER_AGENT} characters")
    if len(language) > MAX_LANGUAGE:
        raise InvalidArgument(f"language is longer than {MAX_LANGUAGE} characters")
    if screen_width < 0 or screen_height < 0:
        raise InvalidArgument("screen_width and screen_height must not be negative")
    return PageViewInput(
        visitor_id=visitor_id,
        url=url,
        title=title,
        referrer=referrer,
        user_agent=user_agent,
        ip=check_ip(ip),
        language=language_of(language),
        screen=screen_of(screen_width, screen_height),
    )


def check_event_time(occurred_at: datetime | None, now: datetime) -> datetime | None:
    """A service's date for an event, or None (= when received)."""
    if occurred_at is None:
        return None
    if occurred_at > now + CLOCK_SKEW:
        raise InvalidArgument(f"occurred_at {occurred_at.isoformat()} is in the future")
    if occurred_at < now - MAX_DELAY:
        raise InvalidArgument(f"occurred_at {occurred_at.isoformat()} is more than 24 hours ago: too late to track")
    return occurred_at


def starts_new_visit(last_seen_at: datetime | None, now: datetime, timeout: timedelta = VISIT_TIMEOUT) -> bool:
    """A visit ends after `timeout` without a page view; the next view starts a new one."""
    return last_seen_at is None or now - last_seen_at > timeout


def placement(last_seen_at: datetime | None, when: datetime, timeout: timedelta) -> str:
    """ "new", "current" or "late" (see the module's diagram)."""
    if starts_new_visit(last_seen_at, when, timeout):
        return "new"
    if when < last_seen_at - timeout:
        return "late"
    return "current"


def refuse_late(when: datetime) -> FailedPrecondition:
    return FailedPrecondition(
        f"event of {when.isoformat()} is older than the visitor's current visit by more than the idle timeout"
    )


def check_may_track(role: str, sub: str, visitor_id: str) -> None:
    """A visitor tracks only itself; a service (e.g. the gateway) may track any visitor."""
    if role == "visitor" and sub.lower() != visitor_id.lower():
        raise PermissionDenied("a visitor may only track its own page views (visitor_id must be the token's subject)")
