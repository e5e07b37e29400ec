"""The lead score (VIS-03): how promising a visitor is, 0..100.

    score = min(100,
              5 per visit (at most 50)
            + 1 per page view (at most 50)
            + 1 per 2 minutes on the site (at most 30)
            + 20 if they ever chatted
            + 15 if they said who they are (an e-mail)
            + CRM type: customer 40, deal 30, contact 20, lead 10, unknown 0)

Engagement alone tops out at 50 + 50 + 30 + 20; a known customer needs little of it.
"Top" visits are those of visitors scoring at least the tenant's top_lead_score (50 by
default): e.g. an identified lead with 3 visits and 10 pages (15 + 10 + 15 + 10 = 50), or
any visitor who browsed a lot and chatted.
"""

from __future__ import annotations

CRM_POINTS = {"customer": 40, "deal": 30, "contact": 20, "lead": 10}
VISITOR_TYPES = ("customer", "deal", "lead", "contact", "unknown")


def lead_score(visits: int, page_views: int, seconds_on_site: int, chats: int, identified: bool, visitor_type: str) -> int:
    score = (
        min(visits * 5, 50)
        + min(page_views, 50)
        + min(max(seconds_on_site, 0) // 120, 30)
        + (20 if chats > 0 else 0)
        + (15 if identified else 0)
        + CRM_POINTS.get(visitor_type, 0)
    )
    return min(score, 100)
