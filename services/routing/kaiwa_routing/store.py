"""asyncpg queries of the routing schema. Every function takes the tenant and every
statement filters by it (joins too: `x.tenant = y.tenant AND x.id = y.x_id`), matching keys
that all start with the tenant (migrations/003). The only statements spanning tenants find
background work (`queues_with_chats`) or clean up after it (`forget_announcements`).

Lock order, kept everywhere so concurrent transactions never deadlock: a chat row, then
agent rows; a routing pass takes its queue's advisory lock first and only ever locks chats
with SKIP LOCKED, so it never waits on a chat. Agent rows: `SetAvailability` alone takes
FOR UPDATE (it waits for passes offering to that agent, see `offer_chat`); capacity changes
take FOR NO KEY UPDATE, which passes' FOR KEY SHARE never waits for.
"""

from __future__ import annotations

import uuid

import asyncpg

from .domain.model import Candidate
from .domain.rules import Condition, Rule

Conn = asyncpg.Connection


def new_id() -> str:
    return str(uuid.uuid4())


# --- departments -----------------------------------------------------------------------

async def upsert_department(conn: Conn, tenant: str, name: str, strategy: str, accept_timeout: float,
                            max_wait: float) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO departments (id, tenant, name, strategy, accept_timeout_seconds, max_wait_seconds) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, name) DO UPDATE SET strategy = EXCLUDED.strategy, "
        "accept_timeout_seconds = EXCLUDED.accept_timeout_seconds, max_wait_seconds = EXCLUDED.max_wait_seconds "
        "RETURNING *", uuid.uuid4(), tenant, name, strategy, accept_timeout, max_wait)


async def list_departments(conn: Conn, tenant: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM departments WHERE tenant = $1 ORDER BY name", tenant)


async def department(conn: Conn, tenant: str, department_id: str | None) -> asyncpg.Record | None:
    if department_id is None:
        return None
    return await conn.fetchrow("SELECT * FROM departments WHERE tenant = $1 AND id = $2", tenant, department_id)


async def department_by_name(conn: Conn, tenant: str, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM departments WHERE tenant = $1 AND name = $2", tenant, name)


async def existing_departments(conn: Conn, tenant: str, ids: list[str]) -> set[str]:
    rows = await conn.fetch("SELECT id FROM departments WHERE tenant = $1 AND id = ANY($2::uuid[])", tenant, ids)
    return {str(r["id"]) for r in rows}


# --- agents ----------------------------------------------------------------------------

_AGENT = ("SELECT a.*, coalesce(array_agg(da.department_id ORDER BY da.department_id) "
          "FILTER (WHERE da.department_id IS NOT NULL), '{}') AS department_ids "
          "FROM agents a LEFT JOIN department_agents da ON da.tenant = a.tenant AND da.agent_id = a.id ")


async def agent(conn: Conn, tenant: str, agent_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_AGENT + "WHERE a.tenant = $1 AND a.id = $2 GROUP BY a.tenant, a.id", tenant, agent_id)


async def agent_by_email(conn: Conn, tenant: str, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_AGENT + "WHERE a.tenant = $1 AND a.email = $2 GROUP BY a.tenant, a.id", tenant, email)


async def list_agents(conn: Conn, tenant: str, department_id: str | None) -> list[asyncpg.Record]:
    if department_id is None:
        return await conn.fetch(_AGENT + "WHERE a.tenant = $1 GROUP BY a.tenant, a.id ORDER BY a.email", tenant)
    return await conn.fetch(
        _AGENT + "WHERE a.tenant = $1 AND a.id IN (SELECT agent_id FROM department_agents "
        "WHERE tenant = $1 AND department_id = $2) GROUP BY a.tenant, a.id ORDER BY a.email", tenant, department_id)


async def lock_agent_by_email(conn: Conn, tenant: str, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM agents WHERE tenant = $1 AND email = $2 FOR UPDATE", tenant, email)


async def insert_agent(conn: Conn, tenant: str, email: str, name: str, max_chats: int) -> str:
    agent_id = new_id()
    await conn.execute("INSERT INTO agents (id, tenant, email, name, max_chats) VALUES ($1, $2, $3, $4, $5)",
                       agent_id, tenant, email, name, max_chats)
    return agent_id


async def update_agent(conn: Conn, tenant: str, agent_id: str, name: str, max_chats: int) -> None:
    await conn.execute("UPDATE agents SET name = $3, max_chats = $4 WHERE tenant = $1 AND id = $2",
                       tenant, agent_id, name, max_chats)


async def set_departments(conn: Conn, tenant: str, agent_id: str, department_ids: list[str]) -> None:
    await conn.execute("DELETE FROM department_agents WHERE tenant = $1 AND agent_id = $2 "
                       "AND NOT (department_id = ANY($3::uuid[]))", tenant, agent_id, department_ids)
    await conn.executemany(
        "INSERT INTO department_agents (tenant, department_id, agent_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(tenant, d, agent_id) for d in department_ids])


async def set_availability(conn: Conn, tenant: str, agent_id: str, availability: str) -> str | None:
    """Sets it and returns the previous availability (None: no such agent)."""
    return await conn.fetchval(
        "UPDATE agents a SET availability = $3 FROM (SELECT id, availability FROM agents WHERE tenant = $1 AND id = $2 "
        "FOR UPDATE) old WHERE a.tenant = $1 AND a.id = old.id RETURNING old.availability", tenant, agent_id, availability)


async def agent_departments(conn: Conn, tenant: str, agent_id: str) -> list[str]:
    rows = await conn.fetch("SELECT department_id FROM department_agents WHERE tenant = $1 AND agent_id = $2",
                            tenant, agent_id)
    return [str(r["department_id"]) for r in rows]


async def agent_row(conn: Conn, tenant: str, agent_id: str) -> asyncpg.Record | None:
    """The agent without their departments (cheaper than `agent`)."""
    return await conn.fetchrow("SELECT * FROM agents WHERE tenant = $1 AND id = $2", tenant, agent_id)


async def lock_agents(conn: Conn, tenant: str, agent_ids: list[str]) -> None:
    """Both agents of a move, in id order (crossing moves cannot deadlock). NO KEY UPDATE,
    like the capacity UPDATE itself: passes holding FOR KEY SHARE do not block it."""
    await conn.execute("SELECT 1 FROM agents WHERE tenant = $1 AND id = ANY($2::uuid[]) ORDER BY id "
                       "FOR NO KEY UPDATE", tenant, agent_ids)


async def release_capacity(conn: Conn, tenant: str, agent_id: str) -> None:
    await conn.execute("UPDATE agents SET active_chats = active_chats - 1 WHERE tenant = $1 AND id = $2",
                       tenant, agent_id)


async def candidates(conn: Conn, tenant: str, department_id: str | None) -> list[Candidate]:
    """Online agents below their maximum, of the department (of the tenant for no department)."""
    query = (
        "SELECT a.id, a.email, a.active_chats, a.max_chats, a.last_assigned_at, {offered} AS last_offered_at, "
        "a.max_chats - a.active_chats - (SELECT count(*) FROM offers o WHERE o.tenant = a.tenant AND o.agent_id = a.id) "
        "AS free_slots "
        "FROM agents a {join} WHERE a.tenant = $1 AND a.availability = 'online' AND a.active_chats < a.max_chats")
    if department_id is None:
        rows = await conn.fetch(query.format(offered="NULL::timestamptz", join=""), tenant)
    else:
        rows = await conn.fetch(query.format(
            offered="da.last_offered_at",
            join="JOIN department_agents da ON da.tenant = a.tenant AND da.agent_id = a.id AND da.department_id = $2"),
            tenant, department_id)
    return [Candidate(agent_id=str(r["id"]), email=r["email"], active_chats=r["active_chats"],
                      max_chats=r["max_chats"], free_slots=r["free_slots"], last_assigned_at=r["last_assigned_at"],
                      last_offered_at=r["last_offered_at"]) for r in rows]


async def capacity_overview(conn: Conn, tenant: str, department_id: str | None) -> asyncpg.Record:
    """Online agents, their total capacity and free slots (for estimates and missed reasons)."""
    if department_id is None:
        scope, args = "", (tenant,)
    else:
        scope = "AND a.id IN (SELECT agent_id FROM department_agents WHERE tenant = $1 AND department_id = $2)"
        args = (tenant, department_id)
    return await conn.fetchrow(
        "SELECT count(*) AS online, coalesce(sum(max_chats), 0) AS capacity, "
        "coalesce(sum(max_chats - active_chats), 0) AS free FROM agents a "
        f"WHERE a.tenant = $1 AND a.availability = 'online' {scope}", *args)


# --- chats -----------------------------------------------------------------------------

async def lock_chat(conn: Conn, tenant: str, chat_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM chats WHERE tenant = $1 AND id = $2 FOR UPDATE", tenant, chat_id)


async def chat(conn: Conn, tenant: str, chat_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM chats WHERE tenant = $1 AND id = $2", tenant, chat_id)


async def insert_chat(conn: Conn, tenant: str, chat_id: str, department_id: str | None, state: str,
                      visitor_id: str, visitor_name: str, visitor_email: str, question: str,
                      arrival_channel: str) -> bool:
    """False when routing already knows the chat (a redelivered or late event). A new chat
    wakes, at commit, the calls waiting for it (NOTIFY <tenant>/<chat id>, see arrivals.py)."""
    return bool(await conn.fetchval(
        "WITH added AS (INSERT INTO chats (id, tenant, department_id, state, visitor_id, visitor_name, visitor_email, "
        "  question) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, id) DO NOTHING RETURNING id), "
        "woken AS (SELECT pg_notify($9, $2 || '/' || id::text) FROM added) "
        "SELECT EXISTS (SELECT 1 FROM added) AND (SELECT count(*) FROM woken) >= 0",
        chat_id, tenant, department_id, state, visitor_id, visitor_name, visitor_email, question, arrival_channel))


async def enqueue(conn: Conn, tenant: str, chat_id: str, department_id: str | None, crm: dict | None,
                  priority: int) -> None:
    await conn.execute(
        "UPDATE chats SET state = 'queued', department_id = $3, crm = $4, priority = $5, "
        "priority_rank = CASE WHEN $5 > 0 THEN $5 ELSE 2147483647 END, queued_at = now(), agent_id = NULL, "
        "assigned_at = NULL, ended_at = NULL, missed_reason = NULL, waited_seconds = NULL "
        "WHERE tenant = $1 AND id = $2", tenant, chat_id, department_id, crm, priority)


async def set_chat_ended(conn: Conn, tenant: str, chat_id: str) -> None:
    await conn.execute("UPDATE chats SET state = 'ended', agent_id = NULL, ended_at = now() WHERE tenant = $1 AND id = $2",
                       tenant, chat_id)


async def set_chat_missed(conn: Conn, tenant: str, chat_id: str, reason: str, waited: int) -> None:
    await conn.execute("UPDATE chats SET state = 'missed', ended_at = now(), missed_reason = $3, waited_seconds = $4 "
                       "WHERE tenant = $1 AND id = $2", tenant, chat_id, reason, waited)


async def tombstone(conn: Conn, tenant: str, chat_id: str, arrival_channel: str) -> None:
    """An end that arrives before its start: remember it so the start is ignored."""
    await conn.execute(
        "WITH added AS (INSERT INTO chats (id, tenant, state, ended_at) VALUES ($1, $2, 'ended', now()) "
        "  ON CONFLICT (tenant, id) DO NOTHING RETURNING id) "
        "SELECT pg_notify($3, $2 || '/' || id::text) FROM added", chat_id, tenant, arrival_channel)


async def queued_page(conn: Conn, tenant: str, department_id: str | None, limit: int, after: tuple | None,
                      without_offers: bool) -> list[asyncpg.Record]:
    """Waiting chats in queue order after the key `after` (keyset pages: offers made
    meanwhile do not shift them); `without_offers` leaves out chats with an open offer."""
    return await conn.fetch(
        "SELECT id, department_id, crm, queued_at, priority, priority_rank FROM chats c WHERE tenant = $1 "
        "AND department_id IS NOT DISTINCT FROM $2 AND state = 'queued' "
        "AND ($4::int IS NULL OR (priority_rank, queued_at, id) > ($4, $5, $6)) "
        "AND NOT ($7 AND EXISTS (SELECT 1 FROM offers o WHERE o.tenant = c.tenant AND o.chat_id = c.id)) "
        "ORDER BY priority_rank, queued_at, id LIMIT $3", tenant, department_id, limit,
        *(after or (None, None, None)), without_offers)


async def has_waiting(conn: Conn, tenant: str, department_id: str | None) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM chats WHERE tenant = $1 AND department_id IS NOT DISTINCT FROM $2 "
        "AND state = 'queued')", tenant, department_id))


async def try_lock_chat(conn: Conn, tenant: str, chat_id: str) -> tuple[bool, asyncpg.Record | None]:
    """(locked, row) without waiting: (False, None) when another transaction holds the chat."""
    row = await conn.fetchrow("SELECT * FROM chats WHERE tenant = $1 AND id = $2 FOR UPDATE SKIP LOCKED", tenant, chat_id)
    if row is not None:
        return True, row
    exists = await conn.fetchval("SELECT true FROM chats WHERE tenant = $1 AND id = $2", tenant, chat_id)
    return (False, None) if exists else (True, None)


async def queue_position(conn: Conn, tenant: str, chat: asyncpg.Record) -> int:
    return await conn.fetchval(
        "SELECT count(*) + 1 FROM chats WHERE tenant = $1 AND department_id IS NOT DISTINCT FROM $2 AND state = 'queued' "
        "AND (priority_rank, queued_at, id) < ($3, $4, $5)",
        tenant, chat["department_id"], chat["priority_rank"], chat["queued_at"], chat["id"])


async def queue_with_positions(conn: Conn, tenant: str, department_id: str | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT c.id, c.department_id, c.priority, c.queued_at, a.position AS last_position, "
        "row_number() OVER (ORDER BY c.priority_rank, c.queued_at, c.id) AS position FROM chats c "
        "LEFT JOIN queue_announcements a ON a.tenant = c.tenant AND a.chat_id = c.id "
        "WHERE c.tenant = $1 AND c.department_id IS NOT DISTINCT FROM $2 AND c.state = 'queued' "
        "ORDER BY c.priority_rank, c.queued_at, c.id LIMIT $3", tenant, department_id, limit)


async def record_announcements(conn: Conn, tenant: str, positions: list[tuple[str, int]]) -> None:
    await conn.executemany(
        "INSERT INTO queue_announcements (chat_id, tenant, position) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant, chat_id) DO UPDATE SET position = EXCLUDED.position, at = now()",
        [(chat_id, tenant, position) for chat_id, position in positions])


async def forget_announcements(conn: Conn) -> None:
    """Announcements of chats that no longer wait, in every tenant (a clean-up after the
    announcer; joined on the tenant like everything else)."""
    await conn.execute("DELETE FROM queue_announcements a USING chats c "
                       "WHERE c.tenant = a.tenant AND c.id = a.chat_id AND c.state <> 'queued'")


async def queues_with_chats(conn: Conn) -> list[asyncpg.Record]:
    """Every tenant's queues with waiting chats: where background passes have work."""
    return await conn.fetch("SELECT DISTINCT tenant, department_id FROM chats WHERE state = 'queued'")


async def handling_stats(conn: Conn, tenant: str, department_id: str | None) -> tuple[float | None, float | None]:
    """Mean handling time and mean time-to-assign of the last 50 finished chats (see estimate.py)."""
    query = ("SELECT avg(extract(epoch FROM released_at - assigned_at)) AS handling, "
             "avg(extract(epoch FROM assigned_at - queued_at)) FILTER (WHERE queued_at IS NOT NULL) AS accept "
             "FROM (SELECT * FROM assignments WHERE tenant = $1 {scope} AND released_at IS NOT NULL "
             "ORDER BY released_at DESC LIMIT 50) recent")
    row = None
    if department_id is not None:
        row = await conn.fetchrow(query.format(scope="AND department_id = $2"), tenant, department_id)
    if row is None or row["handling"] is None:
        row = await conn.fetchrow(query.format(scope=""), tenant)
    return (float(row["handling"]) if row["handling"] is not None else None,
            float(row["accept"]) if row["accept"] is not None else None)


async def missed_chats(conn: Conn, tenant: str, department_id: str | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM chats WHERE tenant = $1 AND state = 'missed' AND ($2::uuid IS NULL OR department_id = $2) "
        "ORDER BY ended_at DESC LIMIT $3", tenant, department_id, limit)


# --- offers ----------------------------------------------------------------------------

async def offers_for_chats(conn: Conn, tenant: str, chat_ids: list) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT chat_id, agent_id, 'offered' AS kind FROM offers WHERE tenant = $1 AND chat_id = ANY($2::uuid[]) "
        "UNION ALL SELECT chat_id, agent_id, CASE WHEN declined THEN 'declined' ELSE 'timeout' END FROM offer_refusals "
        "WHERE tenant = $1 AND chat_id = ANY($2::uuid[])", tenant, chat_ids)


async def offer_chat(conn: Conn, tenant: str, chat_id, department_id, agent_ids: list[str], single: bool,
                     channel: str) -> list[str]:
    """Offer a waiting chat, in one statement, to those of `agent_ids` who are online now,
    if the chat can be locked without waiting (SKIP LOCKED) and still waits; for a single
    offer also the department's round-robin mark; the agents offered are woken (NOTIFY
    <tenant>/<agent id>). Returns the agents offered ([]: nothing offered, chat left alone).

    The candidates a pass read a moment ago may be stale; this statement is not. Each agent
    row is taken FOR KEY SHARE with its availability check, and SetAvailability holds the
    row FOR UPDATE until it has withdrawn that agent's offers and committed: either the
    availability change commits first (the re-checked row says away, no offer), or this
    offer commits first (and the availability change then withdraws it). No offer ever
    outlives its agent going away or offline."""
    return list(await conn.fetchval(
        "WITH locked AS (SELECT id FROM chats WHERE tenant = $2 AND id = $1 AND state = 'queued' "
        "  FOR UPDATE SKIP LOCKED), "
        "able AS (SELECT a.id FROM agents a WHERE a.tenant = $2 AND a.id = ANY($3::uuid[]) "
        "  AND a.availability = 'online' AND EXISTS (SELECT 1 FROM locked) ORDER BY a.id FOR KEY SHARE OF a), "
        "offered AS (INSERT INTO offers (tenant, chat_id, agent_id) SELECT $2, locked.id, able.id FROM locked, able "
        "  ON CONFLICT DO NOTHING RETURNING agent_id), "
        "marked AS (UPDATE department_agents SET last_offered_at = clock_timestamp() "
        "  WHERE $4 AND tenant = $2 AND department_id = $5 AND agent_id IN (SELECT agent_id FROM offered)), "
        "woken AS (SELECT pg_notify($6, $2 || '/' || agent_id::text) FROM offered) "
        "SELECT coalesce(array_agg(agent_id::text ORDER BY agent_id), '{}') FROM offered "
        "WHERE (SELECT count(*) FROM woken) >= 0",
        chat_id, tenant, agent_ids, single, department_id, channel))


async def delete_offer(conn: Conn, tenant: str, chat_id: str, agent_id: str) -> bool:
    return bool(await conn.fetchval(
        "DELETE FROM offers WHERE tenant = $1 AND chat_id = $2 AND agent_id = $3 RETURNING true",
        tenant, chat_id, agent_id))


async def delete_agent_offers(conn: Conn, tenant: str, agent_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "DELETE FROM offers o USING chats c WHERE o.tenant = $1 AND o.agent_id = $2 "
        "AND c.tenant = o.tenant AND c.id = o.chat_id RETURNING o.chat_id, c.department_id", tenant, agent_id)


async def agent_offers(conn: Conn, tenant: str, agent_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT o.chat_id, o.offered_at, c.department_id, c.visitor_name, c.question FROM offers o "
        "JOIN chats c ON c.tenant = o.tenant AND c.id = o.chat_id WHERE o.tenant = $1 AND o.agent_id = $2 "
        "AND c.state = 'queued' ORDER BY o.offered_at, o.chat_id", tenant, agent_id)


async def refusal(conn: Conn, tenant: str, chat_id: str, agent_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM offer_refusals WHERE tenant = $1 AND chat_id = $2 AND agent_id = $3",
                               tenant, chat_id, agent_id)


async def record_refusal(conn: Conn, tenant: str, chat_id: str, agent_id: str, reason: str, declined: bool) -> None:
    await conn.execute(
        "INSERT INTO offer_refusals (tenant, chat_id, agent_id, reason, declined) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (tenant, chat_id, agent_id) DO UPDATE SET reason = EXCLUDED.reason, declined = EXCLUDED.declined, "
        "at = now()", tenant, chat_id, agent_id, reason, declined)


async def was_offered(conn: Conn, tenant: str, chat_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM offers WHERE tenant = $1 AND chat_id = $2) "
        "OR EXISTS (SELECT 1 FROM offer_refusals WHERE tenant = $1 AND chat_id = $2)", tenant, chat_id))


# --- assignments -----------------------------------------------------------------------

async def assign(conn: Conn, tenant: str, chat: asyncpg.Record, agent_id: str, how: str,
                 previous_agent_id: str | None) -> asyncpg.Record | None:
    """The assignment in one statement: one more open chat for an agent who is online and
    below their maximum (conditional UPDATE), the chat theirs, the history row. Returns the
    chat row with the agent's new load (agent_active, agent_max); None when the agent cannot."""
    return await conn.fetchrow(
        "WITH agent AS (UPDATE agents SET active_chats = active_chats + 1, last_assigned_at = now() "
        "  WHERE tenant = $1 AND id = $2 AND availability = 'online' AND active_chats < max_chats "
        "  RETURNING active_chats, max_chats), "
        "chat AS (UPDATE chats SET state = 'assigned', agent_id = $2, assigned_at = now() "
        "  WHERE tenant = $1 AND id = $3 AND EXISTS (SELECT 1 FROM agent) RETURNING *), "
        # clock_timestamp(): taken under the agent's row lock, so the history orders like the locks did.
        "history AS (INSERT INTO assignments (tenant, chat_id, department_id, agent_id, how, previous_agent_id, "
        "  queued_at, assigned_at) SELECT $1, chat.id, chat.department_id, $2, $4, $5, $6, clock_timestamp() "
        "  FROM chat RETURNING id), "
        "member AS (DELETE FROM chat_members WHERE tenant = $1 AND chat_id = $3 AND agent_id = $2 "
        "  AND EXISTS (SELECT 1 FROM agent)) "
        "SELECT chat.*, agent.active_chats AS agent_active, agent.max_chats AS agent_max, "
        "  (SELECT count(*) FROM history) AS recorded FROM agent, chat",
        tenant, agent_id, chat["id"], how, previous_agent_id,
        chat["queued_at"] if how in ("accepted", "assigned") else None)


async def accept_offer(conn: Conn, tenant: str, chat_id: str, agent_id: str, offer_timer: str,
                       timer_kinds: list[str], channel: str) -> asyncpg.Record:
    """An agent accepts a chat offered to them, in one round trip (migrations/002, scoped by
    tenant in 003): the checks, the withdrawal of the chat's offers and timers, the
    assignment and, when the agent is full now, the withdrawal of their other offers.
    `outcome` says which check failed (nothing written then) or 'accepted'."""
    return await conn.fetchrow("SELECT * FROM accept_offer($1, $2, $3, $4, $5, $6)",
                               tenant, chat_id, agent_id, offer_timer, timer_kinds, channel)


async def take_offers(conn: Conn, tenant: str, chat_id, timer_kinds: list[str], channel: str) -> list[str]:
    """Withdraw every open offer of a chat and cancel its timers, in one statement; the
    agents who held an offer are woken (NOTIFY <tenant>/<agent id>). Returns those agents."""
    row = await conn.fetchrow(
        "WITH gone AS (DELETE FROM offers WHERE tenant = $1 AND chat_id = $2 RETURNING agent_id), "
        "timers_gone AS (DELETE FROM timers WHERE tenant = $1 AND key = $3 AND kind = ANY($4::text[])), "
        "woken AS (SELECT pg_notify($5, $1 || '/' || agent_id::text) FROM gone) "
        "SELECT coalesce(array_agg(agent_id::text), '{}') AS agents, (SELECT count(*) FROM woken) AS woken FROM gone",
        tenant, chat_id, str(chat_id), timer_kinds, channel)
    return list(row["agents"])


async def release_assignment(conn: Conn, tenant: str, chat_id: str) -> None:
    # clock_timestamp(): taken under the agent's row lock, so the history orders like the locks did.
    await conn.execute("UPDATE assignments SET released_at = clock_timestamp() "
                       "WHERE tenant = $1 AND chat_id = $2 AND released_at IS NULL", tenant, chat_id)


# --- transfers -------------------------------------------------------------------------

async def insert_transfer(conn: Conn, tenant: str, chat_id: str, from_agent: str, to_agent: str | None,
                          to_department: str | None, note: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO transfers (id, tenant, chat_id, from_agent_id, to_agent_id, to_department_id, note) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        new_id(), tenant, chat_id, from_agent, to_agent, to_department, note)


async def pending_transfer_of_chat(conn: Conn, tenant: str, chat_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM transfers WHERE tenant = $1 AND chat_id = $2 AND state = 'pending'",
                               tenant, chat_id)


async def transfer(conn: Conn, tenant: str, transfer_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM transfers WHERE tenant = $1 AND id = $2", tenant, transfer_id)


async def lock_transfer(conn: Conn, tenant: str, transfer_id: str) -> asyncpg.Record | None:
    """The transfer under its row lock (taken after its chat's, in the chat-first lock order)."""
    return await conn.fetchrow("SELECT * FROM transfers WHERE tenant = $1 AND id = $2 FOR UPDATE", tenant, transfer_id)


async def finish_transfer(conn: Conn, tenant: str, transfer_id: str, state: str, answered_by: str | None,
                          reason: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE transfers SET state = $3, answered_by = $4, decline_reason = $5, answered_at = now() "
        "WHERE tenant = $1 AND id = $2 RETURNING *", tenant, transfer_id, state, answered_by, reason)


async def record_transfer_decline(conn: Conn, tenant: str, transfer_id: str, agent_id: str, reason: str) -> bool:
    return bool(await conn.fetchval(
        "INSERT INTO transfer_declines (tenant, transfer_id, agent_id, reason) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING true", tenant, transfer_id, agent_id, reason))


async def has_declined_transfer(conn: Conn, tenant: str, transfer_id: str, agent_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT true FROM transfer_declines WHERE tenant = $1 AND transfer_id = $2 AND agent_id = $3",
        tenant, transfer_id, agent_id))


async def department_agents_left_to_answer(conn: Conn, tenant: str, transfer: asyncpg.Record) -> int:
    """Online agents of the target department who could still accept the transfer."""
    return await conn.fetchval(
        "SELECT count(*) FROM agents a JOIN department_agents da "
        "  ON da.tenant = a.tenant AND da.agent_id = a.id AND da.department_id = $2 "
        "WHERE a.tenant = $1 AND a.availability = 'online' AND a.id <> $3 "
        "AND a.id NOT IN (SELECT agent_id FROM transfer_declines WHERE tenant = $1 AND transfer_id = $4)",
        tenant, transfer["to_department_id"], transfer["from_agent_id"], transfer["id"])


async def transfers_for_agent(conn: Conn, tenant: str, agent_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT t.* FROM transfers t WHERE t.tenant = $1 AND t.state = 'pending' AND t.from_agent_id <> $2 AND "
        "(t.to_agent_id = $2 OR (t.to_department_id IN "
        "  (SELECT department_id FROM department_agents WHERE tenant = $1 AND agent_id = $2) "
        "AND NOT EXISTS (SELECT 1 FROM transfer_declines d WHERE d.tenant = $1 AND d.transfer_id = t.id "
        "  AND d.agent_id = $2))) ORDER BY t.created_at", tenant, agent_id)


async def is_department_member(conn: Conn, tenant: str, department_id: str, agent_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT true FROM department_agents WHERE tenant = $1 AND department_id = $2 AND agent_id = $3",
        tenant, department_id, agent_id))


# --- members ---------------------------------------------------------------------------

async def add_member(conn: Conn, tenant: str, chat_id: str, agent_id: str, invited_by: str | None, note: str) -> bool:
    return bool(await conn.fetchval(
        "INSERT INTO chat_members (tenant, chat_id, agent_id, invited_by, note) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT DO NOTHING RETURNING true", tenant, chat_id, agent_id, invited_by, note))


async def members(conn: Conn, tenant: str, chat_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT a.id, a.name, a.email, a.availability, m.joined_at FROM chat_members m "
        "JOIN agents a ON a.tenant = m.tenant AND a.id = m.agent_id "
        "WHERE m.tenant = $1 AND m.chat_id = $2 ORDER BY m.joined_at, a.email", tenant, chat_id)


async def is_member(conn: Conn, tenant: str, chat_id: str, agent_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM chat_members WHERE tenant = $1 AND chat_id = $2 AND agent_id = $3",
                                    tenant, chat_id, agent_id))


# --- rules -----------------------------------------------------------------------------

def _rule(row: asyncpg.Record) -> Rule:
    conditions = tuple(Condition(c["field"], c["op"], c.get("value", "")) for c in row["conditions"])
    return Rule(id=str(row["id"]), kind=row["kind"], name=row["name"], order=row["ord"],
                department_id=str(row["department_id"]) if row["department_id"] else None,
                conditions=conditions, agent_ids=tuple(str(a) for a in row["agent_ids"]))


async def rules(conn: Conn, tenant: str, kind: str | None = None) -> list[Rule]:
    rows = await conn.fetch("SELECT * FROM rules WHERE tenant = $1 AND ($2::text IS NULL OR kind = $2) "
                            "ORDER BY kind, ord, name", tenant, kind)
    return [_rule(r) for r in rows]


async def rule(conn: Conn, tenant: str, rule_id: str) -> Rule | None:
    row = await conn.fetchrow("SELECT * FROM rules WHERE tenant = $1 AND id = $2", tenant, rule_id)
    return _rule(row) if row else None


async def has_rules(conn: Conn, tenant: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM rules WHERE tenant = $1)", tenant))


async def upsert_rule(conn: Conn, tenant: str, rule: Rule) -> Rule:
    conditions = [{"field": c.field, "op": c.op, "value": c.value} for c in rule.conditions]
    row = await conn.fetchrow(
        "INSERT INTO rules (id, tenant, kind, name, ord, department_id, conditions, agent_ids) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::uuid[]) ON CONFLICT (tenant, id) DO UPDATE SET "
        "kind = EXCLUDED.kind, name = EXCLUDED.name, ord = EXCLUDED.ord, department_id = EXCLUDED.department_id, "
        "conditions = EXCLUDED.conditions, agent_ids = EXCLUDED.agent_ids RETURNING *",
        rule.id, tenant, rule.kind, rule.name, rule.order, rule.department_id, conditions, list(rule.agent_ids))
    return _rule(row)


async def rule_exists(conn: Conn, tenant: str, rule_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM rules WHERE tenant = $1 AND id = $2", tenant, rule_id))


async def delete_rule(conn: Conn, tenant: str, rule_id: str) -> bool:
    return bool(await conn.fetchval("DELETE FROM rules WHERE tenant = $1 AND id = $2 RETURNING true", tenant, rule_id))


async def existing_agents(conn: Conn, tenant: str, ids: list[str]) -> set[str]:
    rows = await conn.fetch("SELECT id FROM agents WHERE tenant = $1 AND id = ANY($2::uuid[])", tenant, ids)
    return {str(r["id"]) for r in rows}


# --- team messages ---------------------------------------------------------------------

_TEAM_MESSAGE = ("SELECT m.*, a.name AS from_name FROM team_messages m "
                 "JOIN agents a ON a.tenant = m.tenant AND a.id = m.from_agent_id ")


async def insert_team_message(conn: Conn, tenant: str, from_agent: str, to_agent: str | None, text: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO team_messages (id, tenant, from_agent_id, to_agent_id, text) VALUES ($1, $2, $3, $4, $5) "
        "RETURNING *, (SELECT name FROM agents WHERE tenant = $2 AND id = $3) AS from_name",
        new_id(), tenant, from_agent, to_agent, text)


async def team_message(conn: Conn, tenant: str, message_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_TEAM_MESSAGE + "WHERE m.tenant = $1 AND m.id = $2", tenant, message_id)


async def team_messages(conn: Conn, tenant: str, me: str, board: bool, with_agent: str | None, after_seq: int,
                        limit: int) -> list[asyncpg.Record]:
    """The board, the direct conversation with one agent, or (neither) everything visible to me."""
    if board:
        scope, args = "m.to_agent_id IS NULL", ()
    elif with_agent is not None:
        scope = "((m.from_agent_id = $4 AND m.to_agent_id = $5) OR (m.from_agent_id = $5 AND m.to_agent_id = $4))"
        args = (me, with_agent)
    else:
        scope, args = "(m.to_agent_id IS NULL OR m.to_agent_id = $4 OR m.from_agent_id = $4)", (me,)
    return await conn.fetch(
        _TEAM_MESSAGE + f"WHERE m.tenant = $1 AND m.seq > $2 AND {scope} ORDER BY m.seq LIMIT $3",
        tenant, after_seq, limit, *args)


async def notify(conn: Conn, channel: str, payload: str) -> None:
    """Delivered at commit to every replica's listener (see notify.py)."""
    await conn.execute("SELECT pg_notify($1, $2)", channel, payload)
