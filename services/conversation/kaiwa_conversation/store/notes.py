"""Internal notes on a chat or a visitor (CONV-07). Every query is scoped by tenant."""

from __future__ import annotations

import uuid
from datetime import datetime


async def add_note(conn, tenant: str, chat_id, visitor_id, author: str, text: str) -> dict:
    return dict(
        await conn.fetchrow(
            "INSERT INTO notes (tenant, id, chat_id, visitor_id, author_id, text) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            tenant,
            uuid.uuid4(),
            chat_id,
            visitor_id,
            author,
            text,
        )
    )


async def note(conn, tenant: str, note_id) -> dict | None:
    row = await conn.fetchrow("SELECT * FROM notes WHERE tenant = $1 AND id = $2", tenant, note_id)
    return dict(row) if row else None


async def list_notes(conn, tenant: str, chat_id, visitor_id, after: tuple[datetime, str] | None, limit: int):
    where = "chat_id = $2" if chat_id else "visitor_id = $2"
    rows = await conn.fetch(
        f"SELECT * FROM notes WHERE tenant = $1 AND {where} AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid)) "
        "ORDER BY created_at, id LIMIT $5",
        tenant,
        chat_id or visitor_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [dict(r) for r in rows]
