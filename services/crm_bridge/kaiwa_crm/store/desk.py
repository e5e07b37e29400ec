"""The built-in help desk's tables: tickets, their chats, departments that convert."""

from __future__ import annotations

import uuid

import asyncpg

from ..domain.desk import NewTicket, Query, Ticket

_COLUMNS = (
    "t.id, t.number, t.subject, t.description, t.email, t.name, t.priority, t.status, t.category, t.chat_id, "
    "t.message_seq, t.created_by, t.created_at, t.updated_at, "
    "ARRAY(SELECT c.chat_id FROM ticket_chats c WHERE c.tenant = t.tenant AND c.ticket_id = t.id "
    "      ORDER BY c.created_at) AS chat_ids"
)


async def set_department(conn: asyncpg.Connection, tenant: str, department_id: str, enabled: bool) -> None:
    await conn.execute(
        "INSERT INTO desk_departments (tenant, department_id, conversion_enabled) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant, department_id) DO UPDATE SET conversion_enabled = EXCLUDED.conversion_enabled",
        tenant,
        department_id,
        enabled,
    )


async def departments(conn: asyncpg.Connection, tenant: str) -> list[tuple[str, bool]]:
    rows = await conn.fetch("SELECT department_id, conversion_enabled FROM desk_departments WHERE tenant = $1 ORDER BY 1", tenant)
    return [(r["department_id"], r["conversion_enabled"]) for r in rows]


async def conversion_enabled(conn: asyncpg.Connection, tenant: str, department_id: str) -> bool:
    found = await conn.fetchval(
        "SELECT conversion_enabled FROM desk_departments WHERE tenant = $1 AND department_id = $2", tenant, department_id
    )
    return bool(found)


async def insert(conn: asyncpg.Connection, tenant: str, t: NewTicket) -> tuple[Ticket, bool]:
    """The new ticket, or the one this chat (message) already became: (ticket, created)."""
    existing = await by_source(conn, tenant, t.chat_id, t.message_seq)
    if existing is not None:
        return existing, False
    number = await conn.fetchval(
        "INSERT INTO ticket_numbers (tenant, last) VALUES ($1, 1) "
        "ON CONFLICT (tenant) DO UPDATE SET last = ticket_numbers.last + 1 RETURNING last",
        tenant,
    )
    ticket_id = await conn.fetchval(
        "INSERT INTO tickets (tenant, id, number, subject, description, email, name, priority, status, category, chat_id, "
        "message_seq, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
        "ON CONFLICT (tenant, chat_id, message_seq) WHERE chat_id <> '' DO NOTHING RETURNING id",
        tenant,
        uuid.uuid4(),
        number,
        t.subject,
        t.description,
        t.email,
        t.name,
        t.priority,
        t.status,
        t.category,
        t.chat_id,
        t.message_seq,
        t.created_by,
    )
    if ticket_id is None:  # a concurrent conversion of the same chat won
        return await by_source(conn, tenant, t.chat_id, t.message_seq), False
    if t.chat_id:
        await associate(conn, tenant, str(ticket_id), t.chat_id)
    return await get(conn, tenant, Query("id", str(ticket_id))), True


async def by_source(conn: asyncpg.Connection, tenant: str, chat_id: str, message_seq: int) -> Ticket | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM tickets t WHERE t.tenant = $1 AND t.chat_id = $2 AND t.message_seq = $3",
        tenant,
        chat_id,
        message_seq,
    )
    return _ticket(row) if row else None


async def get(conn: asyncpg.Connection, tenant: str, ref: Query) -> Ticket | None:
    where = "t.id = $2::uuid" if ref.kind == "id" else "t.number = $2::bigint"
    value = ref.value if ref.kind == "id" else int(ref.value)
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM tickets t WHERE t.tenant = $1 AND {where}", tenant, value)
    return _ticket(row) if row else None


async def of_chat(conn: asyncpg.Connection, tenant: str, chat_id: str) -> Ticket | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM tickets t JOIN ticket_chats c ON c.tenant = t.tenant AND c.ticket_id = t.id "
        "WHERE t.tenant = $1 AND c.chat_id = $2 ORDER BY c.created_at DESC LIMIT 1",
        tenant,
        chat_id,
    )
    return _ticket(row) if row else None


async def search(conn: asyncpg.Connection, tenant: str, q: Query, limit: int = 50) -> list[Ticket]:
    if q.kind in ("id", "number"):
        found = await get(conn, tenant, q)
        return [found] if found else []
    if q.kind == "email":
        where, value = "lower(t.email) = $2", q.value
    else:
        where, value = (
            "t.name ILIKE $2 ESCAPE '\\'",
            "%" + q.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",
        )
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM tickets t WHERE t.tenant = $1 AND {where} ORDER BY t.created_at DESC, t.number DESC LIMIT $3",
        tenant,
        value,
        limit,
    )
    return [_ticket(r) for r in rows]


async def associate(conn: asyncpg.Connection, tenant: str, ticket_id: str, chat_id: str) -> None:
    await conn.execute(
        "INSERT INTO ticket_chats (tenant, ticket_id, chat_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        tenant,
        uuid.UUID(ticket_id),
        chat_id,
    )


async def set_status(conn: asyncpg.Connection, tenant: str, ticket_id: str, status: int) -> None:
    await conn.execute(
        "UPDATE tickets SET status = $3, updated_at = now() WHERE tenant = $1 AND id = $2", tenant, uuid.UUID(ticket_id), status
    )


def _ticket(row) -> Ticket:
    return Ticket(
        id=str(row["id"]),
        number=row["number"],
        subject=row["subject"],
        description=row["description"],
        email=row["email"],
        name=row["name"],
        priority=row["priority"],
        status=row["status"],
        category=row["category"],
        chat_id=row["chat_id"],
        message_seq=row["message_seq"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        chat_ids=list(row["chat_ids"]),
    )
