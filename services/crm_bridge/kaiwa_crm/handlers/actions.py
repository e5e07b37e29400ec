"""Agent actions in the chat (CRM-03, 05, 06, 08, 09). Each is one write on the tenant's
CRM (handlers/common.act): done at once in the built-in CRM, queued while an external
CRM is away. Agents without a CRM user may only add leads and notify sales (CRM-01)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import asyncpg

from kaiwa_common.chat_members import agents_in
from kaiwa_common.emails import optional_email, valid_email
from kaiwa_common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from kaiwa_common.idempotency import claim_request, fingerprint_of

from ..domain import validate_deal
from ..domain.activity import MANUAL_NOTE, SALES_NOTE, Activity, Visit
from ..domain.errors import CrmAuthFailed, CrmUnavailable
from ..domain.fields import check_field_update, valid_phone
from ..domain.model import CONTACT, LEAD, MAX_NAME
from ..domain.policy import CHAT_SOURCE, due_from, owner_for
from ..events import form_fields_for
from .. import peers
from ..plays import Write
from ..runtime import Runtime
from ..store import activity, tenancy
from ..writes import Outcome
from .common import Caller, act, crm_user, get_record, licensed, record_ref, require_licensed, text_of

MAX_NOTE = 10_000


@dataclass(frozen=True)
class ManualRecord:
    email: str
    name: str
    type: str
    company: str
    phone: str
    status: str
    account: str
    owner: str
    chat_id: str
    note: str


async def add_record_from_chat(rt: Runtime, caller: Caller, m: ManualRecord) -> tuple[Outcome, bool]:
    """CRM-03: only when no record matches and the visitor gave an e-mail. Returns the
    outcome and whether the caller may see the new record's owner (CRM-01)."""
    email = valid_email(m.email)
    fields = {
        "company": text_of(m.company, "company", MAX_NAME, False),
        "phone": valid_phone(m.phone),
        "status": text_of(m.status, "status", 100, False),
    }
    if m.type == CONTACT:
        fields = {"phone": fields["phone"]}

    async def build(conn: asyncpg.Connection, link) -> Write:
        may_more = await licensed(conn, caller)
        if not may_more and (m.type != LEAD or m.owner):
            raise PermissionDenied("agents without a CRM user of their own may only add leads (CRM-01)")
        await _nothing_matches(rt, conn, caller.tenant, link, email)
        settings = await tenancy.settings(conn, caller.tenant)
        owner = optional_email(m.owner, "owner")
        if not owner:
            mine = await crm_user(conn, caller)
            turn = await tenancy.next_pool_turn(conn, caller.tenant) if settings.owner_rule == "pool" else 0
            admin = link.admin_email or getattr(await tenancy.first_admin(conn, caller.tenant), "email", "")
            owner = owner_for(settings, pool_turn=turn, agent_user=mine.email if mine else "", crm_admin=admin)
        # CRM-08: the chat's form fields named like custom fields, then what the agent typed.
        copied = await form_fields_for(conn, caller.tenant, m.chat_id.strip(), m.type)
        new = {"type": m.type, "name": text_of(m.name, "name", MAX_NAME, False), "owner": owner, "source": CHAT_SOURCE}
        new |= {
            "fields": copied | {k: v for k, v in fields.items() if v},
            "account": text_of(m.account, "account", MAX_NAME, False),
        }
        params = {"email": email, "new": new, "chat_id": m.chat_id}
        if m.note.strip():
            params["note"] = _note(f"added:{email.lower()}", MANUAL_NOTE, m.note, caller, m.chat_id)
        return Write("add_record", f"add_record:{email.lower()}", params)

    if m.chat_id.strip():
        await _require_chat_of_caller(rt, caller, m.chat_id.strip())
    outcome = await act(rt, caller.tenant, build)
    async with rt.pool.acquire() as conn:
        return outcome, await licensed(conn, caller)


async def _require_chat_of_caller(rt: Runtime, caller: Caller, chat_id: str) -> None:
    """The chat a record is added from is one of the caller's tenant (NOT_FOUND otherwise)
    and, for an agent, one they are in."""
    chat = await peers.chat(rt, caller.tenant, chat_id)
    if not caller.privileged and caller.sub not in agents_in(chat):
        raise PermissionDenied(f"agent {caller.sub} is not in chat {chat_id}")


async def add_note(rt: Runtime, caller: Caller, record_id: str, text: str, chat_id: str, request_id: str, sales: bool) -> Outcome:
    """CRM-06 manual notes (agents with a CRM user); "notify sales" (every agent, an
    existing record only): a note for the record's owner, who is notified."""
    record_id, text = record_ref(record_id), text_of(text, "text", MAX_NOTE)
    kind = SALES_NOTE if sales else MANUAL_NOTE

    async def build(conn: asyncpg.Connection, link) -> Write:
        if not sales:
            await require_licensed(conn, caller)
        key = await _key(conn, caller, "NotifySales" if sales else "AddNote", request_id, record_id, text, chat_id)
        params = {"record_id": record_id, "note": _note(key, kind, text, caller, chat_id)}
        return Write(kind if sales else "add_note", f"{kind}:{key}", params)

    return await act(rt, caller.tenant, build)


async def list_notes(rt: Runtime, caller: Caller, record_id: str):
    async with rt.pool.acquire() as conn:
        await require_licensed(conn, caller)
        link = await tenancy.connection(conn, caller.tenant)
        link.require_enabled()
        record = await get_record(rt, conn, caller.tenant, link, record_id)
        return await (await rt.crm(conn, caller.tenant, link)).list_notes(record)


async def update_fields(rt: Runtime, caller: Caller, record_id: str, fields: dict[str, str]) -> Outcome:
    """CRM-08: the phone and custom fields; unknown fields are refused."""
    record_id = record_ref(record_id)

    async def build(conn: asyncpg.Connection, link) -> Write:
        await require_licensed(conn, caller)
        record = await get_record(rt, conn, caller.tenant, link, record_id)
        custom = {name for t, name, _ in await activity.custom_fields(conn, caller.tenant) if t == record.type}
        checked = check_field_update(record.type, fields, custom)
        return Write("update_fields", f"fields:{uuid.uuid4()}", {"record_id": record_id, "fields": checked})

    return await act(rt, caller.tenant, build)


async def convert_lead(rt: Runtime, caller: Caller, record_id: str, deal: dict | None, account: str) -> Outcome:
    """CRM-09: the lead becomes a contact (of an account), with a deal when asked."""
    record_id = record_ref(record_id)
    account = text_of(account, "account", MAX_NAME, False)
    checked = _deal(deal, f"convert:{record_id}") if deal is not None else None

    async def build(conn: asyncpg.Connection, link) -> Write:
        await require_licensed(conn, caller)
        params = {"record_id": record_id, "deal": checked, "account": account}
        return Write("convert_lead", f"convert:{record_id}:{uuid.uuid4()}", params)

    return await act(rt, caller.tenant, build)


async def add_deal(rt: Runtime, caller: Caller, record_id: str, deal: dict, request_id: str) -> Outcome:
    record_id = record_ref(record_id)

    async def build(conn: asyncpg.Connection, link) -> Write:
        await require_licensed(conn, caller)
        key = await _key(conn, caller, "AddDeal", request_id, record_id, deal)
        return Write("add_deal", f"deal:{key}", {"record_id": record_id, "deal": _deal(deal, f"deal:{key}")})

    return await act(rt, caller.tenant, build)


async def add_task(
    rt: Runtime, caller: Caller, record_id: str, subject: str, due: date | None, rule: str, request_id: str
) -> Outcome:
    """CRM-05: a task due on a date, or today / tomorrow / in 7 or 14 days."""
    record_id, subject = record_ref(record_id), text_of(subject, "subject", 200)
    if due is None and rule in ("", "none"):
        raise InvalidArgument("due_date or due (today, tomorrow, in_7_days, in_14_days) is required", field="due_date")
    due = due or due_from(rule, date.today())

    async def build(conn: asyncpg.Connection, link) -> Write:
        await require_licensed(conn, caller)
        key = await _key(conn, caller, "AddTask", request_id, record_id, subject, due)
        mine = await crm_user(conn, caller)
        task = {"key": f"task:{key}", "subject": subject, "due_date": due.isoformat(), "owner": mine.email if mine else ""}
        return Write("add_task", f"task:{key}", {"record_id": record_id, "task": task})

    return await act(rt, caller.tenant, build)


async def list_activities(rt: Runtime, caller: Caller, record_id: str, deal_id: str, chats_only: bool) -> list[Activity]:
    async with rt.pool.acquire() as conn:
        link = await tenancy.connection(conn, caller.tenant)
        link.require_enabled()
        record = await get_record(rt, conn, caller.tenant, link, record_id)
        deal = record_ref(deal_id, "deal_id") if deal_id else ""
        return await (await rt.crm(conn, caller.tenant, link)).list_activities(record, deal, chats_only)


async def list_visits(rt: Runtime, caller: Caller, record_id: str) -> list[Visit]:
    async with rt.pool.acquire() as conn:
        link = await tenancy.connection(conn, caller.tenant)
        link.require_enabled()
        record = await get_record(rt, conn, caller.tenant, link, record_id)
        return await (await rt.crm(conn, caller.tenant, link)).list_visits(record)


async def _nothing_matches(rt: Runtime, conn: asyncpg.Connection, tenant: str, link, email: str) -> None:
    try:
        found = await (await rt.crm(conn, tenant, link)).find(email)
    except (CrmUnavailable, CrmAuthFailed):
        return  # cannot tell now: the queued write adds nothing if a record appears meanwhile
    if found is not None:
        raise FailedPrecondition(f"a {found.type} already matches {email}: notify sales instead (CRM-03)")


async def _key(conn: asyncpg.Connection, caller: Caller, scope: str, request_id: str, *request) -> str:
    """The write's natural key: the request id when given (checked to stand for one
    request only), else a new one."""
    if not request_id:
        return str(uuid.uuid4())
    claim = await claim_request(conn, caller.tenant, scope, request_id, fingerprint_of(caller.sub, *request))
    await claim.record(conn, request_id)
    return f"{scope}:{request_id}"


def _note(key: str, kind: str, text: str, caller: Caller, chat_id: str) -> dict:
    title = {SALES_NOTE: "営業に通知", MANUAL_NOTE: "メモ"}[kind]
    return {"key": key, "kind": kind, "title": title, "text": text, "author": caller.sub, "chat_id": chat_id}


def _deal(d: dict, key: str) -> dict:
    checked = validate_deal(
        id="",
        name=d.get("name", ""),
        stage=d.get("stage", ""),
        amount=d.get("amount", 0.0),
        closing_date=d.get("closing_date", ""),
        open=True,
    )
    closing = checked.closing_date.isoformat() if checked.closing_date else None
    return {"key": key, "name": checked.name, "stage": checked.stage, "amount": checked.amount, "closing_date": closing}
