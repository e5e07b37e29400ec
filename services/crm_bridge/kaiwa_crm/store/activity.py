"""The built-in CRM's notes, tasks, chat activities, visits and custom fields. Each
write is keyed naturally (ON CONFLICT DO NOTHING), so repeating it changes nothing."""

from __future__ import annotations

import uuid

import asyncpg

from ..domain.activity import Activity, ChatActivity, NewNote, NewTask, Note, Task, Visit, VisitPage


async def add_note(conn: asyncpg.Connection, tenant: str, record_id: str, note: NewNote) -> Note:
    await conn.execute(
        "INSERT INTO notes (tenant, id, record_id, key, kind, title, body, author, notify, chat_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant, key) DO NOTHING",
        tenant,
        uuid.uuid4(),
        uuid.UUID(record_id),
        note.key,
        note.kind,
        note.title,
        note.text,
        note.author,
        note.notify,
        note.chat_id,
    )
    row = await conn.fetchrow(f"SELECT {_NOTE} FROM notes WHERE tenant = $1 AND key = $2", tenant, note.key)
    return _note(row)


async def list_notes(conn: asyncpg.Connection, tenant: str, record_id: str) -> list[Note]:
    rows = await conn.fetch(
        f"SELECT {_NOTE} FROM notes WHERE tenant = $1 AND record_id = $2 ORDER BY created_at, id",
        tenant,
        uuid.UUID(record_id),
    )
    return [_note(r) for r in rows]


async def add_task(conn: asyncpg.Connection, tenant: str, record_id: str, task: NewTask) -> Task:
    await conn.execute(
        "INSERT INTO tasks (tenant, id, record_id, key, subject, due_date, owner) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, key) DO NOTHING",
        tenant,
        uuid.uuid4(),
        uuid.UUID(record_id),
        task.key,
        task.subject,
        task.due_date,
        task.owner,
    )
    row = await conn.fetchrow(f"SELECT {_TASK} FROM tasks WHERE tenant = $1 AND key = $2", tenant, task.key)
    return _task(row)


async def list_tasks(conn: asyncpg.Connection, tenant: str, record_id: str) -> list[Task]:
    rows = await conn.fetch(
        f"SELECT {_TASK} FROM tasks WHERE tenant = $1 AND record_id = $2 ORDER BY due_date, created_at",
        tenant,
        uuid.UUID(record_id),
    )
    return [_task(r) for r in rows]


async def add_activity(conn: asyncpg.Connection, tenant: str, record_id: str, deal_id: str | None, a: ChatActivity) -> None:
    conflict = (
        "(tenant, deal_id, chat_id) WHERE deal_id IS NOT NULL"
        if deal_id
        else "(tenant, record_id, chat_id) WHERE deal_id IS NULL"
    )
    await conn.execute(
        "INSERT INTO activities (tenant, id, record_id, deal_id, chat_id, subject, agent, visitor, link, started_at, ended_at) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT {conflict} DO NOTHING",
        tenant,
        uuid.uuid4(),
        uuid.UUID(record_id),
        uuid.UUID(deal_id) if deal_id else None,
        a.chat_id,
        a.subject,
        a.agent,
        a.visitor,
        a.link,
        a.started_at,
        a.ended_at,
    )


async def list_activities(conn: asyncpg.Connection, tenant: str, record_id: str, deal_id: str | None) -> list[Activity]:
    rows = await conn.fetch(
        "SELECT id, chat_id, subject, agent, visitor, link, started_at, ended_at FROM activities "
        "WHERE tenant = $1 AND record_id = $2 AND deal_id IS NOT DISTINCT FROM $3 ORDER BY started_at DESC NULLS LAST, id",
        tenant,
        uuid.UUID(record_id),
        uuid.UUID(deal_id) if deal_id else None,
    )
    return [
        Activity(
            str(r["id"]), "chat", r["chat_id"], r["subject"], r["agent"], r["visitor"], r["link"], r["started_at"], r["ended_at"]
        )
        for r in rows
    ]


async def deal_record(conn: asyncpg.Connection, tenant: str, deal_id: str) -> str | None:
    found = await conn.fetchval("SELECT record_id FROM deals WHERE tenant = $1 AND id = $2", tenant, uuid.UUID(deal_id))
    return str(found) if found else None


async def add_visit_page(conn: asyncpg.Connection, tenant: str, record_id: str, page: VisitPage) -> None:
    """One row per visit; a page is appended once (by page view id), in the order viewed."""
    entry = {"id": page.page_view_id, "url": page.url, "title": page.title, "at": page.viewed_at.isoformat()}
    await conn.execute(
        "INSERT INTO visits (tenant, id, record_id, visit_id, ip, referrer, user_agent, attended_by, visitor_type, "
        "search_engine, search_keywords, pages, first_at, last_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, jsonb_build_array($12::jsonb), $13, $13) "
        "ON CONFLICT (tenant, record_id, visit_id) DO UPDATE SET "
        "pages = CASE WHEN visits.pages @> jsonb_build_array(jsonb_build_object('id', $14::text)) THEN visits.pages "
        "  ELSE (SELECT jsonb_agg(p ORDER BY p->>'at') "
        "        FROM jsonb_array_elements(visits.pages || jsonb_build_array($12::jsonb)) p) END, "
        "first_at = least(visits.first_at, EXCLUDED.first_at), last_at = greatest(visits.last_at, EXCLUDED.last_at), "
        "attended_by = CASE WHEN EXCLUDED.attended_by <> '' THEN EXCLUDED.attended_by ELSE visits.attended_by END, "
        "visitor_type = EXCLUDED.visitor_type, "
        "ip = CASE WHEN visits.ip = '' THEN EXCLUDED.ip ELSE visits.ip END, "
        "user_agent = CASE WHEN visits.user_agent = '' THEN EXCLUDED.user_agent ELSE visits.user_agent END",
        tenant,
        uuid.uuid4(),
        uuid.UUID(record_id),
        page.visit_id,
        page.ip,
        page.referrer,
        page.user_agent,
        page.attended_by,
        page.visitor_type,
        page.search_engine,
        page.search_keywords,
        entry,
        page.viewed_at,
        page.page_view_id,
    )


async def list_visits(conn: asyncpg.Connection, tenant: str, record_id: str) -> list[Visit]:
    rows = await conn.fetch(
        "SELECT * FROM visits WHERE tenant = $1 AND record_id = $2 ORDER BY first_at DESC", tenant, uuid.UUID(record_id)
    )
    return [
        Visit(
            visit_id=r["visit_id"],
            ip=r["ip"],
            pages=[p["url"] for p in r["pages"]],
            page_titles=[p["title"] for p in r["pages"]],
            referrer=r["referrer"],
            user_agent=r["user_agent"],
            attended_by=r["attended_by"],
            visitor_type=r["visitor_type"],
            search_engine=r["search_engine"],
            search_keywords=r["search_keywords"],
            first_at=r["first_at"],
            last_at=r["last_at"],
        )
        for r in rows
    ]


async def define_custom_field(conn: asyncpg.Connection, tenant: str, record_type: str, name: str, label: str) -> None:
    await conn.execute(
        "INSERT INTO custom_fields (tenant, record_type, name, label) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (tenant, record_type, name) DO UPDATE SET label = EXCLUDED.label",
        tenant,
        record_type,
        name,
        label,
    )


async def custom_fields(conn: asyncpg.Connection, tenant: str) -> list[tuple[str, str, str]]:
    rows = await conn.fetch(
        "SELECT record_type, name, label FROM custom_fields WHERE tenant = $1 ORDER BY record_type, name", tenant
    )
    return [(r["record_type"], r["name"], r["label"]) for r in rows]


_NOTE = "id, record_id, kind, title, body, author, notify, created_at"
_TASK = "id, record_id, subject, due_date, owner, status"


def _note(row) -> Note:
    return Note(
        str(row["id"]),
        str(row["record_id"]),
        row["kind"],
        row["title"],
        row["body"],
        row["author"],
        row["notify"],
        row["created_at"],
    )


def _task(row) -> Task:
    return Task(str(row["id"]), str(row["record_id"]), row["subject"], row["due_date"], row["owner"], row["status"])
