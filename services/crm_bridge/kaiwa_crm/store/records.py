"""The built-in CRM's records (leads and contacts), accounts, deals and attachments."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg

from ..domain import AttachmentInfo, Deal, DealChange, NewAttachment, Record

_RECORD_COLUMNS = (
    "r.id, r.type, r.email, r.name, r.fields, r.owner, r.source, r.created_at, r.label, "
    "coalesce(a.name, '') AS account, coalesce(a.fields, '{}'::jsonb) AS account_fields"
)
_FROM = "FROM records r LEFT JOIN accounts a ON a.tenant = r.tenant AND a.id = r.account_id"


async def find_record(conn: asyncpg.Connection, tenant: str, email: str, *, lock: bool = False) -> Record | None:
    row = await conn.fetchrow(
        f"SELECT {_RECORD_COLUMNS} {_FROM} WHERE r.tenant = $1 AND lower(r.email) = lower($2)"
        + (" FOR UPDATE OF r" if lock else ""),
        tenant,
        email,
    )
    return await _load(conn, tenant, row) if row else None


async def get_record(conn: asyncpg.Connection, tenant: str, record_id: str, *, lock: bool = False) -> Record | None:
    row = await conn.fetchrow(
        f"SELECT {_RECORD_COLUMNS} {_FROM} WHERE r.tenant = $1 AND r.id = $2" + (" FOR UPDATE OF r" if lock else ""),
        tenant,
        uuid.UUID(record_id),
    )
    return await _load(conn, tenant, row) if row else None


async def insert_record(
    conn: asyncpg.Connection,
    tenant: str,
    *,
    type: str,
    email: str,
    name: str,
    fields: dict[str, str],
    owner: str,
    source: str,
    label: str = "",
    account_id: str | None = None,
) -> str | None:
    """The new record's id, or None when the tenant already has a record for the e-mail."""
    record_id = await conn.fetchval(
        "INSERT INTO records (tenant, id, type, email, name, fields, owner, source, label, account_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant, lower(email)) DO NOTHING RETURNING id",
        tenant,
        uuid.uuid4(),
        type,
        email,
        name,
        fields,
        owner,
        source,
        label,
        uuid.UUID(account_id) if account_id else None,
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


async def set_fields(conn: asyncpg.Connection, tenant: str, record_id: str, fields: dict[str, str]) -> None:
    await conn.execute(
        "UPDATE records SET fields = $3, updated_at = now() WHERE tenant = $1 AND id = $2",
        tenant,
        uuid.UUID(record_id),
        fields,
    )


async def make_contact(conn: asyncpg.Connection, tenant: str, record_id: str, account_id: str | None) -> None:
    await conn.execute(
        "UPDATE records SET type = 'contact', account_id = coalesce($3, account_id), updated_at = now() "
        "WHERE tenant = $1 AND id = $2",
        tenant,
        uuid.UUID(record_id),
        uuid.UUID(account_id) if account_id else None,
    )


async def account_id(conn: asyncpg.Connection, tenant: str, name: str) -> str:
    """The account of this name, created when missing (one per name and tenant)."""
    found = await conn.fetchval(
        "INSERT INTO accounts (tenant, id, name) VALUES ($1, $2, $3) "
        "ON CONFLICT (tenant, lower(name)) DO UPDATE SET name = accounts.name RETURNING id",
        tenant,
        uuid.uuid4(),
        name,
    )
    return str(found)


async def insert_deal(conn: asyncpg.Connection, tenant: str, record_id: str, deal: DealChange, key: str = "") -> str:
    """The deal's id; with a key, a deal already made for it is returned instead."""
    deal_id = await conn.fetchval(
        "INSERT INTO deals (tenant, id, record_id, name, stage, amount, closing_date, open, key) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (tenant, key) WHERE key <> '' DO NOTHING RETURNING id",
        tenant,
        uuid.uuid4(),
        uuid.UUID(record_id),
        deal.name,
        deal.stage,
        Decimal(repr(deal.amount)),
        deal.closing_date,
        deal.open,
        key,
    )
    if deal_id is None:
        deal_id = await conn.fetchval("SELECT id FROM deals WHERE tenant = $1 AND key = $2", tenant, key)
    return str(deal_id)


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
        label=row["label"],
        account=row["account"],
        account_fields=dict(row["account_fields"]),
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
