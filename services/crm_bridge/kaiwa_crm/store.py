"""asyncpg queries of the built-in CRM (schema `crm`); every query is scoped by tenant."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg

from .domain import AttachmentInfo, Deal, DealChange, NewAttachment, Record

_RECORD_COLUMNS = "id, type, email, name, fields, owner, source, created_at"


async def find_record(conn: asyncpg.Connection, tenant: str, email: str, *, lock: bool = False) -> Record | None:
    row = await conn.fetchrow(
        f"SELECT {_RECORD_COLUMNS} FROM records WHERE tenant = $1 AND lower(email) = lower($2)" + (" FOR UPDATE" if lock else ""),
        tenant,
        email,
    )
    return await _load(conn, tenant, row) if row else None


async def get_record(conn: asyncpg.Connection, tenant: str, record_id: str) -> Record | None:
    row = await conn.fetchrow(
        f"SELECT {_RECORD_COLUMNS} FROM records WHERE tenant = $1 AND id = $2", tenant, uuid.UUID(record_id)
    )
    return await _load(conn, tenant, row) if row else None


async def insert_record(
    conn: asyncpg.Connection, tenant: str, *, type: str, email: str, name: str, fields: dict[str, str], owner: str, source: str
) -> str | None:
    """The new record's id, or None when the tenant already has a record for the e-mail."""
    record_id = await conn.fetchval(
        "INSERT INTO records (tenant, id, type, email, name, fields, owner, source) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, lower(email)) DO NOTHING RETURNING id",
        tenant,
        uuid.uuid4(),
        type,
        email,
        name,
        fields,
        owner,
        source,
    )
    return str(record_id) if record_id else None


async def update_record(
    conn: asyncpg.Connection,
    tenant: str,
    record_id: str,
    *,
    type: str,
    name: str,
    fields: dict[str, str],
    owner: str,
    source: str,
) -> None:
    await conn.execute(
        "UPDATE records SET type = $3, name = $4, fields = $5, owner = $6, source = $7, updated_at = now() "
        "WHERE tenant = $1 AND id = $2",
        tenant,
        uuid.UUID(record_id),
        type,
        name,
        fields,
        owner,
        source,
    )


async def insert_deal(conn: asyncpg.Connection, tenant: str, record_id: str, deal: DealChange) -> None:
    await conn.execute(
        "INSERT INTO deals (tenant, id, record_id, name, stage, amount, closing_date, open) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        tenant,
        uuid.uuid4(),
        uuid.UUID(record_id),
        deal.name,
        deal.stage,
        Decimal(repr(deal.amount)),
        deal.closing_date,
        deal.open,
    )


async def update_deal(conn: asyncpg.Connection, tenant: str, record_id: str, deal: DealChange) -> bool:
    status = await conn.execute(
        "UPDATE deals SET name = $4, stage = $5, amount = $6, closing_date = $7, open = $8 "
        "WHERE tenant = $1 AND record_id = $2 AND id = $3",
        tenant,
        uuid.UUID(record_id),
        uuid.UUID(deal.id),
        deal.name,
        deal.stage,
        Decimal(repr(deal.amount)),
        deal.closing_date,
        deal.open,
    )
    return status.endswith(" 1")


async def upsert_attachment(conn: asyncpg.Connection, tenant: str, record_id: str, attachment: NewAttachment) -> str:
    """Attach a file; a chat's attachment is replaced by a later one, never duplicated."""
    attachment_id = await conn.fetchval(
        "INSERT INTO attachments (tenant, id, record_id, name, mime_type, content, chat_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (tenant, record_id, chat_id) WHERE chat_id <> '' "
        "DO UPDATE SET name = EXCLUDED.name, mime_type = EXCLUDED.mime_type, content = EXCLUDED.content "
        "RETURNING id",
        tenant,
        uuid.uuid4(),
        uuid.UUID(record_id),
        attachment.name,
        attachment.mime_type,
        attachment.content,
        attachment.chat_id,
    )
    return str(attachment_id)


async def get_attachment(conn: asyncpg.Connection, tenant: str, attachment_id: str) -> tuple[AttachmentInfo, bytes] | None:
    row = await conn.fetchrow(
        "SELECT id, name, mime_type, octet_length(content) AS size, chat_id, created_at, content "
        "FROM attachments WHERE tenant = $1 AND id = $2",
        tenant,
        uuid.UUID(attachment_id),
    )
    return (_attachment(row), bytes(row["content"])) if row else None


async def _load(conn: asyncpg.Connection, tenant: str, row: asyncpg.Record) -> Record:
    deals = await conn.fetch(
        "SELECT id, name, stage, amount, closing_date, open FROM deals WHERE tenant = $1 AND record_id = $2 "
        "ORDER BY created_at, id",
        tenant,
        row["id"],
    )
    attachments = await conn.fetch(
        "SELECT id, name, mime_type, octet_length(content) AS size, chat_id, created_at FROM attachments "
        "WHERE tenant = $1 AND record_id = $2 ORDER BY created_at, id",
        tenant,
        row["id"],
    )
    return Record(
        id=str(row["id"]),
        type=row["type"],
        email=row["email"],
        name=row["name"],
        fields=dict(row["fields"]),
        owner=row["owner"],
        source=row["source"],
        created_at=row["created_at"],
        deals=[
            Deal(
                id=str(d["id"]),
                name=d["name"],
                stage=d["stage"],
                amount=float(d["amount"]),
                closing_date=d["closing_date"],
                open=d["open"],
            )
            for d in deals
        ],
        attachments=[_attachment(a) for a in attachments],
    )


def _attachment(row: asyncpg.Record) -> AttachmentInfo:
    return AttachmentInfo(
        id=str(row["id"]),
        name=row["name"],
        mime_type=row["mime_type"],
        size=row["size"],
        chat_id=row["chat_id"],
        created_at=row["created_at"],
    )
