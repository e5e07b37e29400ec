"""VIS-01: tracking, unary (TrackPageView, TrackLeave) and streaming (TrackEvents): both
go through `ingest`, one transaction per batch: visitors locked, one write statement
(store/tracking.py), trigger timers, leaves. A refused event is answered by its index and
never takes the good ones of its batch down with it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

from kaiwa_common import timers
from kaiwa_common.auth import SERVICE, VISITOR
from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import DomainError, InvalidArgument, NotFound, PermissionDenied, parse_uuid

from . import store
from .context import Actor, Deps
from .domain.model import PageView
from .group_commit import GroupCommit
from .domain.tracking import LeaveInput, PageViewInput, check_event_time, check_may_track, validate_page_view
from .ingest import plan_batch

TRIGGER_TIMER = "visitor_trigger"
MAX_EVENTS_PER_MESSAGE = 5000


@dataclass(frozen=True)
class EventIn:
    """A tracked event as received (api.py converts the protobuf to this)."""

    kind: str  # page_view, leave
    visitor_id: str = ""
    url: str = ""
    title: str = ""
    referrer: str = ""
    user_agent: str = ""
    ip: str = ""
    language: str = ""
    screen_width: int = 0
    screen_height: int = 0
    page_view_id: str = ""
    occurred_at: datetime | None = None


@dataclass
class Outcome:
    accepted: int = 0
    errors: dict[int, DomainError] | None = None


@lru_cache(maxsize=100_000)
def _visitor_id(value: str) -> str:
    """A visitor id in its canonical form (cached: a visitor sends many events)."""
    return parse_uuid(value, "visitor_id")


def _validated(actor: Actor, e: EventIn, client_ip: str, now: datetime):
    """(visitor id, PageViewInput or LeaveInput, when) or a DomainError."""
    visitor_id = _visitor_id(e.visitor_id or (actor.sub if actor.role == VISITOR else ""))
    check_may_track(actor.role, actor.sub, visitor_id)
    if actor.role != SERVICE and e.occurred_at is not None:
        raise PermissionDenied("only a service dates events (occurred_at); a visitor's are dated when received")
    when = check_event_time(e.occurred_at, now)
    if e.kind == "leave":
        page = parse_uuid(e.page_view_id, "page_view_id") if e.page_view_id else ""
        return visitor_id, LeaveInput(visitor_id, page), when
    view = validate_page_view(
        visitor_id=visitor_id,
        url=e.url,
        title=e.title,
        referrer=e.referrer,
        user_agent=e.user_agent,
        ip=e.ip if actor.role != VISITOR else client_ip,
        language=e.language,
        screen_width=e.screen_width,
        screen_height=e.screen_height,
    )
    return visitor_id, view, when


async def ingest(deps: Deps, tenant: str, events: list[tuple[int, str, object, datetime | None]], errors: dict) -> dict:
    """Write one batch of validated events; refusals go to `errors` by index. The page
    views written and the pages left, by index."""
    ids = sorted(uuid.UUID(v) for v in {visitor_id for _, visitor_id, _, _ in events})
    views = [(i, e, when) for i, _, e, when in events if isinstance(e, PageViewInput)]
    leaves = [(i, e, when) for i, _, e, when in events if isinstance(e, LeaveInput)]
    create = ids if not leaves else sorted(uuid.UUID(v) for v in {e.visitor_id for _, e, _ in views})
    async with unit_of_work(deps.ctx.pool) as conn:
        states = await store.lock_visitors(conn, tenant, ids, create)
        for i, e, _ in leaves:
            if e.visitor_id not in states:
                errors[i] = NotFound("no such visitor in this tenant")
        leaves = [(i, e, when) for i, e, when in leaves if e.visitor_id in states]
        first = next(iter(states.values()), None)
        now = first["now"] if first else await conn.fetchval("SELECT clock_timestamp()")
        timeout = timedelta(seconds=first["timeout"]) if first and first["timeout"] else deps.settings.visit_timeout
        triggers = await deps.triggers.enabled(conn, tenant)
        plan = plan_batch(tenant, views, states, timeout, deps.enricher, deps.ctx.outbox, triggers)
        await store.write_batch(conn, tenant, plan.write)
        for s in plan.timers:
            payload = {"visitor_id": s.visitor_id, "page_view_id": s.page_view_id, "url": s.url}
            await timers.schedule(conn, tenant, TRIGGER_TIMER, f"{s.visit_id}/{s.trigger.id}", s.due_at, payload=payload)
        done: dict = dict(plan.views)
        if leaves:
            left = await store.leave_pages(
                conn, tenant, [(i, _survivor(states, e.visitor_id), _page(e), when or now) for i, e, when in leaves]
            )
            for i, _, _ in leaves:
                if i in left:
                    done[i] = left[i]
                else:
                    errors[i] = NotFound("no such page view of this visitor")
    errors.update(plan.errors)
    return done


def _survivor(states: dict, visitor_id: str) -> uuid.UUID:
    row = states[visitor_id]
    return row["merged_into"] or row["id"]


def _page(leave: LeaveInput) -> uuid.UUID | None:
    return uuid.UUID(leave.page_view_id) if leave.page_view_id else None


async def track_one(deps: Deps, actor: Actor, event: EventIn, client_ip: str) -> PageView:
    """TrackPageView and TrackLeave: one event (written with other calls' in one batch:
    group_commit.py); its refusal is the call's."""
    visitor_id, item, when = _validated(actor, event, client_ip, datetime.now(timezone.utc))
    if deps.group is None:
        deps.group = GroupCommit(lambda tenant, events, errors: ingest(deps, tenant, events, errors))
    result = await deps.group.submit(actor.tenant, (visitor_id, item, when))
    if isinstance(result, PageView):
        return result
    async with deps.ctx.pool.acquire() as conn:
        return await store.page_view(conn, actor.tenant, result)


async def track_events(deps: Deps, actor: Actor, batches: AsyncIterator[list[EventIn]], client_ip: str) -> Outcome:
    """TrackEvents: each message of the stream is one batch, written as it arrives."""
    outcome, errors, index = Outcome(), {}, 0
    async for events in batches:
        if len(events) > MAX_EVENTS_PER_MESSAGE:
            raise InvalidArgument(f"at most {MAX_EVENTS_PER_MESSAGE} events per message", field="events")
        now, valid = datetime.now(timezone.utc), []
        for event in events:
            try:
                valid.append((index, *_validated(actor, event, client_ip, now)))
            except DomainError as exc:
                errors[index] = exc
            index += 1
        if valid:
            done = await ingest(deps, actor.tenant, valid, errors)
            outcome.accepted += len(done)
    outcome.errors = dict(sorted(errors.items()))
    return outcome
