"""Settings of the visitor service, from environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class VisitorSettings:
    # Lifetime of a visitor token: short, the widget asks for a new one when it expires.
    token_ttl: int = field(default_factory=lambda: int(_seconds("KAIWA_VISITOR_TOKEN_TTL", 3600)))
    # A visit ends after this long without a page view (VIS-01).
    visit_timeout: timedelta = field(
        default_factory=lambda: timedelta(seconds=_seconds("KAIWA_VISIT_TIMEOUT", 1800)))
    recent_page_views: int = 20
