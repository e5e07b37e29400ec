"""Ended chats bulk-loaded with copy_records_to_table into the services' own tables
(bench/stored.py): conversation's chats with their messages, routing's chats and released
assignments, in the columns the schemas require (defaults for the rest)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg

MESSAGES_PER_CHAT = 5


def chat_rows(tenant: str, department_id: str, agent_id: str, count: int):
    """(conversation chat, its messages, routing chat, routing assignment) rows of ended chats."""
    now = datetime.now(timezone.utc)
    for i in range(count):
        chat_id, started = uuid.uuid4(), now - timedelta(minutes=10 + i % 10_000)
        ended = started + timedelta(minutes=5)
        visitor = f"stored-{i}"
        conversation_chat = (
            tenant,
            chat_id,
            "web",
            "ended",
            department_id,
            visitor,
            agent_id,
            started,
            ended,
            "agent",
            MESSAGES_PER_CHAT,
        )
        messages = [
            (
                tenant,
                chat_id,
                seq,
                uuid.uuid4(),
                "agent" if seq % 2 else "visitor",
                agent_id if seq % 2 else visitor,
                "text",
                "web",
                "Do you ship to Osaka?",
                seq % 2 == 1,
                started + timedelta(seconds=seq),
            )
            for seq in range(1, MESSAGES_PER_CHAT + 1)
        ]
        routing_chat = (chat_id, tenant, uuid.UUID(department_id), "ended", visitor, started, started, ended, 0)
        assignment = (tenant, chat_id, uuid.UUID(department_id), uuid.UUID(agent_id), "accepted", started, started, ended)
        yield conversation_chat, messages, routing_chat, assignment


async def bulk_load(database_url: str, tenant: str, department_id: str, agent_id: str, count: int) -> dict:
    """`count` ended chats into conversation and routing; rows per second written."""
    conversation_chats, messages, routing_chats, assignments = [], [], [], []
    for c, m, r, a in chat_rows(tenant, department_id, agent_id, count):
        conversation_chats.append(c)
        messages.extend(m)
        routing_chats.append(r)
        assignments.append(a)
    conn = await asyncpg.connect(database_url)
    try:
        began = time.perf_counter()
        await conn.copy_records_to_table(
            "chats",
            schema_name="conversation",
            records=conversation_chats,
            columns=[
                "tenant",
                "id",
                "channel",
                "state",
                "department_id",
                "visitor_id",
                "agent_id",
                "started_at",
                "ended_at",
                "end_reason",
                "last_seq",
            ],
        )
        await conn.copy_records_to_table(
            "messages",
            schema_name="conversation",
            records=messages,
            columns=[
                "tenant",
                "chat_id",
                "seq",
                "id",
                "sender_kind",
                "sender_id",
                "kind",
                "channel",
                "text",
                "outgoing",
                "sent_at",
            ],
        )
        await conn.copy_records_to_table(
            "chats",
            schema_name="routing",
            records=routing_chats,
            columns=[
                "id",
                "tenant",
                "department_id",
                "state",
                "visitor_id",
                "queued_at",
                "assigned_at",
                "ended_at",
                "waited_seconds",
            ],
        )
        await conn.copy_records_to_table(
            "assignments",
            schema_name="routing",
            records=assignments,
            columns=["tenant", "chat_id", "department_id", "agent_id", "how", "queued_at", "assigned_at", "released_at"],
        )
        elapsed = time.perf_counter() - began
        await conn.execute("ANALYZE conversation.chats, conversation.messages, routing.chats, routing.assignments")
    finally:
        await conn.close()
    rows = len(conversation_chats) + len(messages) + len(routing_chats) + len(assignments)
    return {"rows": rows, "rows_per_s": rows / elapsed}
