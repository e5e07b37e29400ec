"""asyncpg queries of the routing schema. Every query is scoped by tenant.

Lock order, kept everywhere so concurrent transactions never deadlock: a chat row, then
agent rows; a routing pass takes its queue's advisory lock first and only ever locks chats
with SKIP LOCKED, so it never waits on a chat.
"""

from __future__ import annotations

import uuid
from datetime import datetime

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
          "FROM agents a LEFT JOIN department_agents da ON da.agent_id = a.id ")


async def agent(conn: Conn, tenant: str, agent_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_AGENT + "WHERE a.tenant = $1 AND a.id = $2 GROUP BY a.id", tenant, agent_id)


async def agent_by_email(conn: Conn, tenant: str, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_AGENT + "WHERE a.tenant = $1 AND a.email = $2 GROUP BY a.id", tenant, email)


async def list_agents(conn: Conn, tenant: str, department_id: str | None) -> list[asyncpg.Record]:
    if department_id is None:
        return await conn.fetch(_AGENT + "WHERE a.tenant = $1 GROUP BY a.id ORDER BY a.email", tenant)
    return await conn.fetch(
        _AGENT + "WHERE a.tenant = $1 AND a.id IN (SELECT agent_id FROM department_agents WHERE department_id = $2) "
        "GROUP BY a.id ORDER BY a.email", tenant, department_id)


async def lock_agent_by_email(conn: Conn, tenant: str, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM agents WHERE tenant = $1 AND email = $2 FOR UPDATE", tenant, email)


async def insert_agent(conn: Conn, tenant: str, email: str, name: str, max_chats: int) -> str:
    agent_id = new_id()
    await conn.execute("INSERT INTO agents (id, tenant, email, name, max_chats) VALUES ($1, $2, $3, $4, $5)",
                       agent_id, tenant, email, name, max_chats)
    return agent_id


async def update_agent(conn: Conn, agent_id: str, name: str, max_chats: int) -> None:
    await conn.execute("UPDATE agents SET name = $2, max_chats = $3 WHERE id = $1", agent_id, name, max_chats)


async def set_departments(conn: Conn, tenant: str, agent_id: str, department_ids: list[str]) -> None:
    await conn.execute("DELETE FROM department_agents WHERE agent_id = $1 AND NOT (department_id = ANY($2::uuid[]))",
                       agent_id, department_ids)
    await conn.executemany(
        "INSERT INTO department_agents (tenant, department_id, agent_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(tenant, d, agent_id) for d in department_ids])


async def set_availability(conn: Conn, tenant: str, agent_id: str, availability: str) -> str | None:
    """Sets it and returns the previous availability (None: no such agent)."""
    return await conn.fetchval(
        "UPDATE agents a SET availability = $3 FROM (SELECT id, availability FROM agents WHERE tenant = $1 AND id = $2 "
        "FOR UPDATE) old WHERE a.id = old.id RETURNING old.availability", tenant, agent_id, availability)


async def agent_departments(conn: Conn, agent_id: str) -> list[str | None]:
    rows = await conn.fetch("SELECT department_id FROM department_agents WHERE agent_id = $1", agent_id)
    return [str(r["department_id"]) for r in rows]


async def agent_row(conn: Conn, tenant: str, agent_id: str) -> asyncpg.Record | None:
    """The agent without their departments (cheaper than `agent`)."""
    return await conn.fetchrow("SELECT * FROM agents WHERE tenant = $1 AND id = $2", tenant, agent_id)


async def lock_agents(conn: Conn, agent_ids: list[str]) -> None:
    await conn.execute("SELECT 1 FROM agents WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", agent_ids)


async def release_capacity(conn: Conn, agent_id: str) -> None:
    await conn.execute("UPDATE agents SET active_chats = active_chats - 1 WHERE id = $1", agent_id)


async def candidates(conn: Conn, tenant: str, department_id: str | None) -> list[Candidate]:
    """Online agents below their maximum, of the department (of the tenant for no department)."""
    query = (
        "SELECT a.id, a.email, a.active_chats, a.max_chats, a.last_assigned_at, {offered} AS last_offered_at, "
        "a.max_chats - a.active_chats - (SELECT count(*) FROM offers o WHERE o.agent_id = a.id) AS free_slots "
        "FROM agents a {join} WHERE a.tenant = $1 AND a.availability = 'online' AND a.active_chats < a.max_chats")
    if department_id is None:
        rows = await conn.fetch(query.format(offered="NULL::timestamptz", join=""), tenant)
    else:
        rows = await conn.fetch(query.format(
            offered="da.last_offered_at",
            join="JOIN department_agents da ON da.agent_id = a.id AND da.department_id = $2"), tenant, department_id)
    return [Candidate(agent_id=str(r["id"]), email=r["email"], active_chats=r["active_chats"],
                      max_chats=r["max_chats"], free_slots=r["free_slots"], last_assigned_at=r["last_assigned_at"],
                      last_offered_at=r["last_offered_at"]) for r in rows]


async def capacity_overview(conn: Conn, tenant: str, department_id: str | None) -> asyncpg.Record:
    """Online agents, their total capacity and free slots (for estimates and missed reasons)."""
    if department_id is None:
        scope, args = "", (tenant,)
    else:
        scope, args = "AND a.id IN (SELECT agent_id FROM department_agents WHERE department_id = $2)", (tenant, department_id)
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
                      visitor_id: str, visitor_name: str, visitor_email: str, question: str) -> bool:
    """False when routing already knows the chat (a redelivered or late event)."""
    return bool(await conn.fetchval(
        "INSERT INTO chats (id, tenant, department_id, state, visitor_id, visitor_name, visitor_email, question) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING RETURNING true",
        chat_id, tenant, department_id, state, visitor_id, visitor_name, visitor_email, question))


async def enqueue(conn: Conn, chat_id: str, department_id: str | None, crm: dict | None, priority: int) -> None:
    await conn.execute(
        "UPDATE chats SET state = 'queued', department_id = $2, crm = $3, priority = $4, "
        "priority_rank = CASE WHEN $4 > 0 THEN $4 ELSE 2147483647 END, queued_at = now(), agent_id = NULL, "
        "assigned_at = NULL, ended_at = NULL, missed_reason = NULL, waited_seconds = NULL "
        "WHERE id = $1", chat_id, department_id, crm, priority)


async def set_chat_ended(conn: Conn, chat_id: str) -> None:
    await conn.execute("UPDATE chats SET state = 'ended', agent_id = NULL, ended_at = now() WHERE id = $1", chat_id)


async def set_chat_missed(conn: Conn, chat_id: str, reason: str, waited: int) -> None:
    await conn.execute("UPDATE chats SET state = 'missed', ended_at = now(), missed_reason = $2, waited_seconds = $3 "
                       "WHERE id = $1", chat_id, reason, waited)


async def tombstone(conn: Conn, tenant: str, chat_id: str, department_id: str | None) -> None:
    """An end that arrives before its start: remember it so the start is ignored."""
    await conn.execute("INSERT INTO chats (id, tenant, department_id, state, ended_at) VALUES ($1, $2, $3, 'ended', now()) "
                       "ON CONFLICT (id) DO NOTHING", chat_id, tenant, department_id)


async def queued_page(conn: Conn, tenant: str, department_id: str | None, limit: int, after: tuple | None,
                      without_offers: bool) -> list[asyncpg.Record]:
    """Waiting chats in queue order after the key `after` (keyset pages: offers made
    meanwhile do not shift them); `without_offers` leaves out chats with an open offer."""
    return await conn.fetch(
        "SELECT id, department_id, crm, queued_at, priority, priority_rank FROM chats c WHERE tenant = $1 "
        "AND department_id IS NOT DISTINCT FROM $2 AND state = 'queued' "
        "AND ($4::int IS NULL OR (priority_rank, queued_at, id) > ($4, $5, $6)) "
        "AND NOT ($7 AND EXISTS (SELECT 1 FROM offers o WHERE o.chat_id = c.id)) "
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
        "LEFT JOIN queue_announcements a ON a.chat_id = c.id "
        "WHERE c.tenant = $1 AND c.department_id IS NOT DISTINCT FROM $2 AND c.state = 'queued' "
        "ORDER BY c.priority_rank, c.queued_at, c.id LIMIT $3", tenant, department_id, limit)


async def record_announcements(conn: Conn, tenant: str, positions: list[tuple[str, int]]) -> None:
    await conn.executemany(
        "INSERT INTO queue_announcements (chat_id, tenant, position) VALUES ($1, $2, $3) "
        "ON CONFLICT (chat_id) DO UPDATE SET position = EXCLUDED.position, at = now()",
        [(chat_id, tenant, position) for chat_id, position in positions])


async def forget_announcements(conn: Conn) -> None:
    """Announcements of chats that no longer wait."""
    await conn.execute("DELETE FROM queue_announcements a USING chats c WHERE c.id = a.chat_id AND c.state <> 'queued'")


async def queues_with_chats(conn: Conn) -> list[asyncpg.Record]:
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

async def offers_for_chats(conn: Conn, chat_ids: list) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT chat_id, agent_id, 'offered' AS kind FROM offers WHERE chat_id = ANY($1::uuid[]) UNION ALL "
        "SELECT chat_id, agent_id, CASE WHEN declined THEN 'declined' ELSE 'timeout' END FROM offer_refusals "
        "WHERE chat_id = ANY($1::uuid[])", chat_ids)


async def offer_chat(conn: Conn, tenant: str, chat_id, department_id, agent_ids: list[str], single: bool,
                     channel: str) -> bool:
    """Offer a waiting chat to agents in one statement, if it can be locked without waiting
    (SKIP LOCKED) and still waits: the offers, for a single offer the department's
    round-robin mark, and the agents woken (NOTIFY <tenant>/<agent id>). False: left alone."""
    return bool(await conn.fetchval(
        "WITH locked AS (SELECT id FROM chats WHERE id = $1 AND state = 'queued' FOR UPDATE SKIP LOCKED), "
        "offered AS (INSERT INTO offers (tenant, chat_id, agent_id) SELECT $2, locked.id, a "
        "  FROM locked, unnest($3::uuid[]) a ON CONFLICT DO NOTHING), "
        "marked AS (UPDATE department_agents SET last_offered_at = clock_timestamp() "
        "  WHERE $4 AND department_id = $5 AND agent_id = ($3::uuid[])[1] AND EXISTS (SELECT 1 FROM locked)), "
        "woken AS (SELECT pg_notify($6, $2 || '/' || a::text) FROM locked, unnest($3::uuid[]) a) "
        "SELECT EXISTS (SELECT 1 FROM locked) AND (SELECT count(*) FROM woken) >= 0",
        chat_id, tenant, agent_ids, single, department_id, channel))


async def delete_offer(conn: Conn, chat_id: str, agent_id: str) -> bool:
    return bool(await conn.fetchval("DELETE FROM offers WHERE chat_id = $1 AND agent_id = $2 RETURNING true",
                                    chat_id, agent_id))


async def delete_agent_offers(conn: Conn, agent_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "DELETE FROM offers o USING chats c WHERE o.agent_id = $1 AND c.id = o.chat_id "
        "RETURNING o.chat_id, c.department_id", agent_id)


async def agent_offers(conn: Conn, tenant: str, agent_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT o.chat_id, o.offered_at, c.department_id, c.visitor_name, c.question FROM offers o "
        "JOIN chats c ON c.id = o.chat_id WHERE o.tenant = $1 AND o.agent_id = $2 AND c.state = 'queued' "
        "ORDER BY o.offered_at, o.chat_id", tenant, agent_id)


async def refusal(conn: Conn, chat_id: str, agent_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM offer_refusals WHERE chat_id = $1 AND agent_id = $2", chat_id, agent_id)


async def record_refusal(conn: Conn, tenant: str, chat_id: str, agent_id: str, reason: str, declined: bool) -> None:
    await conn.execute(
        "INSERT INTO offer_refusals (tenant, chat_id, agent_id, reason, declined) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (chat_id, agent_id) DO UPDATE SET reason = EXCLUDED.reason, declined = EXCLUDED.declined, at = now()",
        tenant, chat_id, agent_id, reason, declined)


async def was_offered(conn: Conn, chat_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM offers WHERE chat_id = $1) OR EXISTS (SELECT 1 FROM offer_refusals WHERE chat_id = $1)",
        chat_id))


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
        "  WHERE id = $3 AND EXISTS (SELECT 1 FROM agent) RETURNING *), "
        # clock_timestamp(): taken under the agent's row lock, so the history orders like the locks did.
        "history AS (INSERT INTO assignments (tenant, chat_id, department_id, agent_id, how, previous_agent_id, "
        "  queued_at, assigned_at) SELECT $1, chat.id, chat.department_id, $2, $4, $5, $6, clock_timestamp() "
        "  FROM chat RETURNING id), "
        "member AS (DELETE FROM chat_members WHERE chat_id = $3 AND agent_id = $2 AND EXISTS (SELECT 1 FROM agent)) "
        "SELECT chat.*, agent.active_chats AS agent_active, agent.max_chats AS agent_max, "
        "  (SELECT count(*) FROM history) AS recorded FROM agent, chat",
        tenant, agent_id, chat["id"], how, previous_agent_id,
        chat["queued_at"] if how in ("accepted", "assigned") else None)


async def accept_offer(conn: Conn, tenant: str, chat_id: str, agent_id: str, offer_timer: str,
                       timer_kinds: list[str], channel: str) -> asyncpg.Record:
    """An agent accepts a chat offered to them, in one round trip (migrations/002): the
    checks, the withdrawal of the chat's offers and timers, the assignment and, when the
    agent is full now, the withdrawal of their other offers. `outcome` says which check
    failed (nothing written then) or 'accepted'."""
    return await conn.fetchrow("SELECT * FROM accept_offer($1, $2, $3, $4, $5, $6)",
                               tenant, chat_id, agent_id, offer_timer, timer_kinds, channel)


async def take_offers(conn: Conn, tenant: str, chat_id, timer_kinds: list[str], channel: str) -> list[str]:
    """Withdraw every open offer of a chat and cancel its timers, in one statement; the
    agents who held an offer are woken (NOTIFY <tenant>/<agent id>). Returns those agents."""
    row = await conn.fetchrow(
        "WITH gone AS (DELETE FROM offers WHERE chat_id = $1 RETURNING agent_id), "
        "timers_gone AS (DELETE FROM timers WHERE key = $2 AND kind = ANY($3::text[])), "
        "woken AS (SELECT pg_notify($4, $5 || '/' || agent_id::text) FROM gone) "
        "SELECT coalesce(array_agg(agent_id::text), '{}') AS agents, (SELECT count(*) FROM woken) AS woken FROM gone",
        chat_id, str(chat_id), timer_kinds, channel, tenant)
    return list(row["agents"])


async def release_assignment(conn: Conn, chat_id: str) -> None:
    # clock_timestamp(): taken under the agent's row lock, so the history orders like the locks did.
    await conn.execute("UPDATE assignments SET released_at = clock_timestamp() WHERE chat_id = $1 AND released_at IS NULL",
                       chat_id)


async def assignment_started(conn: Conn, chat_id: str) -> datetime | None:
    return await conn.fetchval("SELECT assigned_at FROM assignments WHERE chat_id = $1 AND released_at IS NULL", chat_id)


# --- transfers -------------------------------------------------------------------------

async def insert_transfer(conn: Conn, tenant: str, chat_id: str, from_agent: str, to_agent: str | None,
                          to_department: str | None, note: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO transfers (id, tenant, chat_id, from_agent_id, to_agent_id, to_department_id, note) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        new_id(), tenant, chat_id, from_agent, to_agent, to_department, note)


async def pending_transfer_of_chat(conn: Conn, chat_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM transfers WHERE chat_id = $1 AND state = 'pending'", chat_id)


async def transfer(conn: Conn, tenant: str, transfer_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM transfers WHERE tenant = $1 AND id = $2", tenant, transfer_id)


async def finish_transfer(conn: Conn, transfer_id: str, state: str, answered_by: str | None, reason: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE transfers SET state = $2, answered_by = $3, decline_reason = $4, answered_at = now() "
        "WHERE id = $1 RETURNING *", transfer_id, state, answered_by, reason)


async def record_transfer_decline(conn: Conn, transfer_id: str, agent_id: str, reason: str) -> bool:
    return bool(await conn.fetchval(
        "INSERT INTO transfer_declines (transfer_id, agent_id, reason) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING true", transfer_id, agent_id, reason))


async def has_declined_transfer(conn: Conn, transfer_id: str, agent_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM transfer_declines WHERE transfer_id = $1 AND agent_id = $2",
                                    transfer_id, agent_id))


async def department_agents_left_to_answer(conn: Conn, transfer: asyncpg.Record) -> int:
    """Online agents of the target department who could still accept the transfer."""
    return await conn.fetchval(
        "SELECT count(*) FROM agents a JOIN department_agents da ON da.agent_id = a.id AND da.department_id = $1 "
        "WHERE a.availability = 'online' AND a.id <> $2 "
        "AND a.id NOT IN (SELECT agent_id FROM transfer_declines WHERE transfer_id = $3)",
        transfer["to_department_id"], transfer["from_agent_id"], transfer["id"])


async def transfers_for_agent(conn: Conn, tenant: str, agent_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT t.* FROM transfers t WHERE t.tenant = $1 AND t.state = 'pending' AND t.from_agent_id <> $2 AND "
        "(t.to_agent_id = $2 OR (t.to_department_id IN (SELECT department_id FROM department_agents WHERE agent_id = $2) "
        "AND NOT EXISTS (SELECT 1 FROM transfer_declines d WHERE d.transfer_id = t.id AND d.agent_id = $2))) "
        "ORDER BY t.created_at", tenant, agent_id)


async def is_department_member(conn: Conn, department_id: str, agent_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM department_agents WHERE department_id = $1 AND agent_id = $2",
                                    department_id, agent_id))


# --- members ---------------------------------------------------------------------------

async def add_member(conn: Conn, tenant: str, chat_id: str, agent_id: str, invited_by: str | None, note: str) -> bool:
    return bool(await conn.fetchval(
        "INSERT INTO chat_members (tenant, chat_id, agent_id, invited_by, note) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT DO NOTHING RETURNING true", tenant, chat_id, agent_id, invited_by, note))


async def remove_member(conn: Conn, chat_id: str, agent_id: str) -> None:
    await conn.execute("DELETE FROM chat_members WHERE chat_id = $1 AND agent_id = $2", chat_id, agent_id)


async def members(conn: Conn, tenant: str, chat_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT a.id, a.name, a.email, a.availability, m.joined_at FROM chat_members m JOIN agents a ON a.id = m.agent_id "
        "WHERE m.tenant = $1 AND m.chat_id = $2 ORDER BY m.joined_at, a.email", tenant, chat_id)


async def is_member(conn: Conn, chat_id: str, agent_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM chat_members WHERE chat_id = $1 AND agent_id = $2",
                                    chat_id, agent_id))


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


async def has_rules(conn: Conn, tenant: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM rules WHERE tenant = $1)", tenant))


async def upsert_rule(conn: Conn, tenant: str, rule: Rule) -> Rule:
    conditions = [{"field": c.field, "op": c.op, "value": c.value} for c in rule.conditions]
    row = await conn.fetchrow(
        "INSERT INTO rules (id, tenant, kind, name, ord, department_id, conditions, agent_ids) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::uuid[]) ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, "
        "name = EXCLUDED.name, ord = EXCLUDED.ord, department_id = EXCLUDED.department_id, "
        "conditions = EXCLUDED.conditions, agent_ids = EXCLUDED.agent_ids WHERE rules.tenant = EXCLUDED.tenant "
        "RETURNING *", rule.id, tenant, rule.kind, rule.name, rule.order, rule.department_id, conditions,
        list(rule.agent_ids))
    return _rule(row) if row else None


async def rule_exists(conn: Conn, tenant: str, rule_id: str) -> bool | None:
    """True: this tenant's; False: another tenant's id; None: unknown."""
    owner = await conn.fetchval("SELECT tenant FROM rules WHERE id = $1", rule_id)
    return None if owner is None else owner == tenant


async def delete_rule(conn: Conn, tenant: str, rule_id: str) -> bool:
    return bool(await conn.fetchval("DELETE FROM rules WHERE tenant = $1 AND id = $2 RETURNING true", tenant, rule_id))


async def existing_agents(conn: Conn, tenant: str, ids: list[str]) -> set[str]:
    rows = await conn.fetch("SELECT id FROM agents WHERE tenant = $1 AND id = ANY($2::uuid[])", tenant, ids)
    return {str(r["id"]) for r in rows}


# --- team messages ---------------------------------------------------------------------

async def insert_team_message(conn: Conn, tenant: str, from_agent: str, to_agent: str | None, text: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO team_messages (id, tenant, from_agent_id, to_agent_id, text) VALUES ($1, $2, $3, $4, $5) "
        "RETURNING *, (SELECT name FROM agents WHERE id = $3) AS from_name", new_id(), tenant, from_agent, to_agent, text)


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
        "SELECT m.*, a.name AS from_name FROM team_messages m JOIN agents a ON a.id = m.from_agent_id "
        f"WHERE m.tenant = $1 AND m.seq > $2 AND {scope} ORDER BY m.seq LIMIT $3", tenant, after_seq, limit, *args)


async def notify(conn: Conn, channel: str, payload: str) -> None:
    """Delivered at commit to every replica's listener (see notify.py)."""
    await conn.execute("SELECT pg_notify($1, $2)", channel, payload)
