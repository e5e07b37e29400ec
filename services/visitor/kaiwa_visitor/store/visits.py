"""Reading visitors, visits, their page views and actions (VIS-01, VIS-03)."""

from __future__ import annotations

import uuid

import asyncpg

from ..domain.model import Action, Campaign, Client, CrmLink, Location, PageView, Visit, VisitContext, Visitor, VisitorSummary


def context_document(c: VisitContext) -> dict:
    """A visit's enrichment as stored (visits.context)."""
    doc = {
        "client": c.client.__dict__,
        "referrer": c.referrer,
        "search_engine": c.search_engine,
        "search_keywords": c.search_keywords,
        "campaign": c.campaign.__dict__,
        "language": c.language,
        "screen": c.screen,
    }
    if c.location is not None:
        doc["location"] = c.location.__dict__
    return doc


def context_from(doc: dict, ip) -> VisitContext:
    location = doc.get("location")
    return VisitContext(
        client=Client(**doc.get("client", {})),
        location=Location(**location) if location else None,
        referrer=doc.get("referrer", ""),
        search_engine=doc.get("search_engine", ""),
        search_keywords=doc.get("search_keywords", ""),
        campaign=Campaign(**doc.get("campaign", {})),
        ip=str(ip) if ip is not None else "",
        language=doc.get("language", ""),
        screen=doc.get("screen", ""),
    )


def crm_link(row) -> CrmLink | None:
    if not row["crm_record_id"]:
        return None
    return CrmLink(row["crm_record_id"], row["crm_record_type"], row["crm_owner"])


SUMMARY = (
    "s.id AS s_id, s.name AS s_name, s.email AS s_email, s.lead_score AS s_score, s.visitor_type AS s_type, "
    "s.crm_record_id, s.crm_record_type, s.crm_owner, s.visit_count AS s_visits, s.priority AS s_priority"
)


def visit_of(row, with_visitor: bool = False) -> Visit:
    visitor = None
    if with_visitor:
        visitor = VisitorSummary(
            str(row["s_id"]), row["s_name"], row["s_email"], row["s_score"], row["s_type"], crm_link(row), row["s_visits"]
        )
    return Visit(
        id=str(row["id"]),
        visitor_id=str(row["visitor_id"]),
        started_at=row["started_at"],
        last_seen_at=row["last_seen_at"],
        page_view_count=row["page_view_count"],
        landing_url=row["landing_url"],
        landing_title=row["landing_title"],
        current_url=row["current_url"],
        current_title=row["current_title"],
        context=context_from(row["context"], row["ip"]),
        chatted=row["chatted"],
        left_at=row["left_at"],
        visitor=visitor,
        priority=row["s_priority"] if with_visitor else None,
    )


def page_view_of(row) -> PageView:
    return PageView(
        id=str(row["id"]),
        visitor_id=str(row["visitor_id"]),
        visit_id=str(row["visit_id"]),
        url=row["url"],
        title=row["title"],
        referrer=row["referrer"],
        user_agent=row["user_agent"],
        ip=str(row["ip"]) if row["ip"] is not None else "",
        landing=row["landing"],
        viewed_at=row["viewed_at"],
        time_on_page=int(row["time_on_page"] or 0),
        left_at=row["left_at"],
    )


# Time on page: until the next page view of the visit, or the leave beacon.
PAGE_VIEWS = """
SELECT p.*, extract(epoch FROM coalesce(p.left_at, (
    SELECT min(q.viewed_at) FROM page_views q
    WHERE q.tenant = p.tenant AND q.visit_id = p.visit_id AND (q.viewed_at, q.id) > (p.viewed_at, p.id)
)) - p.viewed_at)::bigint AS time_on_page
FROM page_views p WHERE p.tenant = $1 AND {where} ORDER BY p.viewed_at {order}, p.id {order} LIMIT $3
"""


async def resolve(conn: asyncpg.Connection, tenant: str, visitor_id: str) -> uuid.UUID | None:
    """The visitor an id stands for (the one it was merged into, if so); None if unknown."""
    row = await conn.fetchrow("SELECT id, merged_into FROM visitors WHERE tenant = $1 AND id = $2", tenant, uuid.UUID(visitor_id))
    return None if row is None else (row["merged_into"] or row["id"])


async def get_visitor(conn: asyncpg.Connection, tenant: str, visitor_id: str, recent: int) -> Visitor | None:
    vid = await resolve(conn, tenant, visitor_id)
    if vid is None:
        return None
    row = await conn.fetchrow("SELECT * FROM visitors WHERE tenant = $1 AND id = $2", tenant, vid)
    views = await conn.fetch(PAGE_VIEWS.format(where="p.visitor_id = $2", order="DESC"), tenant, vid, recent)
    current = None
    if row["current_visit_id"] is not None:
        current = await get_visit(conn, tenant, row["current_visit_id"], actions=False)
    return Visitor(
        id=str(row["id"]),
        name=row["name"],
        email=row["email"],
        visit_count=row["visit_count"],
        page_view_count=row["page_view_count"],
        first_seen_at=row["first_seen_at"],
        last_seen_at=row["last_seen_at"],
        recent_page_views=[page_view_of(v) for v in views],
        phone=row["phone"],
        lead_score=row["lead_score"],
        visitor_type=row["visitor_type"],
        crm=crm_link(row),
        chat_count=row["chat_count"],
        time_spent=row["time_spent_seconds"],
        identified_at=row["identified_at"],
        current_visit=current,
    )


async def get_visit(conn: asyncpg.Connection, tenant: str, visit_id: uuid.UUID, actions: bool = True) -> Visit | None:
    row = await conn.fetchrow("SELECT * FROM visits WHERE tenant = $1 AND id = $2", tenant, visit_id)
    if row is None:
        return None
    visit = visit_of(row)
    if not actions:
        return visit
    views = await conn.fetch(PAGE_VIEWS.format(where="p.visit_id = $2", order="ASC"), tenant, visit_id, 10_000)
    chats = await conn.fetch(
        "SELECT chat_id, url, title, started_at FROM visit_chats WHERE tenant = $1 AND visit_id = $2", tenant, visit_id
    )
    steps = [
        Action("access" if v["landing"] else "navigate", v["title"], v["url"], v["viewed_at"], int(v["time_on_page"] or 0))
        for v in views
    ]
    steps += [Action("chat", c["title"], c["url"], c["started_at"], chat_id=c["chat_id"]) for c in chats]
    steps.sort(key=lambda a: a.at)
    return Visit(**{**visit.__dict__, "actions": steps})


async def page_view(conn: asyncpg.Connection, tenant: str, page_view_id: uuid.UUID) -> PageView | None:
    row = await conn.fetchrow(PAGE_VIEWS.format(where="p.id = $2", order="ASC"), tenant, page_view_id, 1)
    return page_view_of(row) if row else None
