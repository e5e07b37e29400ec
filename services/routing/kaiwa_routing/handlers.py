"""Routing's use cases: one transaction each; state change and events commit together.

Capacity and ownership are settled by the database: an assignment is a conditional
`UPDATE agents ... WHERE active_chats < max_chats AND availability = 'online'` plus the
chat row update, under the chat's row lock, in one transaction; constraints (capacity
CHECK, one open assignment per chat) back it up.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import datetime, timezone

import asyncpg
from kaiwa.events.v1 import routing_pb2 as ev

from kaiwa_common import timers
from kaiwa_common.auth import Identity
from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import (FailedPrecondition, InvalidArgument, NotFound, PermanentEventError,
                                 PermissionDenied, parse_uuid)
from kaiwa_common.idempotency import claim_request, fingerprint_of

from . import crm, store
from .arrivals import CHATS, ChatArrivals, ChatNotKnownYet
from .domain.estimate import estimated_wait
from .domain.model import (ASSIGNED, AVAILABILITIES, BOT, DEFAULT_ACCEPT_TIMEOUT, DEFAULT_MAX_WAIT, ENDED, MISSED,
                           QUEUED, STRATEGIES, agent_settings, department_settings, normalize_email)
from .domain.rules import Rule, first_match, validate_rule
from .notify import OFFERS, TEAM, Notifier, offers_key
from .router import OFFER_TIMEOUT, Router

log = logging.getLogger("kaiwa.routing")

MAX_WAIT = "max_wait"
TRANSFER_TIMEOUT = "transfer_timeout"
# A chat to be queued into a department routing does not know (see _refuse_unknown_department).
UNKNOWN_DEPARTMENT = "unknown_department"
Queue = tuple[str, str | None]  # (tenant, department id or None)


def _id(value) -> str:
    return str(value) if value else ""


class Routing:
    def __init__(self, ctx):
        self.ctx = ctx
        self.router = Router(ctx)
        self.notifier = Notifier(lambda: ctx.settings.database_url)
        self.arrivals = ChatArrivals(ctx, self.notifier)

    # --- plumbing ---------------------------------------------------------------------

    async def _tx(self, work):
        """Run work(conn) in one transaction; retried when PostgreSQL breaks a deadlock."""
        for attempt in range(3):
            try:
                async with unit_of_work(self.ctx.pool) as conn:
                    return await work(conn)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                if attempt == 2:
                    raise

    def _kick(self, queues) -> None:
        for tenant, department_id in sorted(set(queues), key=lambda q: (q[0], q[1] or "")):
            self.router.kick(tenant, department_id)

    async def _route_now(self, conn, queues) -> None:
        """Passes inside the caller's transaction, in one global order (no lock cycles)."""
        for tenant, department_id in sorted(set(queues), key=lambda q: (q[0], q[1] or "")):
            await self.router.route_queue(conn, tenant, department_id)

    async def _me(self, conn, identity: Identity) -> asyncpg.Record:
        """The calling agent's row."""
        try:
            agent_id = str(uuid.UUID(identity.sub))
        except ValueError:
            raise PermissionDenied(f"token subject {identity.sub!r} is not an agent of this portal") from None
        row = await store.agent_row(conn, identity.tenant, agent_id)
        if row is None:
            raise PermissionDenied(f"token subject {identity.sub!r} is not an agent of this portal")
        return row

    async def _agent(self, conn, tenant: str, agent_id: str = "", email: str = "", what: str = "agent") -> asyncpg.Record:
        if agent_id:
            row = await store.agent(conn, tenant, parse_uuid(agent_id, f"{what} id"))
            if row is None:
                raise NotFound(f"{what} {agent_id} does not exist")
            return row
        email = normalize_email(email, f"{what} email")
        row = await store.agent_by_email(conn, tenant, email)
        if row is None:
            raise NotFound(f"no agent with e-mail {email}")
        return row

    async def _locked_chat(self, conn, tenant: str, chat_id: str) -> asyncpg.Record:
        chat = await store.lock_chat(conn, tenant, chat_id)
        if chat is None:
            raise ChatNotKnownYet(chat_id)
        return chat

    async def _known_chat(self, conn, tenant: str, chat_id: str) -> asyncpg.Record:
        chat = await store.chat(conn, tenant, chat_id)
        if chat is None:
            raise ChatNotKnownYet(chat_id)
        return chat

    async def _agent_queues(self, conn, tenant: str, agent_id: str) -> list[Queue]:
        return [(tenant, d) for d in await store.agent_departments(conn, tenant, agent_id)] + [(tenant, None)]

    # --- departments and agents (ROUT-01) ----------------------------------------------

    async def upsert_department(self, tenant: str, name: str, strategy: str, accept_timeout: float,
                                max_wait: float) -> asyncpg.Record:
        name, accept_timeout, max_wait = department_settings(name, accept_timeout, max_wait)
        if strategy not in STRATEGIES:
            raise InvalidArgument(f"strategy must be one of {', '.join(STRATEGIES)}")

        async def work(conn):
            return await store.upsert_department(conn, tenant, name, strategy, accept_timeout, max_wait)
        row = await self._tx(work)
        self._kick([(tenant, str(row["id"]))])
        return row

    async def list_departments(self, tenant: str) -> list[asyncpg.Record]:
        async with self.ctx.pool.acquire() as conn:
            return await store.list_departments(conn, tenant)

    async def get_department(self, tenant: str, department_id: str) -> asyncpg.Record:
        department_id = parse_uuid(department_id, "department_id")
        async with self.ctx.pool.acquire() as conn:
            row = await store.department(conn, tenant, department_id)
        if row is None:
            raise NotFound(f"department {department_id} does not exist")
        return row

    async def upsert_agent(self, tenant: str, email: str, name: str, department_ids: list[str],
                           max_chats: int) -> asyncpg.Record:
        email = normalize_email(email)
        name = agent_settings(name, max_chats)
        departments = sorted({parse_uuid(d, "department id") for d in department_ids})

        async def work(conn):
            missing = set(departments) - await store.existing_departments(conn, tenant, departments)
            if missing:
                raise NotFound(f"department {sorted(missing)[0]} does not exist")
            existing = await store.lock_agent_by_email(conn, tenant, email)
            if existing is None:
                agent_id = await store.insert_agent(conn, tenant, email, name, max_chats)
            else:
                agent_id = str(existing["id"])
                if existing["active_chats"] > max_chats:
                    raise FailedPrecondition(
                        f"agent {email} has {existing['active_chats']} open chats; max_chats cannot go below that")
                await store.update_agent(conn, tenant, agent_id, name, max_chats)
            await store.set_departments(conn, tenant, agent_id, departments)
            return await store.agent(conn, tenant, agent_id)

        for attempt in range(2):
            try:
                row = await self._tx(work)
                break
            except asyncpg.UniqueViolationError:  # created concurrently by the same e-mail: now an update
                if attempt == 1:
                    raise
        self._kick([(tenant, d) for d in departments] + [(tenant, None)])
        return row

    async def get_agent(self, tenant: str, agent_id: str) -> asyncpg.Record:
        async with self.ctx.pool.acquire() as conn:
            return await self._agent(conn, tenant, agent_id=agent_id)

    async def list_agents(self, tenant: str, department_id: str) -> list[asyncpg.Record]:
        async with self.ctx.pool.acquire() as conn:
            if department_id:
                department_id = parse_uuid(department_id, "department_id")
                if await store.department(conn, tenant, department_id) is None:
                    raise NotFound(f"department {department_id} does not exist")
            return await store.list_agents(conn, tenant, department_id or None)

    async def set_availability(self, identity: Identity, availability: str, agent_id: str) -> asyncpg.Record:
        if availability not in AVAILABILITIES:
            raise InvalidArgument("availability must be AVAILABILITY_ONLINE, AVAILABILITY_AWAY or AVAILABILITY_OFFLINE")
        tenant = identity.tenant
        queues: list[Queue] = []

        async def work(conn):
            if identity.role == "agent":
                me = await self._me(conn, identity)
                if agent_id and agent_id != str(me["id"]):
                    raise PermissionDenied("an agent sets only their own availability")
                target = str(me["id"])
            else:
                if not agent_id:
                    raise InvalidArgument("agent_id is required when an admin sets availability")
                target = parse_uuid(agent_id, "agent_id")
            previous = await store.set_availability(conn, tenant, target, availability)
            if previous is None:
                raise NotFound(f"agent {agent_id} does not exist")
            if previous != availability:
                await self.ctx.outbox.add(conn, tenant, ev.AgentAvailabilityChanged(agent_id=target,
                                                                                    availability=availability))
            queues.extend(await self._agent_queues(conn, tenant, target))
            if availability != "online":
                # Away and offline agents get no offers: withdraw the open ones.
                for row in await store.delete_agent_offers(conn, tenant, target):
                    await timers.cancel(conn, tenant, OFFER_TIMEOUT, str(row["chat_id"]))
                    queues.append((tenant, _id(row["department_id"]) or None))
                await store.notify(conn, OFFERS, offers_key(tenant, target))
            return await store.agent(conn, tenant, target)

        row = await self._tx(work)
        self._kick(queues)
        return row

    # --- offers and assignment (ROUT-02, ROUT-06) --------------------------------------

    async def list_offers(self, identity: Identity) -> list[asyncpg.Record]:
        async with self.ctx.pool.acquire() as conn:
            me = await self._me(conn, identity)
            return await store.agent_offers(conn, identity.tenant, str(me["id"]))

    async def my_agent_id(self, identity: Identity) -> str:
        async with self.ctx.pool.acquire() as conn:
            return str((await self._me(conn, identity))["id"])

    async def offers_of(self, tenant: str, agent_id: str) -> list[asyncpg.Record]:
        async with self.ctx.pool.acquire() as conn:
            return await store.agent_offers(conn, tenant, agent_id)

    async def _take_offers(self, conn, tenant: str, chat_id) -> list[str]:
        return await store.take_offers(conn, tenant, chat_id, [OFFER_TIMEOUT, MAX_WAIT], OFFERS)

    async def _assign(self, conn, tenant: str, chat: asyncpg.Record, target: asyncpg.Record, how: str,
                      previous_agent_id: str | None, offers_taken: list[str] | None = None
                      ) -> tuple[asyncpg.Record, list[Queue]]:
        """Give a locked chat to an agent; returns the chat now and the queues to route again."""
        agent_id = str(target["id"])
        if offers_taken is None:
            offers_taken = await self._take_offers(conn, tenant, chat["id"])
        queues: list[Queue] = []
        if previous_agent_id:
            # Two agents: lock both in id order, so crossing moves cannot deadlock.
            await store.lock_agents(conn, tenant, [agent_id, previous_agent_id])
            await store.release_capacity(conn, tenant, previous_agent_id)
            await store.release_assignment(conn, tenant, chat["id"])
            queues += await self._agent_queues(conn, tenant, previous_agent_id)
        assigned = await store.assign(conn, tenant, chat, agent_id, how, previous_agent_id)
        if assigned is None:  # the caller's transaction rolls back whatever came before
            if target["availability"] != "online":
                raise FailedPrecondition(f"agent {target['email']} is {target['availability']}")
            raise FailedPrecondition(f"agent {target['email']} is at their maximum of {target['max_chats']} chats")
        withdrawn = [a for a in offers_taken if a != agent_id]
        await self.ctx.outbox.add(conn, tenant, ev.ChatAssigned(
            chat_id=str(chat["id"]), agent_id=agent_id, agent_name=target["name"],
            previous_agent_id=previous_agent_id or "", how=how, department_id=_id(chat["department_id"])))
        if withdrawn:  # the others' slots are free again
            queues.append((tenant, _id(chat["department_id"]) or None))
        if assigned["agent_active"] >= assigned["agent_max"]:
            # Full now: offers still open to this agent go to others.
            for row in await store.delete_agent_offers(conn, tenant, agent_id):
                await timers.cancel(conn, tenant, OFFER_TIMEOUT, str(row["chat_id"]))
                queues.append((tenant, _id(row["department_id"]) or None))
            await store.notify(conn, OFFERS, offers_key(tenant, agent_id))
        return assigned, queues

    async def accept_chat(self, identity: Identity, chat_id: str) -> asyncpg.Record:
        tenant = identity.tenant
        chat_uuid = parse_uuid(chat_id, "chat_id")
        try:
            me = str(uuid.UUID(identity.sub))
        except ValueError:
            me = None

        async def work(conn):
            if me is None:  # still after the chat's existence, like every other check order
                await self._locked_chat(conn, tenant, chat_uuid)
                raise PermissionDenied(f"token subject {identity.sub!r} is not an agent of this portal")
            row = await store.accept_offer(conn, tenant, chat_uuid, me, OFFER_TIMEOUT, [OFFER_TIMEOUT, MAX_WAIT], OFFERS)
            outcome = row["outcome"]
            if outcome == "no_chat":
                raise ChatNotKnownYet(chat_uuid)
            if outcome == "no_agent":
                raise PermissionDenied(f"token subject {identity.sub!r} is not an agent of this portal")
            if outcome == "not_queued":
                if row["state"] == ASSIGNED:
                    who = "you" if str(row["agent_id"]) == me else "another agent"
                    raise FailedPrecondition(f"chat {chat_id} is already taken by {who}")
                raise FailedPrecondition(f"chat {chat_id} is {row['state']}, not waiting for an agent")
            if outcome == "not_offered":
                raise FailedPrecondition(f"chat {chat_id} is not offered to you")
            if outcome == "agent_unable":
                if row["agent_availability"] != "online":
                    raise FailedPrecondition(f"agent {row['agent_email']} is {row['agent_availability']}")
                raise FailedPrecondition(f"agent {row['agent_email']} is at their maximum of {row['agent_max']} chats")
            department_id = _id(row["department_id"])
            await self.ctx.outbox.add(conn, tenant, ev.ChatAssigned(
                chat_id=str(row["id"]), agent_id=me, agent_name=row["agent_name"], previous_agent_id="",
                how="accepted", department_id=department_id))
            queues: list[Queue] = [(tenant, d or None) for d in row["freed_departments"]]
            if row["withdrawn"]:  # ring all: the others' slots are free again
                queues.append((tenant, department_id or None))
            return row, queues

        chat, queues = await self.arrivals.run_for_chat(tenant, chat_uuid, lambda: self._tx(work))
        self._kick(queues)
        return chat

    async def decline_chat(self, identity: Identity, chat_id: str, reason: str) -> None:
        tenant = identity.tenant
        chat_id = parse_uuid(chat_id, "chat_id")
        reason = (reason or "").strip()[:500]

        async def work(conn):
            chat = await self._locked_chat(conn, tenant, chat_id)
            me = await self._me(conn, identity)
            refused = await store.refusal(conn, tenant, chat["id"], me["id"])
            if refused is not None and refused["declined"]:
                raise FailedPrecondition(f"you already declined chat {chat_id}")
            if chat["state"] != QUEUED or not await store.delete_offer(conn, tenant, chat["id"], me["id"]):
                raise FailedPrecondition(f"chat {chat_id} is not offered to you")
            await store.record_refusal(conn, tenant, chat["id"], me["id"], reason or "declined", True)
            await timers.cancel(conn, tenant, OFFER_TIMEOUT, str(chat["id"]))
            await store.notify(conn, OFFERS, offers_key(tenant, str(me["id"])))
            await self.ctx.outbox.add(conn, tenant, ev.OfferDeclined(chat_id=str(chat["id"]), agent_id=str(me["id"]),
                                                                    reason=reason or "declined"))
            return [(tenant, _id(chat["department_id"]) or None)] + await self._agent_queues(conn, tenant, str(me["id"]))

        self._kick(await self.arrivals.run_for_chat(tenant, chat_id, lambda: self._tx(work)))

    async def get_assignment(self, tenant: str, chat_id: str) -> asyncpg.Record:
        chat_id = parse_uuid(chat_id, "chat_id")

        async def look():
            async with self.ctx.pool.acquire() as conn:
                return await self._known_chat(conn, tenant, chat_id)

        return await self.arrivals.run_for_chat(tenant, chat_id, look)

    async def assign_chat(self, identity: Identity, chat_id: str, agent_id: str, agent_email: str) -> asyncpg.Record:
        tenant = identity.tenant
        chat_id = parse_uuid(chat_id, "chat_id")
        if agent_id and agent_email:
            raise InvalidArgument("give agent_id or agent_email, not both")

        async def work(conn):
            chat = await self._locked_chat(conn, tenant, chat_id)
            if agent_id or agent_email:
                target = await self._agent(conn, tenant, agent_id, agent_email)
            elif identity.role == "agent":
                target = await self._me(conn, identity)
            else:
                raise InvalidArgument("agent_id or agent_email is required")
            if chat["state"] == QUEUED:
                how, previous = "assigned", None
            elif chat["state"] == ASSIGNED:
                if chat["agent_id"] == target["id"]:
                    raise FailedPrecondition(f"chat {chat_id} is already assigned to {target['email']}")
                how, previous = "reassigned", str(chat["agent_id"])
            else:
                raise FailedPrecondition(f"chat {chat_id} is {chat['state']}; only waiting or assigned chats can be assigned")
            assigned, queues = await self._assign(conn, tenant, chat, target, how, previous)
            pending = await store.pending_transfer_of_chat(conn, tenant, chat["id"])
            if pending is not None:
                await store.finish_transfer(conn, tenant, pending["id"], "declined", None, "chat was reassigned")
                await timers.cancel(conn, tenant, TRANSFER_TIMEOUT, str(pending["id"]))
            return assigned, queues

        chat, queues = await self.arrivals.run_for_chat(tenant, chat_id, lambda: self._tx(work))
        self._kick(queues)
        return chat

    # --- rules (ROUT-03, ROUT-04) -------------------------------------------------------

    async def upsert_rule(self, tenant: str, rule: Rule, request_id: str = "") -> Rule:
        """Creates (no id; a retry with the same request_id returns the rule it created) or
        updates by id (idempotent as it is; request_id is not needed then)."""
        validate_rule(rule.kind, rule.name, rule.order, list(rule.conditions), list(rule.agent_ids))

        async def work(conn):
            if rule.department_id and await store.department(conn, tenant, rule.department_id) is None:
                raise NotFound(f"department {rule.department_id} does not exist")
            missing = set(rule.agent_ids) - await store.existing_agents(conn, tenant, list(rule.agent_ids))
            if missing:
                raise NotFound(f"agent {sorted(missing)[0]} does not exist")
            if not rule.id:
                claim = await claim_request(conn, tenant, "UpsertRule", request_id, fingerprint_of(
                    rule.kind, rule.name, rule.order, rule.department_id, rule.conditions, rule.agent_ids))
                if claim.result_id:
                    return await self._rule_created_before(conn, tenant, claim.result_id, request_id)
                created = await store.upsert_rule(conn, tenant, dataclasses.replace(rule, id=store.new_id()))
                await claim.record(conn, created.id)
                return created
            if not await store.rule_exists(conn, tenant, rule.id):
                raise NotFound(f"rule {rule.id} does not exist")
            return await store.upsert_rule(conn, tenant, rule)

        saved = await self._tx(work)
        self._kick([(tenant, rule.department_id)])
        return saved

    @staticmethod
    async def _rule_created_before(conn, tenant: str, rule_id: str, request_id: str) -> Rule:
        found = await store.rule(conn, tenant, rule_id)
        if found is None:
            raise NotFound(f"rule {rule_id}, created by request {request_id!r}, has been deleted since")
        return found

    async def list_rules(self, tenant: str, kind: str | None) -> list[Rule]:
        async with self.ctx.pool.acquire() as conn:
            return await store.rules(conn, tenant, kind)

    async def delete_rule(self, tenant: str, rule_id: str) -> None:
        rule_id = parse_uuid(rule_id, "rule_id")
        async with unit_of_work(self.ctx.pool) as conn:
            if not await store.delete_rule(conn, tenant, rule_id):
                raise NotFound(f"rule {rule_id} does not exist")

    # --- queue (ROUT-04, ROUT-05) -------------------------------------------------------

    async def _priority(self, conn, tenant: str, department_id: str | None, facts: dict | None) -> int:
        rule = first_match(await store.rules(conn, tenant, "priority"), "priority", department_id, facts)
        return rule.order if rule else 0

    async def _enqueue(self, conn, tenant: str, chat_id, department_id: str | None, visitor_email: str) -> None:
        """Put a chat in its queue (CRM facts, priority, maximum-wait timer) and route it."""
        dept = await store.department(conn, tenant, department_id)
        facts = None
        if visitor_email and ((dept is not None and dept["strategy"] == "crm_owner")
                              or await store.has_rules(conn, tenant)):
            facts = await crm.visitor_facts(self.ctx, tenant, visitor_email)
        priority = await self._priority(conn, tenant, department_id, facts)
        await store.enqueue(conn, tenant, chat_id, department_id, facts, priority)
        max_wait = dept["max_wait_seconds"] if dept else DEFAULT_MAX_WAIT
        await timers.schedule(conn, tenant, MAX_WAIT, str(chat_id), delay=max_wait)
        await self.router.route_queue(conn, tenant, department_id)

    async def queue_position(self, identity: Identity, chat_id: str) -> tuple[asyncpg.Record, int, int]:
        tenant = identity.tenant
        chat_id = parse_uuid(chat_id, "chat_id")

        async def look():
            async with self.ctx.pool.acquire() as conn:
                chat = await self._known_chat(conn, tenant, chat_id)
                if identity.role == "visitor" and chat["visitor_id"] != identity.sub:
                    raise PermissionDenied("a visitor may only ask about their own chat")
                if chat["state"] != QUEUED:
                    return chat, 0, 0
                position = await store.queue_position(conn, tenant, chat)
                return chat, position, await self._estimate(conn, tenant, _id(chat["department_id"]) or None, position)

        return await self.arrivals.run_for_chat(tenant, chat_id, look)

    async def _estimate(self, conn, tenant: str, department_id: str | None, position: int) -> int:
        handling, accept = await store.handling_stats(conn, tenant, department_id)
        overview = await store.capacity_overview(conn, tenant, department_id)
        return estimated_wait(position, handling, accept, overview["capacity"], overview["free"])

    async def list_queue(self, tenant: str, department_id: str, limit: int) -> list[asyncpg.Record]:
        limit = limit or 100
        if not 1 <= limit <= 1000:
            raise InvalidArgument(f"limit must be between 1 and 1000, got {limit}")
        async with self.ctx.pool.acquire() as conn:
            if department_id:
                department_id = parse_uuid(department_id, "department_id")
                if await store.department(conn, tenant, department_id) is None:
                    raise NotFound(f"department {department_id} does not exist")
            return await store.queue_with_positions(conn, tenant, department_id or None, limit)

    async def list_missed(self, tenant: str, department_id: str, limit: int) -> list[asyncpg.Record]:
        limit = limit or 100
        if not 1 <= limit <= 1000:
            raise InvalidArgument(f"limit must be between 1 and 1000, got {limit}")
        async with self.ctx.pool.acquire() as conn:
            if department_id:
                department_id = parse_uuid(department_id, "department_id")
                if await store.department(conn, tenant, department_id) is None:
                    raise NotFound(f"department {department_id} does not exist")
            return await store.missed_chats(conn, tenant, department_id or None, limit)

    # --- timers ---------------------------------------------------------------------------

    async def on_offer_timeout(self, timer, conn) -> None:
        """The agent did not answer in time: the chat goes to the next candidate."""
        locked, chat = await store.try_lock_chat(conn, timer.tenant, timer.key)
        if not locked:
            return await self._retry_timer_later(conn, timer)
        agent_id = timer.payload.get("agent_id")
        if chat is None or chat["state"] != QUEUED or not await store.delete_offer(conn, timer.tenant, chat["id"], agent_id):
            return
        await store.record_refusal(conn, timer.tenant, chat["id"], agent_id, "timeout", False)
        await store.notify(conn, OFFERS, offers_key(timer.tenant, agent_id))
        await self.ctx.outbox.add(conn, timer.tenant, ev.OfferDeclined(chat_id=timer.key, agent_id=agent_id,
                                                                      reason="timeout"))
        await self.router.route_queue(conn, timer.tenant, _id(chat["department_id"]) or None)

    async def on_max_wait(self, timer, conn) -> None:
        """Nobody took the chat in the department's maximum wait: a missed chat."""
        tenant = timer.tenant
        locked, chat = await store.try_lock_chat(conn, tenant, timer.key)
        if not locked:
            return await self._retry_timer_later(conn, timer)
        if chat is None or chat["state"] != QUEUED:
            return
        department_id = _id(chat["department_id"]) or None
        overview = await store.capacity_overview(conn, tenant, department_id)
        if await store.was_offered(conn, tenant, chat["id"]):
            reason = "no_agent_accepted"
        elif overview["online"] == 0:
            reason = "no_agent_online"
        else:
            reason = "all_agents_busy"
        waited = int((datetime.now(timezone.utc) - chat["queued_at"]).total_seconds())
        await store.set_chat_missed(conn, tenant, chat["id"], reason, waited)
        await self._take_offers(conn, tenant, chat["id"])
        await self.ctx.outbox.add(conn, tenant, ev.ChatMissed(chat_id=timer.key, department_id=department_id or "",
                                                             reason=reason, waited_seconds=waited))
        await self.router.route_queue(conn, tenant, department_id)

    async def announce_positions(self, conn, tenant: str, department_id: str | None) -> int:
        """Publish the queue positions (and estimates) that changed enough since last announced:
        every change in the first 20 places, further back a move of a tenth or more."""
        rows = await store.queue_with_positions(conn, tenant, department_id, 5000)
        if not rows:
            return 0
        handling, accept = await store.handling_stats(conn, tenant, department_id)
        overview = await store.capacity_overview(conn, tenant, department_id)
        changed = []
        for row in rows:
            last, position = row["last_position"], row["position"]
            if last is not None and (last == position or (position > 20 and abs(last - position) < max(1, last // 10))):
                continue
            wait = estimated_wait(position, handling, accept, overview["capacity"], overview["free"])
            await self.ctx.outbox.add(conn, tenant, ev.QueuePositionChanged(
                chat_id=str(row["id"]), position=position, estimated_wait_seconds=wait))
            changed.append((row["id"], position))
        await store.record_announcements(conn, tenant, changed)
        return len(changed)

    async def _retry_timer_later(self, conn, timer) -> None:
        """The chat is locked by a transaction in flight: fire again shortly, never wait on it here."""
        await timers.schedule(conn, timer.tenant, timer.kind, timer.key, delay=0.05, payload=timer.payload)

    # --- conversation events ------------------------------------------------------------

    async def _department_of(self, conn, tenant: str, given: str) -> tuple[str | None, bool]:
        """(the department id, None for a chat without one; whether routing knows it)."""
        if not given:
            return None, True
        try:
            department_id = str(uuid.UUID(given))
        except ValueError:
            return None, False
        return department_id, await store.department(conn, tenant, department_id) is not None

    async def _refuse_unknown_department(self, conn, tenant: str, chat_id: str, given: str) -> None:
        """A chat that is to wait for a department routing does not know (not of this tenant,
        never created, or no id at all) becomes a missed chat at once, reason
        `unknown_department`, published as chat_missed: the conversation service ends it
        like any missed chat and ListMissedChats shows it. It never rings agents of other
        departments, and the outcome does not depend on what happens to exist later.
        Conversation asks GetDepartment before StartChat, so this only meets events from
        before that check or from a defect, hence the warning."""
        log.warning("chat for a department routing does not know: missed at once",
                    extra={"fields": {"tenant": tenant, "chat_id": chat_id, "department_id": given}})
        await store.set_chat_missed(conn, tenant, chat_id, UNKNOWN_DEPARTMENT, 0)
        await self.ctx.outbox.add(conn, tenant, ev.ChatMissed(chat_id=chat_id, department_id=given,
                                                             reason=UNKNOWN_DEPARTMENT, waited_seconds=0))

    @staticmethod
    def _chat_id(value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise PermanentEventError(f"chat id {value!r} is not a UUID") from None

    async def on_chat_started(self, event, conn) -> None:
        p = event.chat_started
        tenant = event.tenant
        chat_id = self._chat_id(p.chat_id)
        department_id, known = await self._department_of(conn, tenant, p.department_id)
        if not await store.insert_chat(conn, tenant, chat_id, department_id, BOT, p.visitor_id,
                                       p.visitor_name, p.visitor_email, p.question, CHATS):
            return  # already known: a redelivery, or the chat ended before we saw it start
        if p.state == "bot":
            return  # a bot has it; its department counts at the hand-over
        if known:
            await self._enqueue(conn, tenant, chat_id, department_id, p.visitor_email)
        else:
            await self._refuse_unknown_department(conn, tenant, chat_id, p.department_id)

    async def on_bot_handed_over(self, event, conn) -> None:
        p = event.bot_handed_over
        tenant = event.tenant
        chat_id = self._chat_id(p.chat_id)
        department_id, known = await self._department_of(conn, tenant, p.department_id)
        await store.insert_chat(conn, tenant, chat_id, department_id, BOT, p.visitor_id, "",
                                p.visitor_email, p.summary, CHATS)
        chat = await store.lock_chat(conn, tenant, chat_id)
        if chat["state"] != BOT:
            return
        if not p.department_id:  # handed over to the department the chat started with
            department_id, known = _id(chat["department_id"]) or None, True
        if known:
            await self._enqueue(conn, tenant, chat_id, department_id, p.visitor_email or chat["visitor_email"])
        else:
            await self._refuse_unknown_department(conn, tenant, chat_id, p.department_id)

    async def on_chat_ended(self, event, conn) -> None:
        payload = event.chat_ended if event.type == "chat_ended" else event.chat_completed
        tenant = event.tenant
        chat_id = self._chat_id(payload.chat_id)
        chat = await store.lock_chat(conn, tenant, chat_id)
        if chat is None:
            await store.tombstone(conn, tenant, chat_id, CHATS)
            return
        if chat["state"] in (ENDED, MISSED):
            return
        queues: list[Queue] = [(tenant, _id(chat["department_id"]) or None)]
        if chat["state"] == ASSIGNED:
            await store.release_capacity(conn, tenant, chat["agent_id"])
            await store.release_assignment(conn, tenant, chat["id"])
            queues += await self._agent_queues(conn, tenant, str(chat["agent_id"]))
        await self._take_offers(conn, tenant, chat["id"])
        pending = await store.pending_transfer_of_chat(conn, tenant, chat["id"])
        if pending is not None:
            await store.finish_transfer(conn, tenant, pending["id"], "declined", None, "chat ended")
            await timers.cancel(conn, tenant, TRANSFER_TIMEOUT, str(pending["id"]))
        await store.set_chat_ended(conn, tenant, chat["id"])
        await self._route_now(conn, queues)  # freed capacity pulls the queue

    async def on_chat_reopened(self, event, conn) -> None:
        p = event.chat_reopened
        tenant = event.tenant
        chat_id = self._chat_id(p.chat_id)
        chat = await store.lock_chat(conn, tenant, chat_id)
        if chat is None:
            department_id, known = await self._department_of(conn, tenant, p.department_id)
            await store.insert_chat(conn, tenant, chat_id, department_id, ENDED, "", "", "", "", CHATS)
            chat = await store.lock_chat(conn, tenant, chat_id)
        if chat["state"] not in (ENDED, MISSED):
            return
        if chat["department_id"] is not None:
            department_id, known = str(chat["department_id"]), True
        else:
            department_id, known = await self._department_of(conn, tenant, p.department_id)
        if not known:
            return await self._refuse_unknown_department(conn, tenant, chat_id, p.department_id)
        previous = None
        if p.agent_id:
            try:
                previous = await store.agent(conn, tenant, str(uuid.UUID(p.agent_id)))
            except ValueError:
                previous = None
        if previous is not None and previous["availability"] == "online" \
                and previous["active_chats"] < previous["max_chats"]:
            await store.enqueue(conn, tenant, chat["id"], department_id, chat["crm"], chat["priority"])
            chat = await store.lock_chat(conn, tenant, chat_id)
            try:
                async with conn.transaction():  # savepoint: at capacity after all -> the queue
                    _, queues = await self._assign(conn, tenant, chat, previous, "assigned", None)
                await self._route_now(conn, queues)
                return
            except FailedPrecondition:
                pass
        await self._enqueue(conn, tenant, chat["id"], department_id, chat["visitor_email"])

    # --- transfer and invitation (ROUT-06, ROUT-07) ----------------------------------------

    async def transfer_chat(self, identity: Identity, chat_id: str, to_email: str, to_department: str,
                            note: str, request_id: str = "") -> asyncpg.Record:
        """A transfer waiting for its target's answer. A retry with the same request_id
        returns the transfer the first call created (as it is now) instead of a second one."""
        tenant = identity.tenant
        chat_id = parse_uuid(chat_id, "chat_id")
        if bool(to_email) == bool(to_department):
            raise InvalidArgument("give exactly one of to_agent_email and to_department_name")
        note = _clean_note(note)
        fingerprint = fingerprint_of(identity.role, identity.sub, chat_id, to_email.strip().lower(),
                                     to_department.strip(), note)

        async def work(conn):
            chat = await self._locked_chat(conn, tenant, chat_id)
            claim = await claim_request(conn, tenant, "TransferChat", request_id, fingerprint)
            if claim.result_id:
                return await store.transfer(conn, tenant, claim.result_id)
            if chat["state"] != ASSIGNED:
                raise FailedPrecondition(f"chat {chat_id} is {chat['state']}; only an assigned chat can be transferred")
            owner = str(chat["agent_id"])
            if identity.role == "agent" and str((await self._me(conn, identity))["id"]) != owner:
                raise PermissionDenied("only the agent who has the chat can transfer it")
            if await store.pending_transfer_of_chat(conn, tenant, chat["id"]) is not None:
                raise FailedPrecondition(f"chat {chat_id} already has a transfer waiting for an answer")
            to_agent = to_dept = None
            if to_email:
                target = await self._agent(conn, tenant, email=to_email)
                if str(target["id"]) == owner:
                    raise InvalidArgument("cannot transfer a chat to the agent who already has it")
                if target["availability"] != "online":
                    raise FailedPrecondition(f"agent {target['email']} is {target['availability']}")
                if target["active_chats"] >= target["max_chats"]:
                    raise FailedPrecondition(f"agent {target['email']} is at their maximum of {target['max_chats']} chats")
                to_agent = str(target["id"])
                dept = await store.department(conn, tenant, chat["department_id"])
            else:
                dept = await store.department_by_name(conn, tenant, to_department.strip())
                if dept is None:
                    raise NotFound(f"no department named {to_department!r}")
                able = [c for c in await store.candidates(conn, tenant, str(dept["id"])) if c.agent_id != owner]
                if not able:
                    raise FailedPrecondition(f"no agent of department {dept['name']} is online with a free slot")
                to_dept = str(dept["id"])
            timeout = dept["accept_timeout_seconds"] if dept else DEFAULT_ACCEPT_TIMEOUT
            row = await store.insert_transfer(conn, tenant, chat["id"], owner, to_agent, to_dept, note)
            await claim.record(conn, str(row["id"]))
            await timers.schedule(conn, tenant, TRANSFER_TIMEOUT, str(row["id"]), delay=timeout)
            await self.ctx.outbox.add(conn, tenant, ev.TransferRequested(
                chat_id=str(chat["id"]), from_agent_id=owner, to_agent_id=to_agent or "",
                to_department_id=to_dept or "", to_department_name=dept["name"] if to_dept else "",
                note=note, transfer_id=str(row["id"])))
            return row

        return await self.arrivals.run_for_chat(tenant, chat_id, lambda: self._tx(work))

    async def answer_transfer(self, identity: Identity, transfer_id: str, accept: bool, reason: str) -> asyncpg.Record:
        tenant = identity.tenant
        transfer_id = parse_uuid(transfer_id, "transfer_id")
        reason = (reason or "").strip()[:500]
        queues: list[Queue] = []

        async def work(conn):
            found = await store.transfer(conn, tenant, transfer_id)
            if found is None:
                raise NotFound(f"transfer {transfer_id} does not exist")
            chat = await store.lock_chat(conn, tenant, found["chat_id"])
            t = await store.lock_transfer(conn, tenant, found["id"])
            me = await self._me(conn, identity)
            my_id = str(me["id"])
            if t["state"] != "pending":
                raise FailedPrecondition(f"transfer {transfer_id} was already {t['state']}")
            if t["to_agent_id"] is not None and str(t["to_agent_id"]) != my_id:
                raise PermissionDenied("this transfer is addressed to another agent")
            if t["to_department_id"] is not None:
                if my_id == str(t["from_agent_id"]) \
                        or not await store.is_department_member(conn, tenant, t["to_department_id"], me["id"]):
                    raise PermissionDenied("this transfer is addressed to a department you are not in")
                if await store.has_declined_transfer(conn, tenant, t["id"], me["id"]):
                    raise FailedPrecondition(f"you already declined transfer {transfer_id}")
            if not accept:
                if t["to_department_id"] is not None:
                    await store.record_transfer_decline(conn, tenant, t["id"], me["id"], reason)
                    if await store.department_agents_left_to_answer(conn, tenant, t) > 0:
                        return t  # others of the department may still take it
                return await self._transfer_declined(conn, tenant, t, chat, reason or "declined", my_id, queues)
            queues.extend((await self._assign(conn, tenant, chat, me, "transferred", str(t["from_agent_id"])))[1])
            await timers.cancel(conn, tenant, TRANSFER_TIMEOUT, str(t["id"]))
            return await store.finish_transfer(conn, tenant, t["id"], "accepted", me["id"], "")

        row = await self._tx(work)
        self._kick(queues)
        return row

    async def _transfer_declined(self, conn, tenant, t, chat, reason: str, answered_by: str | None,
                                 queues: list[Queue]) -> asyncpg.Record:
        """The chat stays with its agent, or goes back to the queue when that agent has gone offline."""
        await timers.cancel(conn, tenant, TRANSFER_TIMEOUT, str(t["id"]))
        row = await store.finish_transfer(conn, tenant, t["id"], "declined", answered_by, reason)
        previous = await store.agent(conn, tenant, t["from_agent_id"])
        returned = previous["availability"] == "offline" and chat["state"] == ASSIGNED \
            and chat["agent_id"] == t["from_agent_id"]
        if returned:
            await store.release_capacity(conn, tenant, t["from_agent_id"])
            await store.release_assignment(conn, tenant, chat["id"])
            queues.extend(await self._agent_queues(conn, tenant, str(t["from_agent_id"])))
            await self._enqueue(conn, tenant, chat["id"], _id(chat["department_id"]) or None, chat["visitor_email"])
        await self.ctx.outbox.add(conn, tenant, ev.TransferDeclined(
            chat_id=str(chat["id"]), from_agent_id=str(t["from_agent_id"]), to_agent_id=answered_by or _id(t["to_agent_id"]),
            note=t["note"], reason=reason, returned_to_queue=returned, transfer_id=str(t["id"]),
            to_department_id=_id(t["to_department_id"])))
        return row

    async def on_transfer_timeout(self, timer, conn) -> None:
        found = await store.transfer(conn, timer.tenant, timer.key)
        if found is None or found["state"] != "pending":
            return
        locked, chat = await store.try_lock_chat(conn, timer.tenant, found["chat_id"])
        if not locked:
            return await self._retry_timer_later(conn, timer)
        t = await store.lock_transfer(conn, timer.tenant, found["id"])
        if t["state"] != "pending":
            return
        queues: list[Queue] = []
        await self._transfer_declined(conn, timer.tenant, t, chat, "timeout", None, queues)
        await self._route_now(conn, queues)

    async def list_transfers(self, identity: Identity) -> list[asyncpg.Record]:
        async with self.ctx.pool.acquire() as conn:
            me = await self._me(conn, identity)
            return await store.transfers_for_agent(conn, identity.tenant, str(me["id"]))

    async def invite_agent(self, identity: Identity, chat_id: str, email: str, agent_id: str,
                           note: str) -> asyncpg.Record:
        """Its natural key is (chat, agent): a retry is refused as "already in this chat",
        never a second membership, so it takes no request id."""
        tenant = identity.tenant
        chat_id = parse_uuid(chat_id, "chat_id")
        if bool(email) == bool(agent_id):
            raise InvalidArgument("give exactly one of agent_email and agent_id")
        note = _clean_note(note)

        async def work(conn):
            chat = await self._locked_chat(conn, tenant, chat_id)
            if chat["state"] != ASSIGNED:
                raise FailedPrecondition(f"chat {chat_id} is {chat['state']}; agents can be invited into assigned chats only")
            by = str(chat["agent_id"])
            if identity.role == "agent":
                me = await self._me(conn, identity)
                if me["id"] != chat["agent_id"] and not await store.is_member(conn, tenant, chat["id"], me["id"]):
                    raise PermissionDenied("only the chat's agents can invite others into it")
                by = str(me["id"])
            target = await self._agent(conn, tenant, agent_id, email)
            if target["id"] == chat["agent_id"]:
                raise InvalidArgument(f"agent {target['email']} already has this chat")
            if target["availability"] != "online":
                raise FailedPrecondition(f"agent {target['email']} is {target['availability']}")
            if not await store.add_member(conn, tenant, chat["id"], target["id"], by, note):
                raise FailedPrecondition(f"agent {target['email']} is already in this chat")
            await self.ctx.outbox.add(conn, tenant, ev.AgentInvited(
                chat_id=str(chat["id"]), agent_id=str(target["id"]), agent_name=target["name"], by_agent_id=by, note=note))
            return target

        return await self.arrivals.run_for_chat(tenant, chat_id, lambda: self._tx(work))

    async def list_members(self, identity: Identity, chat_id: str) -> tuple[asyncpg.Record | None, list[asyncpg.Record]]:
        tenant = identity.tenant
        chat_id = parse_uuid(chat_id, "chat_id")

        async def look():
            async with self.ctx.pool.acquire() as conn:
                chat = await self._known_chat(conn, tenant, chat_id)
                if identity.role == "visitor" and chat["visitor_id"] != identity.sub:
                    raise PermissionDenied("a visitor may only see the members of their own chat")
                owner = await store.agent(conn, tenant, chat["agent_id"]) if chat["agent_id"] else None
                return owner, await store.members(conn, tenant, chat["id"])

        return await self.arrivals.run_for_chat(tenant, chat_id, look)

    # --- team messaging (ROUT-08) --------------------------------------------------------

    async def send_team_message(self, identity: Identity, to_id: str, to_email: str, text: str,
                                request_id: str = "") -> asyncpg.Record:
        """A direct message or a board post. A retry with the same request_id returns the
        message the first call sent instead of sending it twice."""
        text = (text or "").strip()
        if not text:
            raise InvalidArgument("text is required")
        if len(text) > 4000:
            raise InvalidArgument("text is longer than 4000 characters")
        if to_id and to_email:
            raise InvalidArgument("give to_agent_id or to_agent_email, not both")

        async def work(conn):
            me = await self._me(conn, identity)
            claim = await claim_request(conn, identity.tenant, "SendTeamMessage", request_id, fingerprint_of(
                str(me["id"]), to_id, to_email.strip().lower(), text))
            if claim.result_id:
                return await store.team_message(conn, identity.tenant, claim.result_id)
            to = None
            if to_id or to_email:
                target = await self._agent(conn, identity.tenant, to_id, to_email, what="recipient")
                if target["id"] == me["id"]:
                    raise InvalidArgument("cannot send a direct message to yourself")
                to = target["id"]
            row = await store.insert_team_message(conn, identity.tenant, me["id"], to, text)
            await claim.record(conn, str(row["id"]))
            await store.notify(conn, TEAM, identity.tenant)
            return row

        return await self._tx(work)

    async def list_team_messages(self, identity: Identity, board: bool, with_agent: str, after_seq: int,
                                 limit: int) -> list[asyncpg.Record]:
        limit = limit or 50
        if not 1 <= limit <= 500:
            raise InvalidArgument(f"limit must be between 1 and 500, got {limit}")
        if after_seq < 0:
            raise InvalidArgument("after_seq cannot be negative")
        if board and with_agent:
            raise InvalidArgument("ask for the board or for one agent's conversation, not both")
        async with self.ctx.pool.acquire() as conn:
            me = await self._me(conn, identity)
            other = None
            if with_agent:
                other = (await self._agent(conn, identity.tenant, agent_id=with_agent))["id"]
            return await store.team_messages(conn, identity.tenant, me["id"], board, other, after_seq, limit)

    async def visible_team_messages(self, tenant: str, agent_id: str, after_seq: int) -> list[asyncpg.Record]:
        async with self.ctx.pool.acquire() as conn:
            return await store.team_messages(conn, tenant, agent_id, False, None, after_seq, 500)


def _clean_note(note: str) -> str:
    note = (note or "").strip()
    if len(note) > 1000:
        raise InvalidArgument("note is longer than 1000 characters")
    return note
