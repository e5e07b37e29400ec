"""What each CRM write does, against any adapter, step by step.

A write is a kind, a natural key, JSON parameters and maybe a file. Its play runs the
steps in order; each step's result is kept in `progress`. The built-in CRM runs a play
inside one transaction (progress is only in memory); for an external CRM the progress is
saved after every step, so a write retried after an outage or a crash never repeats a
step that was done (and a step whose answer was lost is looked for before it is redone:
the adapters' natural keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Awaitable, Callable

from kaiwa_common.errors import NotFound

from .adapters import CrmAdapter
from .domain import NewAttachment, RecordChanges
from .domain.activity import ChatActivity, Conversion, NewDeal, NewNote, NewRecord, NewTask, VisitPage
from .domain.codec import deal_json, note_json, record_json, record_of, task_json
from .domain.model import DealChange


@dataclass(frozen=True)
class Write:
    kind: str
    key: str
    params: dict
    content: bytes = b""


class Progress:
    def __init__(self, done: dict | None = None, save: Callable[[dict], Awaitable[None]] | None = None):
        self.done = dict(done or {})
        self._save = save

    async def step(self, name: str, run: Callable[[], Awaitable[Any]]) -> Any:
        if name in self.done:
            return self.done[name]
        value = await run()
        self.done[name] = value
        if self._save is not None:
            await self._save(self.done)
        return value


async def run(write: Write, crm: CrmAdapter, progress: Progress) -> dict:
    return await PLAYS[write.kind](crm, write.params, write.content, progress)


# --- events ---------------------------------------------------------------------------


async def chat_ended(crm: CrmAdapter, p: dict, content: bytes, progress: Progress) -> dict:
    """CRM-03..08 on chat_ended: the record (added per policy), follow-up task, transcript,
    the chat in the feed (attended chats), the automatic note, mapped fields."""
    found = await progress.step("record", lambda: _find_or_add(crm, p))
    if not found:
        return {"skipped": "no record for the visitor and the policy adds none"}
    record = record_of(found["record"])
    if found["created"] and p.get("follow_up"):
        task = NewTask(
            f"followup:{p['chat_id']}", p["follow_up"]["subject"], date.fromisoformat(p["follow_up"]["due"]), record.owner
        )
        await progress.step("follow_up", lambda: _task(crm, record, task))
    if p.get("attachment") and content:
        a = p["attachment"]
        attachment = NewAttachment(name=a["name"], mime_type=a["mime_type"], content=content, chat_id=p["chat_id"])
        await progress.step("attachment", lambda: _none(crm.attach(record, attachment)))
    if p.get("activity"):
        activity = _activity(p["activity"], p["chat_id"])
        await progress.step("activity", lambda: _none(crm.add_chat_activity(record, activity)))
    note = NewNote(
        key=p["note"]["key"],
        kind=p["note"]["kind"],
        title=p["note"]["title"],
        text=p["note"]["text"],
        author="kaiwa",
        chat_id=p["chat_id"],
    )
    await progress.step("note", lambda: _note(crm, record, note))
    if p.get("fields") and not found["created"]:
        await progress.step("fields", lambda: _none(crm.update_fields(record, p["fields"])))
    return {"record": found["record"], "created": found["created"], "chat_id": p["chat_id"], "source": p.get("source", "")}


async def page_viewed(crm: CrmAdapter, p: dict, content: bytes, progress: Progress) -> dict:
    """CRM-03 ("accessed") and CRM-08: the visit on the visitor's record, mapped fields."""
    found = await progress.step("record", lambda: _find_or_add(crm, p))
    if not found:
        return {"skipped": "no record for the visitor"}
    record = record_of(found["record"])
    if p.get("visit"):
        v = p["visit"]
        page = VisitPage(**{**v, "viewed_at": datetime.fromisoformat(v["viewed_at"]), "visitor_type": record.visitor_type})
        await progress.step("visit", lambda: _none(crm.record_visit(record, page)))
    if p.get("fields") and not found["created"]:
        await progress.step("fields", lambda: _none(crm.update_fields(record, p["fields"])))
    return {"record": found["record"], "created": found["created"], "source": p.get("source", ""), "visit": p.get("visit")}


async def visitor_identified(crm: CrmAdapter, p: dict, content: bytes, progress: Progress) -> dict:
    """VIS-03/CRM-08: the page views an identified visitor made so far, as visits on the
    record of their e-mail (each page once: the adapters key pages by page view id)."""
    found = await progress.step("record", lambda: _find_or_add(crm, {**p, "add": False}))
    if not found:
        return {"skipped": "no record for the visitor"}
    record = record_of(found["record"])
    for v in p["visits"]:
        page = VisitPage(**{**v, "viewed_at": datetime.fromisoformat(v["viewed_at"]), "visitor_type": record.visitor_type})
        await progress.step(f"visit:{v['page_view_id']}", lambda page=page: _none(crm.record_visit(record, page)))
    return {"record": found["record"], "created": False, "visits": len(p["visits"])}


# --- agent actions --------------------------------------------------------------------


async def add_record(crm: CrmAdapter, p: dict, content: bytes, progress: Progress) -> dict:
    found = await progress.step("record", lambda: _find_or_add(crm, {**p, "add": True}))
    record = record_of(found["record"])
    result = {
        "record": found["record"],
        "created": found["created"],
        "chat_id": p.get("chat_id", ""),
        "source": p["new"]["source"],
    }
    if p.get("note"):
        note = NewNote(**p["note"])
        result["note"] = await progress.step("note", lambda: _note(crm, record, note))
    return result


async def add_note(crm: CrmAdapter, p: dict, content: bytes, progress: Progress) -> dict:
    record = await _record(crm, p["record_id"])
    notify = record.owner if p["note"]["kind"] == "notify_sales" else ""
    note = NewNote(**{**p["note"], "notify": notify})
    return {"record": record_json(record), "note": await progress.step("note", lambda: _note(crm, record, note))}


async def update_fields(crm: CrmAdapter, p: dict, content: bytes, progress: Progress) -> dict:
    record = await _record(crm, p["record_id"])
    updated = await progress.step("fields", lambda: _json_record(crm.update_fields(record, p["fields"])))
    return {"record": updated}


async def convert_lead(crm: CrmAdapter, p: dict, content: bytes, progress: Progress) -> dict:
    record = await _record(crm, p["record_id"])
    d = p.get("deal")
    deal = NewDeal(d["key"], d["name"], d["stage"], d["amount"], _date(d["closing_date"])) if d else None

    async def convert() -> dict:
        account = p.get("account") or record.fields.get("company", "")  # the lead's company by default
        contact, made = await crm.convert_lead(record, Conversion(account=account, deal=deal))
        return {"record": record_json(contact), "deal": deal_json(made) if made else None}

    return await progress.step("convert", convert)


async def add_deal(crm: CrmAdapter, p: dict, content: bytes, progress: Progress) -> dict:
    record = await _record(crm, p["record_id"])
    d = p["deal"]
    deal = NewDeal(d["key"], d["name"], d["stage"], d["amount"], _date(d["closing_date"]))
    made = await progress.step("deal", lambda: _json_deal(crm.add_deal(record, deal)))
    return {"record": record_json(await _record(crm, record.id)), "deal": made}


async def add_task(crm: CrmAdapter, p: dict, content: bytes, progress: Progress) -> dict:
    record = await _record(crm, p["record_id"])
    t = p["task"]
    task = NewTask(t["key"], t["subject"], date.fromisoformat(t["due_date"]), t.get("owner") or record.owner)
    return {"record": record_json(record), "task": await progress.step("task", lambda: _task(crm, record, task))}


async def upsert_record(crm: CrmAdapter, p: dict, content: bytes, progress: Progress) -> dict:
    c = p["changes"]
    deals = tuple(DealChange(**{**d, "closing_date": _date(d["closing_date"])}) for d in c["deals"])
    changes = RecordChanges(**{**c, "deals": deals})

    async def upsert() -> dict:
        record, created = await crm.upsert(changes)
        return {"record": record_json(record), "created": created}

    return {**await progress.step("upsert", upsert), "source": changes.source}


PLAYS = {
    "chat_ended": chat_ended,
    "page_viewed": page_viewed,
    "visitor_identified": visitor_identified,
    "add_record": add_record,
    "add_note": add_note,
    "notify_sales": add_note,
    "update_fields": update_fields,
    "convert_lead": convert_lead,
    "add_deal": add_deal,
    "add_task": add_task,
    "upsert_record": upsert_record,
}


# --- steps ----------------------------------------------------------------------------


async def _find_or_add(crm: CrmAdapter, p: dict) -> dict | None:
    record = await crm.find(p["email"])
    if record is not None:
        return {"record": record_json(record), "created": False}
    if not p.get("add"):
        return None
    n = p["new"]
    record, created = await crm.create(
        NewRecord(
            type=n["type"],
            email=p["email"],
            name=n["name"],
            owner=n["owner"],
            source=n["source"],
            label=n.get("label", ""),
            fields=n.get("fields", {}),
            account=n.get("account", ""),
        )
    )
    return {"record": record_json(record), "created": created}


async def _record(crm: CrmAdapter, record_id: str):
    record = await crm.get(record_id)
    if record is None:
        raise NotFound(f"no lead or contact {record_id} in the CRM")
    return record


async def _note(crm: CrmAdapter, record, note: NewNote) -> dict:
    return note_json(await crm.add_note(record, note))


async def _task(crm: CrmAdapter, record, task: NewTask) -> dict:
    return task_json(await crm.add_task(record, task))


async def _json_record(pending) -> dict:
    return record_json(await pending)


async def _json_deal(pending) -> dict:
    return deal_json(await pending)


async def _none(pending) -> bool:
    await pending
    return True


def _activity(a: dict, chat_id: str) -> ChatActivity:
    return ChatActivity(
        chat_id=chat_id,
        subject=a["subject"],
        agent=a["agent"],
        visitor=a["visitor"],
        link=a["link"],
        started_at=_when(a.get("started_at")),
        ended_at=_when(a.get("ended_at")),
    )


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
