"""One batch of tracked events turned into one write (VIS-01, VIS-02, VIS-06, VIS-07).

The page views of a batch are taken in time order, visitor by visitor, and placed into
visits (domain/tracking.py: new, current, or refused as late); a new visit is enriched
from its first event; counts, time on site and the lead score of each visitor are summed
in memory and written once; each page view adds its `page_viewed` event; a lead's or
contact's new visit wakes the arrival streams; matching proactive triggers get a timer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kaiwa.events.v1.envelope_pb2 import Event
from kaiwa.events.v1.visitor_pb2 import PageViewed

from kaiwa_common.errors import DomainError
from kaiwa_common.outbox import Outbox
from kaiwa_common.protobuf import timestamp

from .domain.model import PageView
from .domain.scoring import lead_score
from .domain.sources import search_terms
from .domain.tracking import PageViewInput, placement, refuse_late
from .domain.triggers import Trigger
from .enrichment import Enricher
from .store.tracking import BatchWrite
from .store.visits import context_document
from .wakeups import ARRIVALS, arrival_payload

KNOWN_RECORDS = ("lead", "contact")


@dataclass
class _Visitor:
    """A visitor's running totals while its events are placed."""

    row: dict
    last_seen: datetime | None
    visit_id: uuid.UUID | None
    first_seen: datetime | None = None
    visits: int = 0
    views: int = 0
    spent: int = 0
    ip: str | None = None


@dataclass
class Scheduled:
    trigger: Trigger
    visitor_id: str
    visit_id: str
    page_view_id: str
    url: str
    due_at: datetime


@dataclass
class Plan:
    write: BatchWrite = field(default_factory=BatchWrite)
    views: dict[int, PageView] = field(default_factory=dict)  # by event index
    errors: dict[int, DomainError] = field(default_factory=dict)
    timers: list[Scheduled] = field(default_factory=list)


def plan_batch(
    tenant: str,
    views: list[tuple[int, PageViewInput, datetime | None]],
    states: dict,
    timeout: timedelta,
    enricher: Enricher,
    outbox: Outbox,
    triggers: list[Trigger],
) -> Plan:
    plan = Plan()
    now = next(iter(states.values()))["now"] if states else None
    envelopes = Envelopes(outbox, tenant)
    people: dict[uuid.UUID, _Visitor] = {}
    new_visits: dict[uuid.UUID, list] = {}
    old_visits: dict[uuid.UUID, list] = {}
    row_of: dict[uuid.UUID, uuid.UUID] = {}  # visit -> its visitor
    timed = sorted(((when or now, index, view) for index, view, when in views), key=lambda t: (t[0], t[1]))
    for when, index, view in timed:
        row = states[view.visitor_id]
        if row["merged_into"] is not None:
            row = states[str(row["merged_into"])]
        who = people.get(row["id"])
        if who is None:
            who = people[row["id"]] = _Visitor(dict(row), row["last_seen_at"], row["current_visit_id"])
        where = placement(who.last_seen, when, timeout)
        if where == "late":
            plan.errors[index] = refuse_late(when)
            continue
        page_id = uuid.uuid4()
        landing = where == "new"
        if landing:
            who.visit_id, who.visits = uuid.uuid4(), who.visits + 1
            context = enricher.context(view)
            new_visits[who.visit_id] = [
                who.visit_id, row["id"], when, when, 0, view.url, view.title, view.url, view.title, page_id,
                view.ip or None, context_document(context),
            ]  # fmt: skip
            if row["crm_record_type"] in KNOWN_RECORDS:
                plan.write.notify.append((ARRIVALS, arrival_payload(tenant, str(who.visit_id))))
        elif who.last_seen is not None and when > who.last_seen:
            who.spent += int((when - who.last_seen).total_seconds())
        visit = new_visits.get(who.visit_id)
        if visit is not None:
            visit[4] += 1
            if when >= visit[3]:
                visit[3], visit[7], visit[8], visit[9] = when, view.url, view.title, page_id
        else:
            row_of[who.visit_id] = row["id"]
            old = old_visits.setdefault(who.visit_id, [who.visit_id, when, 0, view.url, view.title, page_id])
            old[2] += 1
            if when >= old[1]:
                old[1], old[3], old[4], old[5] = when, view.url, view.title, page_id
        who.last_seen = max(who.last_seen or when, when)
        who.first_seen = who.first_seen or when
        who.views += 1
        who.ip = view.ip or who.ip
        plan.write.page_views.append(
            (
                page_id,
                row["id"],
                who.visit_id,
                view.url,
                view.title,
                view.referrer,
                view.user_agent,
                view.ip or None,
                landing,
                when,
            )
        )
        page = PageView(
            str(page_id), str(row["id"]), str(who.visit_id), view.url, view.title, view.referrer, view.user_agent,
            view.ip, landing, when,
        )  # fmt: skip
        plan.views[index] = page
        plan.write.outbox.append(envelopes.page_viewed(page))
        for trigger in triggers:
            if trigger.applies(view.url, landing, row["crm_facts"]):
                due = when + timedelta(seconds=trigger.delay_seconds)
                plan.timers.append(Scheduled(trigger, str(row["id"]), str(who.visit_id), str(page_id), view.url, due))
    plan.write.visits = [tuple(v) for v in new_visits.values()]
    plan.write.visits += [(v[0], row_of[v[0]], v[1], v[1], v[2], "", "", v[3], v[4], v[5], None, {}) for v in old_visits.values()]
    plan.write.visitors = [_visitor_update(who) for who in people.values()]
    if plan.write.outbox:
        plan.write.notify.append((outbox.channel, ""))
    return plan


class Envelopes:
    """page_viewed envelopes of one batch. The envelope's common part (type, tenant,
    source, time, trace context) is made once by the outbox (Outbox.prepare) and
    serialized once; each event appends its id and payload: protobuf parses
    concatenated encodings as one message, so the bytes are those of the whole Event."""

    def __init__(self, outbox: Outbox, tenant: str):
        base = outbox.prepare(tenant, PageViewed())
        base.event.ClearField("id")
        base.event.ClearField("payload")
        self.subject = base.subject
        self.base = base.event.SerializeToString()
        self._stamps: dict = {}  # the events of a batch share a few distinct times

    def _stamp(self, when):
        stamp = self._stamps.get(when)
        if stamp is None:
            stamp = self._stamps[when] = timestamp(when)
        return stamp

    def page_viewed(self, page: PageView) -> tuple:
        engine, keywords = search_terms(page.referrer) if page.referrer else ("", "")
        payload = PageViewed(
            visitor_id=page.visitor_id,
            page_view_id=page.id,
            url=page.url,
            title=page.title,
            referrer=page.referrer,
            visit_id=page.visit_id,
            landing=page.landing,
            ip=page.ip,
            user_agent=page.user_agent,
            search_engine=engine,
            search_keywords=keywords,
            viewed_at=self._stamp(page.viewed_at),
        )
        # One event per page view: the page view's id is the event's id (and its Nats-Msg-Id).
        return page.id, self.subject, self.base + Event(id=page.id, page_viewed=payload).SerializeToString()


def _visitor_update(who: _Visitor) -> tuple:
    r = who.row
    score = lead_score(
        r["visit_count"] + who.visits,
        r["page_view_count"] + who.views,
        r["time_spent_seconds"] + who.spent,
        r["chat_count"],
        bool(r["email"]),
        r["visitor_type"],
    )
    return (r["id"], who.last_seen, who.first_seen, who.visit_id, who.visits, who.views, who.spent, score, who.ip)
