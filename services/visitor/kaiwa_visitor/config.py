"""Settings of the visitor service, from environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from kaiwa_common.config import env_float


@dataclass(frozen=True)
class VisitorSettings:
    # Lifetime of a visitor token: short, the widget asks for a new one when it expires.
    token_ttl: int = field(default_factory=lambda: int(env_float("KAIWA_VISITOR_TOKEN_TTL", 3600)))
    # A visitor secret (the widget's refresh credential) unused for this long is refused:
    # the widget then starts a new visitor. Every refresh starts the clock again (PLAT-02).
    secret_idle_lifetime: timedelta = field(
        default_factory=lambda: timedelta(seconds=env_float("KAIWA_VISITOR_SECRET_IDLE_TTL", 180 * 86400))
    )
    # A visit ends after this long without a page view (VIS-01).
    visit_timeout: timedelta = field(default_factory=lambda: timedelta(seconds=env_float("KAIWA_VISIT_TIMEOUT", 1800)))
    recent_page_views: int = 20
