"""VIS-06: proactive triggers: kept per tenant (admin), matched as page views arrive
(ingest.py schedules a database timer per visit and trigger), fired by the timer:

    timer (trigger, visit) due ─▶ trigger still there and enabled? the visit still on the
      page that set the timer (not left)? first firing in this visit (trigger_firings
      primary key)? ─▶ trigger_fired (outbox) and a NOTIFY: the visitor's widget
      (open_chat, StreamPrompts) or the agents (notify_agent, StreamArrivals)
"""

from __future__ import annotations

import uuid

from kaiwa.events.v1.visitor_pb2 import TriggerFired

from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import NotFound, parse_uuid
from kaiwa_common.idempotency import claim_request, fingerprint_of
from kaiwa_common.timers import Timer

from . import store
from .context import Actor, Deps
from .domain.triggers import Trigger, validate_trigger
from .wakeups import ARRIVALS, PROMPTS, arrival_payload, prompt_payload


async def upsert_trigger(deps: Deps, actor: Actor, trigger: Trigger, request_id: str) -> Trigger:
    trigger = validate_trigger(trigger)
    async with unit_of_work(deps.ctx.pool) as conn:
        if trigger.id:
            trigger_id = parse_uuid(trigger.id, "id")
            if await store.get_trigger(conn, actor.tenant, uuid.UUID(trigger_id)) is None:
                raise NotFound(f"trigger {trigger_id} not found")
            trigger = Trigger(**{**trigger.__dict__, "id": trigger_id})
        else:
            fingerprint = fingerprint_of(repr(trigger))
            claim = await claim_request(conn, actor.tenant, "UpsertTrigger", request_id, fingerprint)
            if claim.result_id:
                return await store.get_trigger(conn, actor.tenant, uuid.UUID(claim.result_id))
            trigger = Trigger(**{**trigger.__dict__, "id": str(uuid.uuid4())})
            await claim.record(conn, trigger.id)
        await store.save_trigger(conn, actor.tenant, trigger)
    deps.triggers.forget(actor.tenant)
    return trigger


async def list_triggers(deps: Deps, tenant: str) -> list[Trigger]:
    async with deps.ctx.pool.acquire() as conn:
        return await store.list_triggers(conn, tenant)


async def delete_trigger(deps: Deps, actor: Actor, trigger_id: str) -> None:
    trigger_id = parse_uuid(trigger_id, "trigger_id")
    async with unit_of_work(deps.ctx.pool) as conn:
        if not await store.delete_trigger(conn, actor.tenant, uuid.UUID(trigger_id)):
            raise NotFound(f"trigger {trigger_id} not found")
    deps.triggers.forget(actor.tenant)


def timer_handler(deps: Deps):
    async def fire(timer: Timer, conn) -> None:
        visit_id, _, trigger_id = timer.key.partition("/")
        visit, trigger_uuid = uuid.UUID(visit_id), uuid.UUID(trigger_id)
        page_view_id, visitor_id = uuid.UUID(timer.payload["page_view_id"]), uuid.UUID(timer.payload["visitor_id"])
        trigger = await store.get_trigger(conn, timer.tenant, trigger_uuid)
        if trigger is None or not trigger.enabled or not await store.still_on_page(conn, timer.tenant, visit, page_view_id):
            return
        url = timer.payload["url"]
        if not await store.record_firing(conn, timer.tenant, visit, trigger_uuid, visitor_id, page_view_id, url):
            return
        event = TriggerFired(
            trigger_id=trigger.id, visitor_id=str(visitor_id), visit_id=visit_id, page_view_id=str(page_view_id), url=url,
            action=trigger.action, message=trigger.message, agent_id=trigger.agent_id,
        )  # fmt: skip
        await deps.ctx.outbox.add(conn, timer.tenant, event)
        if trigger.action == "open_chat":
            channel, payload = PROMPTS, prompt_payload(timer.tenant, str(visitor_id), visit_id, trigger.id)
        else:
            channel, payload = ARRIVALS, arrival_payload(timer.tenant, visit_id, trigger.id)
        await conn.execute("SELECT pg_notify($1, $2)", channel, payload)

    return fire
