"""What must hold in the services' databases whatever the calls were (nothing half-written):
each query returns the rows that break its rule, so an empty result is a pass."""

from __future__ import annotations

import asyncpg

from tests.e2e.fault_checks import schemas_with
from tests.e2e.suite import Suite
from tests.fixtures import eventually

BROKEN = {
    # Messages and stream events share a chat's sequence: the chat's last_seq is the highest
    # of them, and no chat exists without its first rows.
    "chat whose last_seq is not its newest message or event": """
        SELECT c.id, c.last_seq FROM conversation.chats c
         WHERE c.last_seq = 0 OR c.last_seq <> GREATEST(
               (SELECT coalesce(max(seq), 0) FROM conversation.messages m WHERE m.chat_id = c.id),
               (SELECT coalesce(max(seq), 0) FROM conversation.chat_events e WHERE e.chat_id = c.id))""",
    "agent over capacity or whose load is not its open assignments": """
        SELECT a.id, a.active_chats, a.max_chats FROM routing.agents a
         WHERE a.active_chats > a.max_chats OR a.active_chats <> (
               SELECT count(*) FROM routing.assignments s WHERE s.agent_id = a.id AND s.released_at IS NULL)""",
    "assigned chat without its one open assignment to the same agent": """
        SELECT c.id FROM routing.chats c
         WHERE (c.state = 'assigned') <> EXISTS (
               SELECT 1 FROM routing.assignments s
                WHERE s.chat_id = c.id AND s.released_at IS NULL AND s.agent_id = c.agent_id)""",
}


async def broken_rows(suite: Suite) -> dict[str, list]:
    """Each rule with the rows that break it, once every outbox is drained (a settle
    period: the relays publish within moments); no event may be parked as a dead letter."""
    conn = await asyncpg.connect(suite.env["KAIWA_DATABASE_URL"])
    try:
        outboxes = await schemas_with(conn, "outbox")

        async def drained():
            counts = {s: await conn.fetchval(f'SELECT count(*) FROM "{s}".outbox') for s in outboxes}
            return not any(counts.values()) or None

        await eventually(drained, "every outbox row is published", timeout=20)
        found = {rule: await conn.fetch(query) for rule, query in BROKEN.items()}
        for schema in await schemas_with(conn, "dead_letters"):
            found[f"dead letter in {schema}"] = await conn.fetch(f'SELECT consumer, subject, error FROM "{schema}".dead_letters')
        return {rule: [tuple(row) for row in rows] for rule, rows in found.items() if rows}
    finally:
        await conn.close()
