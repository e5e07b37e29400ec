"""Page views and visits (VIS-01): what a page view must look like, when a visit ends."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from kaiwa_common.errors import InvalidArgument, PermissionDenied

MAX_URL = 2048
MAX_TITLE = 512
MAX_USER_AGENT = 1024
VISIT_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class PageViewInput:
    visitor_id: str
    url: str
    title: str
    referrer: str
    user_agent: str
    ip: str  # empty when unknown


def _check_url(value: str, what: str, schemes: tuple[str, ...]) -> str:
    value = value.strip()
    if len(value) > MAX_URL:
        raise InvalidArgument(f"{what} is longer than {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 for c in value):
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


def validate_page_view(*, visitor_id: str, url: str, title: str, referrer: str, user_agent: str, ip: str) -> PageViewInput:
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
    ip = ip.strip()
    if ip:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise InvalidArgument(f"ip {ip[:64]!r} is not an IPv4 or IPv6 address") from None
    return PageViewInput(visitor_id=visitor_id, url=url, title=title, referrer=referrer, user_agent=user_agent, ip=ip)


def starts_new_visit(last_seen_at: datetime | None, now: datetime, timeout: timedelta = VISIT_TIMEOUT) -> bool:
    """A visit ends after `timeout` without a page view; the next view starts a new one."""
    return last_seen_at is None or now - last_seen_at > timeout


def check_may_track(role: str, sub: str, visitor_id: str) -> None:
    """A visitor tracks only itself; a service (e.g. the gateway) may track any visitor."""
    if role == "visitor" and sub.lower() != visitor_id.lower():
        raise PermissionDenied("a visitor may only track its own page views (visitor_id must be the token's subject)")
