"""The routing pass: offer a queue's waiting chats to the agents who may take them.

A pass runs for one queue (a tenant's department, or its chats without a department),
under that queue's transaction-scoped advisory lock, so passes of one queue never
interleave, whichever replica runs them. It walks the waiting chats in queue order
(priority rule, then arrival) and hands out *offer slots*: an agent holds at most
max_chats - active_chats open offers, so the chats at the head of the queue are offered
first and a flood of chats never turns into a flood of offers.

Who is asked, per chat, in this order of groups (a group is left for the next one only
once every member has declined it or let it time out):
  1. the agents of the first matching assignment rule who are online below their maximum;
  2. for a CRM-owner department, the CRM record's owner when online below their maximum;
  3. the department's online agents (the whole tenant's for a chat without department).
Ring-all offers the chat to every untried member with a free slot at once; round robin,
least loaded and CRM owner offer it to one agent and wait for the accept timeout.

Passes run inside the transaction that changed the queue (an event, a timer) or, after
an RPC commits, in the background (`kick`); a periodic sweep on every replica catches up
whatever a crash between commit and kick left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from kaiwa.events.v1 import routing_pb2 as ev

from kaiwa_common import timers
from kaiwa_common.db import unit_of_work
from kaiwa_common.loops import every

from . import store
from .domain.model import DEFAULT_ACCEPT_TIMEOUT, OFFER_TIMEOUT, Candidate
from .domain.rules import first_match
from .domain.strategy import choose, fallback_strategy

log = logging.getLogger("kaiwa.routing.router")

PAGE = 50
MAX_SCAN = 1000  # chats looked at per pass; the sweep comes back for the rest


def queue_key(tenant: str, department_id: str | None) -> str:
    return f"{tenant}|{department_id or ''}"


class Router:
    def __init__(self, ctx, sweep_interval: float):
        self.ctx = ctx
        self.sweep_interval = sweep_interval
        self._dirty: dict[tuple[str, str | None], bool] = {}
        self._tasks: set[asyncio.Task] = set()
        self._closing = False

    # --- the pass ---------------------------------------------------------------------

    async def route_queue(self, conn, tenant: str, department_id: str | None) -> int:
        """Offer what can be offered now; returns the number of chats offered."""
        return (await self.route_part(conn, tenant, department_id, None, MAX_SCAN))[0]

    async def route_part(self, conn, tenant: str, department_id: str | None, after, max_scan: int) -> tuple[int, tuple | None]:
        """A pass over at most `max_scan` waiting chats after the queue key `after` (None: from
        the head). Returns the chats offered and, when it stopped at `max_scan` with agents
        still able to take offers, the key to go on from (else None)."""
        if not await store.queue.has_waiting(conn, tenant, department_id):
            return 0, None
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "routing:" + queue_key(tenant, department_id))
        dept = await store.departments.get(conn, tenant, department_id)
        strategy = dept["strategy"] if dept else "ring_all"
        accept_timeout = dept["accept_timeout_seconds"] if dept else DEFAULT_ACCEPT_TIMEOUT
        pool = await store.agents.candidates(conn, tenant, department_id)
        rules = [r for r in await store.rules.of_kind(conn, tenant, "assignment") if r.applies_to(department_id)]
        everyone = pool
        if department_id is not None and (rules or strategy == "crm_owner"):
            everyone = await store.agents.candidates(conn, tenant, None)
        slots = {c.agent_id: c.free_slots for c in everyone}
        by_id = {c.agent_id: c for c in everyone}
        by_email = {c.email: c for c in everyone}
        pool_group = (fallback_strategy(strategy), pool, frozenset(c.agent_id for c in pool))
        # One offer at a time everywhere (no ring-all group possible): chats with an open
        # offer need nothing now, so the scan skips them in SQL.
        single_only = strategy in ("round_robin", "least_loaded")
        offered_chats = scanned = 0
        with_room = sum(1 for n in slots.values() if n > 0)  # agents who can take another offer
        page = None
        while scanned < max_scan and with_room:
            page = await store.queue.page(conn, tenant, department_id, min(PAGE, max_scan - scanned), after, single_only)
            if not page:
                break
            scanned += len(page)
            last = page[-1]
            after = (last["priority_rank"], last["queued_at"], last["id"])
            asked: dict = defaultdict(lambda: defaultdict(set))
            for row in await store.offers.asked(conn, tenant, [c["id"] for c in page]):
                asked[row["chat_id"]][row["kind"]].add(str(row["agent_id"]))
            for chat in page:
                if not with_room:
                    break
                groups = self._groups(chat, strategy, pool_group, by_id, by_email, rules, department_id)
                mode, chosen = self._pick(groups, asked[chat["id"]], slots)
                offered = await self._offer(conn, tenant, chat, mode, chosen, accept_timeout) if chosen else []
                for agent_id in offered:
                    slots[agent_id] -= 1
                    with_room -= slots[agent_id] == 0
                offered_chats += bool(offered)
        more = scanned >= max_scan and with_room and page
        return offered_chats, after if more else None

    def _groups(self, chat, strategy, pool_group, by_id, by_email, rules, department_id) -> list:
        """(mode, members, member ids) to ask, in order; the department's pool last."""
        facts = chat["crm"]
        groups = []
        rule = first_match(rules, "assignment", department_id, facts) if rules else None
        if rule is not None:
            members = [by_id[a] for a in rule.agent_ids if a in by_id]
            if members:
                groups.append((fallback_strategy(strategy), members, frozenset(c.agent_id for c in members)))
        if strategy == "crm_owner" and facts and facts.get("owner") in by_email:
            owner = by_email[facts["owner"]]
            groups.append(("crm_owner", [owner], frozenset([owner.agent_id])))
        groups.append(pool_group)
        return groups

    @staticmethod
    def _pick(groups, asked, slots) -> tuple[str, list[Candidate]]:
        offered, declined, timed_out = asked["offered"], asked["declined"], asked["timeout"]
        for mode, group, ids in groups:
            live = ids & offered if offered else offered
            untried = ids - offered - declined - timed_out if (offered or declined or timed_out) else ids
            if not (live or untried):
                continue  # everyone here said no or let it ring out: the next group
            if mode != "ring_all" and live:
                return mode, []  # one offer at a time: wait for the answer
            return mode, choose(mode, [c for c in group if slots[c.agent_id] > 0 and c.agent_id in untried])
        # Everyone was asked: ask again those who let it time out (not those who declined).
        mode, group, _ = groups[-1]
        retry = [c for c in group if c.agent_id in timed_out and c.agent_id not in offered and slots[c.agent_id] > 0]
        return mode, choose(mode, retry)

    async def _offer(self, conn, tenant, chat, mode, chosen, accept_timeout) -> list[str]:
        """The agents the chat is now offered to: those chosen who are still online (the
        candidates were read earlier in the pass; see store.offers.offer_chat). []: the chat is
        locked by another transaction, no longer waits, or nobody chosen is online now."""
        single = mode != "ring_all"
        offered = await store.offers.offer_chat(
            conn, tenant, chat["id"], chat["department_id"], [c.agent_id for c in chosen], single
        )
        if not offered:
            return []
        department_id = str(chat["department_id"]) if chat["department_id"] else ""
        if single:
            await timers.schedule(
                conn, tenant, OFFER_TIMEOUT, str(chat["id"]), delay=accept_timeout, payload={"agent_id": offered[0]}
            )
        await self.ctx.outbox.add(
            conn, tenant, ev.ChatOffered(chat_id=str(chat["id"]), department_id=department_id, agent_ids=offered)
        )
        return offered

    # --- background passes ------------------------------------------------------------

    def kick(self, tenant: str, department_id: str | None) -> None:
        """Run a pass for this queue soon, in this process (after the caller committed).
        Shutting down: nothing (the sweep of any replica, or of this one restarted, does it)."""
        if self._closing:
            return
        key = (tenant, department_id)
        if key in self._dirty:
            self._dirty[key] = True  # a pass is running: run once more after it
            return
        self._dirty[key] = False
        task = asyncio.get_running_loop().create_task(self._run(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key) -> None:
        tenant, department_id = key
        try:
            while True:
                self._dirty[key] = False
                try:
                    # One page per transaction: offers reach agents (and can be accepted)
                    # while the pass goes on, instead of all at its end. Passes of this
                    # queue elsewhere may run in between; each chunk re-reads the state.
                    after, scanned = None, 0
                    while scanned < MAX_SCAN and not self._closing:
                        async with unit_of_work(self.ctx.pool) as conn:
                            _, after = await self.route_part(conn, tenant, department_id, after, PAGE)
                        scanned += PAGE
                        if after is None:
                            break
                except Exception as exc:  # the sweep will come back to this queue
                    log.warning("routing pass failed", extra={"fields": {"tenant": tenant, "error": repr(exc)}})
                    return
                if not self._dirty.get(key) or self._closing:
                    return
        finally:
            self._dirty.pop(key, None)

    async def sweep(self, stop: asyncio.Event) -> None:
        """Every `sweep_interval`, a pass for every queue with waiting chats (crash catch-up)."""
        await every(self.sweep_interval, stop, self._sweep_once, "routing sweep")

    async def _sweep_once(self) -> None:
        async with self.ctx.pool.acquire() as conn:
            queues = await store.background.queues_with_chats(conn)
        for row in queues:
            self.kick(row["tenant"], str(row["department_id"]) if row["department_id"] else None)

    async def close(self, grace: float = 5.0) -> None:
        """Stop background passes: no new ones, the running ones end after their current
        page (one transaction), and only those still running after `grace` are cancelled.

        Never cancelled twice: a task cancelled in the middle of a query rolls its
        transaction back when it unwinds, but a second cancellation during that rollback
        leaves the connection inside the transaction, and asyncpg reports it when the
        pool takes it back ("Resetting connection with an active transaction"). So the
        passes are awaited with asyncio.wait, which leaves them alone if close() itself is
        cancelled (as the service's shutdown does to its workers), never with gather."""
        self._closing = True
        running = set(self._tasks)
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
