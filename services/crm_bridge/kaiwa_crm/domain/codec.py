"""Domain values as JSON (the results and progress of queued writes, the record cache)."""

from __future__ import annotations

from datetime import date, datetime

from .activity import Note, Task
from .model import AttachmentInfo, Deal, Record


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def deal_json(d: Deal) -> dict:
    return {
        "id": d.id,
        "name": d.name,
        "stage": d.stage,
        "amount": d.amount,
        "closing_date": _iso(d.closing_date),
        "open": d.open,
    }


def deal_of(j: dict) -> Deal:
    return Deal(j["id"], j["name"], j["stage"], float(j["amount"]), _d(j.get("closing_date")), bool(j["open"]))


def record_json(r: Record) -> dict:
    return {
        "id": r.id,
        "type": r.type,
        "email": r.email,
        "name": r.name,
        "fields": r.fields,
        "owner": r.owner,
        "source": r.source,
        "created_at": _iso(r.created_at),
        "deals": [deal_json(d) for d in r.deals],
        "attachments": [
            {"id": a.id, "name": a.name, "mime_type": a.mime_type, "size": a.size, "chat_id": a.chat_id, "at": _iso(a.created_at)}
            for a in r.attachments
        ],
        "label": r.label,
        "account": r.account,
        "account_fields": r.account_fields,
    }


def record_of(j: dict) -> Record:
    return Record(
        id=j["id"],
        type=j["type"],
        email=j["email"],
        name=j["name"],
        fields=dict(j["fields"]),
        owner=j["owner"],
        source=j["source"],
        created_at=_dt(j.get("created_at")),
        deals=[deal_of(d) for d in j.get("deals", [])],
        attachments=[
            AttachmentInfo(a["id"], a["name"], a["mime_type"], a["size"], a["chat_id"], _dt(a.get("at")))
            for a in j.get("attachments", [])
        ],
        label=j.get("label", ""),
        account=j.get("account", ""),
        account_fields=dict(j.get("account_fields", {})),
    )


def note_json(n: Note) -> dict:
    return {**n.__dict__, "created_at": _iso(n.created_at)}


def note_of(j: dict) -> Note:
    return Note(**{**j, "created_at": _dt(j.get("created_at"))})


def task_json(t: Task) -> dict:
    return {**t.__dict__, "due_date": _iso(t.due_date)}


def task_of(j: dict) -> Task:
    return Task(**{**j, "due_date": _d(j.get("due_date"))})
