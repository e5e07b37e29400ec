"""Messages, stream events and delivery statuses of a chat (asyncpg). Every query is
scoped by tenant."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import asyncpg

from kaiwa_common.outbox import OutboxRow


MESSAGE_COLUMNS = (
    "tenant",
    "chat_id",
    "seq",
    "id",
    "sender_kind",
    "sender_id",
    "kind",
    "channel",
    "text",
    "body",
    "outgoing",
    "reply_to_seq",
    "part",
    "parts",
    "resent_from_seq",
    "client_message_id",
    "emoji_only",
)


_INSERT_MESSAGES = (
    f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) SELECT * FROM unnest("
    "$1::text[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], "
    "$9::text[], $10::jsonb[], $11::bool[], $12::bigint[], $13::int[], $14::int[], $15::bigint[], "
    "$16::text[], $17::bool[]) RETURNING sent_at"
)


async def insert_messages(conn: asyncpg.Connection, rows: list[dict]) -> None:
    """One round trip for all parts; fills in sent_at."""
    sent = await conn.fetch(_INSERT_MESSAGES, *[[r[c] for r in rows] for c in MESSAGE_COLUMNS])
    for row, s in zip(rows, sent, strict=True):
        row["sent_at"] = s["sent_at"]


_APPEND_IF_UNCHANGED = (
    "WITH c AS (UPDATE chats SET last_seq = $3, last_activity_at = $22, "
    "last_inbound_at = coalesce($18, last_inbound_at) "
    "WHERE tenant = $1 AND id = $2 AND md5(chats::text) = $19 RETURNING id, md5(chats::text) AS version), "
    f"m AS (INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}, sent_at) "
    "SELECT $1, c.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $22 FROM c RETURNING sent_at), "
    "o AS (INSERT INTO outbox (id, tenant, subject, envelope) SELECT $23, $1, $24, $25 FROM c) "
    "SELECT c.version, pg_notify($20, ''), pg_notify($21, $2::text || ' ' || $3 || $26) FROM c, m"
)


NOTIFY_LIMIT = 7900  # PostgreSQL refuses payloads of 8000 bytes and more


async def append_if_unchanged(
    conn: asyncpg.Connection,
    chat: dict,
    version: str,
    row: dict,
    inbound_at,
    outbox_row: OutboxRow,
    outbox_channel: str,
    live_channel: str,
) -> str | None:
    """One statement (one implicit transaction): chat sequence, message, outbox event and
    both wake-ups, applied only if the chat's row is still at `version`, the one the
    caller validated against. Returns the row's new version (None: nothing written)."""
    row["sent_at"] = datetime.now(timezone.utc)
    # The watchers of this chat get the message itself with the wake-up when it fits.
    data = json.dumps(
        {k: (str(v) if isinstance(v, uuid.UUID) else v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    extra = " " + data if len(data.encode()) + 100 < NOTIFY_LIMIT else ""
    return await conn.fetchval(
        _APPEND_IF_UNCHANGED,
        *[row[c] for c in MESSAGE_COLUMNS],
        inbound_at,
        version,
        outbox_channel,
        live_channel,
        row["sent_at"],
        outbox_row.event.id,
        outbox_row.subject,
        outbox_row.envelope,
        extra,
    )


async def insert_event(conn, tenant: str, chat_id, seq: int, kind: str, data: dict) -> None:
    await conn.execute(
        "INSERT INTO chat_events (tenant, chat_id, seq, kind, data) VALUES ($1, $2, $3, $4, $5)", tenant, chat_id, seq, kind, data
    )


_MESSAGE_SELECT = (
    "SELECT m.*, coalesce(s.status, CASE WHEN m.outgoing THEN 'sent' END) AS status, "
    "coalesce(s.failure_reason, '') AS failure_reason FROM messages m "
    "LEFT JOIN message_status s ON s.tenant = m.tenant AND s.chat_id = m.chat_id AND s.seq = m.seq "
)


async def message(conn, tenant: str, chat_id, seq: int) -> dict | None:
    row = await conn.fetchrow(_MESSAGE_SELECT + "WHERE m.tenant = $1 AND m.chat_id = $2 AND m.seq = $3", tenant, chat_id, seq)
    return dict(row) if row else None


async def messages_from(conn, tenant: str, chat_id, first_seq: int, count: int) -> list[dict]:
    """`count` messages of a chat from `first_seq` on (the parts of one split message)."""
    rows = await conn.fetch(
        _MESSAGE_SELECT + "WHERE m.tenant = $1 AND m.chat_id = $2 AND m.seq >= $3 ORDER BY m.seq LIMIT $4",
        tenant,
        chat_id,
        first_seq,
        count,
    )
    return [dict(r) for r in rows]


async def messages_by_client_id(conn, tenant: str, chat_id, sender_id: str, client_id: str) -> list[dict]:
    rows = await conn.fetch(
        _MESSAGE_SELECT + "WHERE m.tenant = $1 AND m.chat_id = $2 AND m.sender_id = $3 "
        "AND m.client_message_id = $4 ORDER BY m.seq",
        tenant,
        chat_id,
        sender_id,
        client_id,
    )
    return [dict(r) for r in rows]


async def messages_page(conn, tenant: str, chat_ids: list, after_seq: int, limit: int, include_notes: bool) -> list[dict]:
    rows = await conn.fetch(
        _MESSAGE_SELECT + "WHERE m.tenant = $1 AND m.chat_id = ANY($2::uuid[]) AND m.seq > $3 "
        "AND ($5 OR m.kind <> 'note') ORDER BY m.chat_id, m.seq LIMIT $4",
        tenant,
        chat_ids,
        after_seq,
        limit,
        include_notes,
    )
    return [dict(r) for r in rows]


async def history_messages(conn, tenant: str, chat_ids: list, per_chat: int, include_notes: bool) -> list[dict]:
    rows = await conn.fetch(
        "SELECT * FROM (SELECT x.*, row_number() OVER (PARTITION BY x.chat_id ORDER BY x.seq) AS n FROM ("
        + _MESSAGE_SELECT
        + "WHERE m.tenant = $1 AND m.chat_id = ANY($2::uuid[]) AND ($4 OR m.kind <> 'note')"
        ") x) y WHERE n <= $3 + 1 ORDER BY chat_id, seq",
        tenant,
        chat_ids,
        per_chat,
        include_notes,
    )
    return [dict(r) for r in rows]


async def events_between(conn, tenant: str, chat_id, after: int, upto: int) -> list[tuple[int, str, dict]]:
    """Durable stream events (after, upto], in sequence order: (seq, kind, data)."""
    messages = await conn.fetch(
        "SELECT *, CASE WHEN outgoing THEN 'sent' END AS status, '' AS failure_reason "
        "FROM messages WHERE tenant = $1 AND chat_id = $2 AND seq > $3 AND seq <= $4",
        tenant,
        chat_id,
        after,
        upto,
    )
    others = await conn.fetch(
        "SELECT seq, kind, data FROM chat_events WHERE tenant = $1 AND chat_id = $2 AND seq > $3 AND seq <= $4",
        tenant,
        chat_id,
        after,
        upto,
    )
    merged = [(m["seq"], "message", dict(m)) for m in messages] + [(e["seq"], e["kind"], e["data"]) for e in others]
    merged.sort(key=lambda item: item[0])
    return merged


async def set_status(conn, tenant: str, chat_id, seq: int, status: str, reason: str) -> None:
    await conn.execute(
        "INSERT INTO message_status (tenant, chat_id, seq, status, failure_reason) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (tenant, chat_id, seq) DO UPDATE SET status = EXCLUDED.status, "
        "failure_reason = EXCLUDED.failure_reason, updated_at = now()",
        tenant,
        chat_id,
        seq,
        status,
        reason,
    )


async def find_system_message(conn, tenant: str, chat_id, type_name: str, key: str, value: str) -> int | None:
    return await conn.fetchval(
        "SELECT seq FROM messages WHERE tenant = $1 AND chat_id = $2 AND kind = 'system' "
        "AND body->'system'->>'type' = $3 AND body->'system'->'params'->>$4 = $5 ORDER BY seq DESC LIMIT 1",
        tenant,
        chat_id,
        type_name,
        key,
        value,
    )
