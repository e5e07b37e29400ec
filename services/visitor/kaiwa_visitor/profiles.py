"""VIS-03: profiles. Identify a visitor (merging the anonymous history into the known
visitor with that e-mail), keep CRM facts current (FindRecord on identification, the
refresher for the rest), lead scores, and reading visitors and visits.

    IdentifyVisitor ─▶ FindRecord(email) (1 s; crm_bridge away: facts later)
      ─▶ one transaction: this visitor and the live one holding the e-mail locked (id order)
         another holds it? this one is merged into it (history, counts) and stands for it
         identity, CRM facts, lead score; visitor_identified (outbox)
"""

from __future__ import annotations

import logging
import uuid

from kaiwa.events.v1.visitor_pb2 import VisitorIdentified

from kaiwa_common.auth import SERVICE, VISITOR
from kaiwa_common.db import unit_of_work
from kaiwa_common.emails import normalize_email
from kaiwa_common.errors import InvalidArgument, NotFound, parse_uuid

from . import store
from .context import Actor, Deps
from .domain.model import Visit, Visitor
from .domain.scoring import lead_score
from .domain.tracking import check_may_track
from .peers import CrmRecord, CrmUnavailable

log = logging.getLogger("kaiwa.visitor.profiles")

MAX_NAME = 100
MAX_PHONE = 40
SOURCES = ("chat", "web_form", "agent")


async def get_visitor(deps: Deps, tenant: str, visitor_id: str) -> Visitor:
    async with deps.ctx.pool.acquire() as conn:
        visitor = await store.get_visitor(conn, tenant, parse_uuid(visitor_id, "visitor_id"), deps.settings.recent_page_views)
    if visitor is None:
        raise NotFound(f"visitor {visitor_id} not found")
    return visitor


async def get_visit(deps: Deps, tenant: str, visit_id: str) -> Visit:
    async with deps.ctx.pool.acquire() as conn:
        visit = await store.get_visit(conn, tenant, uuid.UUID(parse_uuid(visit_id, "visit_id")))
    if visit is None:
        raise NotFound(f"visit {visit_id} not found")
    return visit


def _checked(name: str, phone: str, source: str, role: str) -> tuple[str, str, str]:
    name, phone = " ".join(name.split()), " ".join(phone.split())
    if len(name) > MAX_NAME:
        raise InvalidArgument(f"name is longer than {MAX_NAME} characters", field="name")
    if len(phone) > MAX_PHONE or (phone and not any(c.isdigit() for c in phone)):
        raise InvalidArgument(f"phone {phone[:50]!r} is not a phone number", field="phone")
    source = source or {VISITOR: "chat", SERVICE: "web_form"}.get(role, "agent")
    return name, phone, source


async def identify(deps: Deps, actor: Actor, visitor_id: str, name: str, email: str, phone: str, source: str) -> Visitor:
    visitor_id = parse_uuid(visitor_id or (actor.sub if actor.role == VISITOR else ""), "visitor_id")
    check_may_track(actor.role, actor.sub, visitor_id)
    email = normalize_email(email)
    name, phone, source = _checked(name, phone, source, actor.role)
    try:
        record, checked = await deps.peers.crm_record(actor.tenant, email), True
    except CrmUnavailable:
        record, checked = None, False  # the refresher fetches the facts once crm_bridge answers
    async with unit_of_work(deps.ctx.pool) as conn:
        survivor = await apply_identity(
            deps, conn, actor.tenant, uuid.UUID(visitor_id), (name, email, phone, source), actor.role == VISITOR
        )
        if checked:
            await save_crm(conn, actor.tenant, survivor, record)
    return await get_visitor(deps, actor.tenant, str(survivor))


async def apply_identity(deps: Deps, conn, tenant: str, visitor_id: uuid.UUID, who: tuple, create: bool) -> uuid.UUID:
    """Identity (and a merge) inside the caller's transaction; the visitor that remains."""
    name, email, phone, source = who
    this, other = await store.lock_identity(conn, tenant, visitor_id, email, create)
    if this is None:
        raise NotFound(f"visitor {visitor_id} not found")
    survivor, merged = this["id"], []
    if other is not None:
        await store.merge(conn, tenant, this["id"], other["id"])
        survivor, merged = other["id"], [str(this["id"])]
    await store.set_identity(conn, tenant, survivor, name, email, phone, source)
    row = await rescore(conn, tenant, survivor)
    event = VisitorIdentified(
        visitor_id=str(survivor), merged_visitor_ids=merged, name=name, email=email, phone=phone, source=source
    )
    event.visitor_type = row["visitor_type"]
    await deps.ctx.outbox.add(conn, tenant, event)
    return survivor


async def save_crm(conn, tenant: str, visitor_id: uuid.UUID, record: CrmRecord | None) -> None:
    if record is None:
        await store.set_crm(conn, tenant, visitor_id, "", "", "", "unknown", None)
    else:
        await store.set_crm(
            conn, tenant, visitor_id, record.record_id, record.record_type, record.owner, record.visitor_type, record.facts
        )
    await rescore(conn, tenant, visitor_id)


async def rescore(conn, tenant: str, visitor_id: uuid.UUID):
    r = await store.score_inputs(conn, tenant, visitor_id)
    score = lead_score(
        r["visit_count"], r["page_view_count"], r["time_spent_seconds"], r["chat_count"], bool(r["email"]), r["visitor_type"]
    )
    await store.set_score(conn, tenant, visitor_id, score)
    return r


async def refresh_crm(deps: Deps, batch: int = 50) -> int:
    """The refresher's round: CRM facts of identified visitors never checked or checked
    long ago; stops at the first sign that crm_bridge is away."""
    async with deps.ctx.pool.acquire() as conn:
        stale = await store.stale_crm_visitors(conn, deps.settings.crm_refresh_after, batch)
    done = 0
    for row in stale:
        try:
            record = await deps.peers.crm_record(row["tenant"], row["email"])
        except CrmUnavailable:
            break
        async with unit_of_work(deps.ctx.pool) as conn:
            await save_crm(conn, row["tenant"], row["id"], record)
        done += 1
    return done
