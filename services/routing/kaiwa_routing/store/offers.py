"""Offers (a waiting chat offered to an agent) and refusals (declined, or let time out).
Every change of an agent's offers wakes that agent's StreamOffers at commit
(NOTIFY routing_offers <tenant>/<agent id>)."""

from __future__ import annotations

import asyncpg

from ..domain.model import MAX_WAIT, OFFER_TIMEOUT
from ..wakeups import OFFERS, offers_key

Conn = asyncpg.Connection


async def of_agent(conn: Conn, tenant: str, agent_id: str) -> list[asyncpg.Record]:
    """An agent's open offers, oldest first, with what the agent sees of each chat."""
    return await conn.fetch(
        "SELECT o.chat_id, o.offered_at, c.department_id, c.visitor_name, c.question FROM offers o "
        "JOIN chats c ON c.tenant = o.tenant AND c.id = o.chat_id WHERE o.tenant = $1 AND o.agent_id = $2 "
        "AND c.state = 'queued' ORDER BY o.offered_at, o.chat_id",
        tenant,
        agent_id,
    )


async def asked(conn: Conn, tenant: str, chat_ids: list) -> list[asyncpg.Record]:
    """Who was asked about these chats: (chat_id, agent_id, kind: offered, declined or timeout)."""
    return await conn.fetch(
        "SELECT chat_id, agent_id, 'offered' AS kind FROM offers WHERE tenant = $1 AND chat_id = ANY($2::uuid[]) "
        "UNION ALL SELECT chat_id, agent_id, CASE WHEN declined THEN 'declined' ELSE 'timeout' END FROM offer_refusals "
        "WHERE tenant = $1 AND chat_id = ANY($2::uuid[])",
        tenant,
        chat_ids,
    )


async def offer_chat(conn: Conn, tenant: str, chat_id, department_id, agent_ids: list[str], single: bool) -> list[str]:
    """Offer a waiting chat, in one statement, to those of `agent_ids` who are online now,
    if the chat can be locked without waiting (SKIP LOCKED) and still waits; for a single
    offer also the department's round-robin mark; the agents offered are woken. Returns
    the agents offered ([]: nothing offered, chat left alone).

    The candidates a pass read a moment ago may be stale; this statement is not. Each agent
    row is taken FOR KEY SHARE with its availability check, and SetAvailability holds the
    row FOR UPDATE until it has withdrawn that agent's offers and committed: either the
    availability change commits first (the re-checked row says away, no offer), or this
    offer commits first (and the availability change then withdraws it). No offer ever
    outlives its agent going away or offline."""
    return list(
        await conn.fetchval(
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
            chat_id,
            tenant,
            agent_ids,
            single,
            department_id,
            OFFERS,
        )
    )


async def accept(conn: Conn, tenant: str, chat_id: str, agent_id: str) -> asyncpg.Record:
    """An agent accepts a chat offered to them, in one round trip (migrations/002, scoped by
    tenant in 003): the checks, the withdrawal of the chat's offers and timers, the
    assignment and, when the agent is full now, the withdrawal of their other offers.
    `outcome` says which check failed (nothing written then) or 'accepted'."""
    return await conn.fetchrow(
        "SELECT * FROM accept_offer($1, $2, $3, $4, $5, $6)",
        tenant,
        chat_id,
        agent_id,
        OFFER_TIMEOUT,
        [OFFER_TIMEOUT, MAX_WAIT],
        OFFERS,
    )


async def withdraw(conn: Conn, tenant: str, chat_id: str, agent_id: str) -> bool:
    """One agent's offer of a chat (False: there was none). The caller wakes the agent."""
    return bool(
        await conn.fetchval(
            "DELETE FROM offers WHERE tenant = $1 AND chat_id = $2 AND agent_id = $3 RETURNING true", tenant, chat_id, agent_id
        )
    )


async def withdraw_of_chat(conn: Conn, tenant: str, chat_id) -> list[str]:
    """Every open offer of a chat, and its offer and maximum-wait timers, in one statement;
    the agents who held an offer are woken. Returns those agents."""
    row = await conn.fetchrow(
        "WITH gone AS (DELETE FROM offers WHERE tenant = $1 AND chat_id = $2 RETURNING agent_id), "
        "timers_gone AS (DELETE FROM timers WHERE tenant = $1 AND key = $3 AND kind = ANY($4::text[])), "
        "woken AS (SELECT pg_notify($5, $1 || '/' || agent_id::text) FROM gone) "
        "SELECT coalesce(array_agg(agent_id::text), '{}') AS agents, (SELECT count(*) FROM woken) AS woken FROM gone",
        tenant,
        chat_id,
        str(chat_id),
        [OFFER_TIMEOUT, MAX_WAIT],
        OFFERS,
    )
    return list(row["agents"])


async def withdraw_of_agent(conn: Conn, tenant: str, agent_id: str) -> list[asyncpg.Record]:
    """Every open offer of an agent: (chat_id, department_id) of each. The caller wakes the agent."""
    return await conn.fetch(
        "DELETE FROM offers o USING chats c WHERE o.tenant = $1 AND o.agent_id = $2 "
        "AND c.tenant = o.tenant AND c.id = o.chat_id RETURNING o.chat_id, c.department_id",
        tenant,
        agent_id,
    )


async def wake_agent(conn: Conn, tenant: str, agent_id: str) -> None:
    """The agent's StreamOffers looks again, at commit."""
    await conn.execute("SELECT pg_notify($1, $2)", OFFERS, offers_key(tenant, agent_id))


async def refusal(conn: Conn, tenant: str, chat_id: str, agent_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM offer_refusals WHERE tenant = $1 AND chat_id = $2 AND agent_id = $3", tenant, chat_id, agent_id
    )


async def record_refusal(conn: Conn, tenant: str, chat_id: str, agent_id: str, reason: str, declined: bool) -> None:
    await conn.execute(
        "INSERT INTO offer_refusals (tenant, chat_id, agent_id, reason, declined) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (tenant, chat_id, agent_id) DO UPDATE SET reason = EXCLUDED.reason, declined = EXCLUDED.declined, "
        "at = now()",
        tenant,
        chat_id,
        agent_id,
        reason,
        declined,
    )


async def was_offered(conn: Conn, tenant: str, chat_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM offers WHERE tenant = $1 AND chat_id = $2) "
            "OR EXISTS (SELECT 1 FROM offer_refusals WHERE tenant = $1 AND chat_id = $2)",
            tenant,
            chat_id,
        )
    )
