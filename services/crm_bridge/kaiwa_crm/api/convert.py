"""Protobuf <-> domain values for the CRM bridge's API."""

from __future__ import annotations

from datetime import date

from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb

from kaiwa_common.errors import InvalidArgument
from kaiwa_common.protobuf import timestamp

from ..domain import CONTACT, LEAD, AttachmentInfo, Record
from ..domain.activity import Activity, Note, Task, Visit
from ..domain.codec import deal_of, note_of, record_of, task_of
from ..domain.context import Context
from ..domain.model import Deal
from ..store.writes import StoredWrite
from ..writes import Outcome

TYPE_TO_PB = {LEAD: pb.RECORD_TYPE_LEAD, CONTACT: pb.RECORD_TYPE_CONTACT}
TYPE_FROM_PB = {pb.RECORD_TYPE_UNSPECIFIED: None, pb.RECORD_TYPE_LEAD: LEAD, pb.RECORD_TYPE_CONTACT: CONTACT}
WRITE_STATES = {"done": pb.WRITE_STATE_DONE, "queued": pb.WRITE_STATE_QUEUED, "dead": pb.WRITE_STATE_DEAD_LETTER}


def record_type(value: int, what: str = "type") -> str | None:
    if value not in TYPE_FROM_PB:
        raise InvalidArgument(f"{what}: {value} is not a record type (lead or contact)", field=what)
    return TYPE_FROM_PB[value]


def record_pb(record: Record, show_owner: bool = True) -> pb.Record:
    message = pb.Record(
        id=record.id,
        type=TYPE_TO_PB[record.type],
        email=record.email,
        name=record.name,
        fields=record.visible_fields,
        owner=record.owner if show_owner else "",
        source=record.source,
        attachments=[attachment_pb(a) for a in record.attachments],
        deals=[deal_pb(d) for d in record.deals],
        visitor_type=record.visitor_type,
        label=record.label,
        account=record.account,
    )
    if record.created_at is not None:
        message.created_at.FromDatetime(record.created_at)
    return message


def deal_pb(d: Deal) -> pb.Deal:
    closing = d.closing_date.isoformat() if d.closing_date else ""
    return pb.Deal(id=d.id, name=d.name, stage=d.stage, amount=d.amount, closing_date=closing, open=d.open)


def attachment_pb(info: AttachmentInfo) -> pb.Attachment:
    return pb.Attachment(
        id=info.id,
        name=info.name,
        mime_type=info.mime_type,
        size=info.size,
        chat_id=info.chat_id,
        created_at=timestamp(info.created_at),
    )


def note_pb(n: Note) -> pb.Note:
    return pb.Note(
        id=n.id,
        record_id=n.record_id,
        kind=n.kind,
        title=n.title,
        text=n.text,
        author=n.author,
        notify=n.notify,
        created_at=timestamp(n.created_at),
    )


def task_pb(t: Task) -> pb.Task:
    due = t.due_date.isoformat() if t.due_date else ""
    return pb.Task(id=t.id, record_id=t.record_id, subject=t.subject, due_date=due, owner=t.owner, status=t.status)


def result_pb(outcome: Outcome, show_owner: bool = True) -> pb.ActionResult:
    r = outcome.result or {}
    message = pb.ActionResult(state=WRITE_STATES[outcome.state], write_id=outcome.write_id, error=outcome.error)
    if r.get("record"):
        message.record.CopyFrom(record_pb(record_of(r["record"]), show_owner))
    if r.get("note"):
        message.note.CopyFrom(note_pb(note_of(r["note"])))
    if r.get("task"):
        message.task.CopyFrom(task_pb(task_of(r["task"])))
    if r.get("deal"):
        message.deal.CopyFrom(deal_pb(deal_of(r["deal"])))
    return message


def context_pb(c: Context) -> pb.CrmContext:
    message = pb.CrmContext(
        connected=c.connected,
        found=c.found,
        fields=[pb.ContextField(key=f.key, label=f.label, value=f.value) for f in c.fields],
        company_fields=[pb.ContextField(key=f.key, label=f.label, value=f.value) for f in c.company_fields],
        open_deal_count=c.open_deal_count,
        open_deal_amount=c.open_deal_amount,
        can_add_record=c.can_add_record,
        can_notify_sales=c.can_notify_sales,
        message=c.message,
        stale=c.stale,
    )
    if c.record is not None:
        message.record.CopyFrom(record_pb(c.record))
    return message


def activity_pb(a: Activity) -> pb.Activity:
    return pb.Activity(
        id=a.id,
        kind=a.kind,
        chat_id=a.chat_id,
        started_at=timestamp(a.started_at),
        ended_at=timestamp(a.ended_at),
        agent=a.agent,
        visitor=a.visitor,
        link=a.link,
        subject=a.subject,
        due_date=a.due_date.isoformat() if a.due_date else "",
    )


def visit_pb(v: Visit) -> pb.Visit:
    return pb.Visit(
        visit_id=v.visit_id,
        ip=v.ip,
        pages=v.pages,
        page_titles=v.page_titles,
        time_spent_minutes=v.time_spent_minutes,
        referrer=v.referrer,
        user_agent=v.user_agent,
        attended_by=v.attended_by,
        visitor_type=v.visitor_type,
        search_engine=v.search_engine,
        search_keywords=v.search_keywords,
        visited_at=timestamp(v.first_at),
    )


def write_pb(w: StoredWrite) -> pb.CrmWrite:
    return pb.CrmWrite(
        id=w.id,
        kind=w.kind,
        state=WRITE_STATES[w.state],
        attempts=w.attempts,
        error=w.error,
        created_at=timestamp(w.created_at),
        next_attempt_at=timestamp(w.next_attempt_at) if w.state == "queued" else None,
    )


def date_of(value: str, what: str) -> date | None:
    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"{what} {value[:20]!r} is not a date (YYYY-MM-DD)", field=what) from None
