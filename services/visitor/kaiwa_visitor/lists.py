"""VIS-04 and ROUT-04: visit lists (all, today, top, today's top, lead visits, contact
visits) ordered by the tenant's visitor-prioritisation rules, and VIS-07's visitors on
the site now.

    "today": visits started since midnight in the tenant's time zone (TrackingSettings)
    "top":   visits of visitors whose lead score is at least the tenant's top_lead_score
             (50 by default; the score: domain/scoring.py)
    order:   the first priority rule (routing's, without a department) the visitor's CRM
             facts match, by its order; then lead score, highest first; then newest

Priorities are computed when asked for: visitors whose stored priority was computed
under other rules (a digest of the rules) get it again before the page is read.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import InvalidArgument
from kaiwa_common.paging import PageLimits, decode_time_token, encode_token

from . import store
from .context import Deps
from .domain.model import Visit
from .domain.priority import priority_of, rules_version
from .store.lists import UNRANKED

PAGES = PageLimits(default=50, limit=500)
LISTS = {
    "all": (False, False, ""),
    "today": (True, False, ""),
    "top": (False, True, ""),
    "today_top": (True, True, ""),
    "leads": (False, False, "lead"),
    "contacts": (False, False, "contact"),
}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def start_of_today(now: datetime, time_zone: str) -> datetime:
    local = now.astimezone(ZoneInfo(time_zone))
    return datetime.combine(local.date(), time(0), tzinfo=ZoneInfo(time_zone)).astimezone(timezone.utc)


def _position(token: str) -> tuple[int, int, datetime, uuid.UUID] | None:
    decoded = decode_time_token(token)
    if decoded is None:
        return None
    started, ident = decoded
    try:
        priority, neg_score, visit_id = ident.split("|")
        return int(priority), int(neg_score), started, uuid.UUID(visit_id)
    except ValueError:
        raise InvalidArgument("page_token is not valid (pass back a next_page_token unchanged)", field="page_token") from None


async def refresh_priorities(deps: Deps, tenant: str) -> None:
    rules = await deps.peers.priority_rules(tenant)
    version = rules_version(rules)
    async with unit_of_work(deps.ctx.pool) as conn:
        stale = await store.priorities_to_compute(conn, tenant, version)
        if stale:
            await store.set_priorities(conn, tenant, version, [(r["id"], priority_of(rules, r["crm_facts"])) for r in stale])


async def list_visits(deps: Deps, tenant: str, which: str, page_size: int, page_token: str) -> tuple[list[Visit], str]:
    today, top, record_type = LISTS[which]
    size, after = PAGES.size(page_size), _position(page_token)
    await refresh_priorities(deps, tenant)
    async with deps.ctx.pool.acquire() as conn:
        settings = await store.get_settings(conn, tenant, deps.settings)
        since = start_of_today(datetime.now(timezone.utc), settings.time_zone) if today else EPOCH
        min_score = settings.top_lead_score if top else 0
        rows = await store.list_visits(conn, tenant, since, min_score, record_type, after, size + 1)
    visits = [store.visit_of(r, with_visitor=True) for r in rows[:size]]
    token = ""
    if len(rows) > size:
        last = rows[size - 1]
        priority = last["s_priority"] if last["s_priority"] is not None else UNRANKED
        token = encode_token((last["started_at"], f"{priority}|{-last['s_score']}|{last['id']}"))
    return visits, token


async def online_visitors(deps: Deps, tenant: str, window: int, page_size: int) -> list[Visit]:
    if not 0 <= window <= 3600:
        raise InvalidArgument("window_seconds must be between 0 and 3600", field="window_seconds")
    async with deps.ctx.pool.acquire() as conn:
        rows = await store.online(conn, tenant, window or 300, (), PAGES.size(page_size))
    return [store.visit_of(r, with_visitor=True) for r in rows]
