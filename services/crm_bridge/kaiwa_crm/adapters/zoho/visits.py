"""CRM-08 visits in Zoho CRM: one record per visit in the `Visits` module, keyed by
Visit_Id (upsert), pointing at the lead or contact; pages are appended once each."""

from __future__ import annotations

import json
from datetime import datetime

from ...domain.activity import Visit, VisitPage
from ...domain.model import Record
from .client import ZohoClient, records_of, written

MODULE = "Visits"


async def record_visit(client: ZohoClient, record: Record, page: VisitPage) -> None:
    existing = records_of(
        await client.call("GET", f"/{MODULE}/search", params={"criteria": f"(Visit_Id:equals:{page.visit_id})"})
    )
    pages = json.loads(existing[0].get("Kaiwa_Pages") or "[]") if existing else []
    if any(p.get("id") == page.page_view_id for p in pages):
        return
    pages = sorted(
        [*pages, {"id": page.page_view_id, "url": page.url, "title": page.title, "at": page.viewed_at.isoformat()}],
        key=lambda p: p["at"],
    )
    first, last = datetime.fromisoformat(pages[0]["at"]), datetime.fromisoformat(pages[-1]["at"])
    body = {
        "Name": f"{record.name or record.email} {page.visit_id}"[:120],
        "Visit_Id": page.visit_id,
        "Kaiwa_Record": record.id,
        "Visitor_Email": record.email,
        "IP_Address": page.ip,
        "Referrer": page.referrer,
        "User_Agent": page.user_agent,
        "Attended_By": page.attended_by,
        "Visitor_Type": page.visitor_type,
        "Search_Engine": page.search_engine,
        "Search_Keywords": page.search_keywords,
        "Visited_Pages": "\n".join(p["url"] for p in pages),
        "Time_Spent_in_Minutes": round((last - first).total_seconds() / 60, 1),
        "Visited_Time": first.isoformat(timespec="seconds"),
        "Kaiwa_Pages": json.dumps(pages),
    }
    upsert = {"data": [body], "duplicate_check_fields": ["Visit_Id"]}
    written(await client.call("POST", f"/{MODULE}/upsert", json=upsert, idempotent=True))


async def list_visits(client: ZohoClient, record: Record) -> list[Visit]:
    answer = await client.call("GET", f"/{MODULE}/search", params={"criteria": f"(Kaiwa_Record:equals:{record.id})"})
    visits = []
    for data in records_of(answer):
        pages = json.loads(data.get("Kaiwa_Pages") or "[]")
        visits.append(
            Visit(
                visit_id=str(data.get("Visit_Id", "")),
                ip=str(data.get("IP_Address") or ""),
                pages=[p["url"] for p in pages],
                page_titles=[p["title"] for p in pages],
                referrer=str(data.get("Referrer") or ""),
                user_agent=str(data.get("User_Agent") or ""),
                attended_by=str(data.get("Attended_By") or ""),
                visitor_type=str(data.get("Visitor_Type") or ""),
                search_engine=str(data.get("Search_Engine") or ""),
                search_keywords=str(data.get("Search_Keywords") or ""),
                first_at=datetime.fromisoformat(pages[0]["at"]) if pages else None,
                last_at=datetime.fromisoformat(pages[-1]["at"]) if pages else None,
            )
        )
    return visits
