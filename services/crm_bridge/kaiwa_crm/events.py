"""Use cases on other services' events (CRM-03..08): each runs in the consumer's
transaction, next to its processed-event row, so replaying an event changes nothing;
the CRM writes themselves are keyed naturally (a chat, a page view) besides."""

from __future__ import annotations

from datetime import datetime, timezone

import asyncpg
from kaiwa.events.v1.envelope_pb2 import Event

from kaiwa_common.emails import valid_email
from kaiwa_common.errors import InvalidArgument, PermanentEventError

from . import peers
from .domain.fields import CATALOGUE, copied_form_fields
from .domain.model import MAX_NAME
from .domain.policy import ACCESSED, ATTENDED, CHAT_SOURCE, UNATTENDED, follow_up_due, label_for, owner_for, should_add
from .domain.referrers import search_terms
from .domain.settings import CrmSettings
from .plays import Write
from .runtime import Runtime
from .store import activity, tenancy
from .writes import submit


async def on_chat_started(rt: Runtime, event: Event, conn: asyncpg.Connection) -> None:
    """A visitor who gave an e-mail is known from now on (their page views are visits);
    the chat's pre-chat form fields are kept for a record created from it (CRM-08)."""
    started = event.chat_started
    if started.fields and started.chat_id:
        await tenancy.save_chat_form(conn, event.tenant, started.chat_id, dict(started.fields))
    email = _email(started.visitor_email)
    if email and started.visitor_id:
        await tenancy.remember_visitor(conn, event.tenant, started.visitor_id, email, started.visitor_name.strip()[:MAX_NAME])


async def on_chat_ended(rt: Runtime, event: Event, conn: asyncpg.Connection) -> None:
    """CRM-03..08: add the visitor per policy; the transcript, the chat in the feed and the
    automatic note (attended chats); a note for a missed chat."""
    ended, tenant = event.chat_ended, event.tenant
    email = _email(ended.visitor_email, ended.chat_id)
    if not email:
        return
    link = await tenancy.connection(conn, tenant)
    if not link.enabled:
        return
    settings = await tenancy.settings(conn, tenant)
    kind = ATTENDED if ended.agent_id and ended.reason != "missed" else UNATTENDED
    name = ended.visitor_name.strip()[:MAX_NAME]
    t = await peers.transcript(rt, tenant, ended.chat_id, settings.attach_transcripts) if kind == ATTENDED else None
    agent = t.agent_name if t else ""
    if ended.visitor_id:
        await tenancy.remember_visitor(conn, tenant, ended.visitor_id, email, name, agent)
    day = (ended.ended_at.ToDatetime(tzinfo=timezone.utc) if ended.HasField("ended_at") else _now()).date()
    # CRM-08: a record created from the chat gets the form fields named like its custom
    # fields; the tenant's mapping of visitor data wins where both set one.
    new_fields = await form_fields_for(conn, tenant, ended.chat_id, settings.add_as) | _mapped(settings, ended)
    params = {
        "email": email,
        "chat_id": ended.chat_id,
        "add": should_add(settings, kind),
        "new": await _new_record(conn, tenant, settings, link.admin_email, kind, name, ended.agent_id, new_fields),
        "source": CHAT_SOURCE,
        "note": _chat_note(ended, kind, agent, name),
        "fields": _mapped(settings, ended),
    }
    due = follow_up_due(settings, day)
    if due is not None:
        params["follow_up"] = {
            "due": due.isoformat(),
            "subject": f"チャットのフォローアップ: {ended.question or name or email}"[:200],
        }
    content = b""
    if t is not None:
        params["activity"] = {
            "subject": ended.question or "チャット",
            "agent": agent,
            "visitor": name or email,
            "link": rt.config.chat_log_url.format(chat_id=ended.chat_id),
            "started_at": _iso(ended, "started_at"),
            "ended_at": _iso(ended, "ended_at"),
        }
        if settings.attach_transcripts and t.attachment is not None:
            params["attachment"] = {"name": t.attachment.name, "mime_type": t.attachment.mime_type}
            content = t.attachment.content
    await submit(rt, conn, tenant, link, Write("chat_ended", f"event:{event.id}", params, content))


async def on_page_viewed(rt: Runtime, event: Event, conn: asyncpg.Connection) -> None:
    """CRM-08: a known visitor's page view is recorded on their record (visits setting),
    mapped fields updated; CRM-03 "accessed" adds them when the policy says so."""
    viewed, tenant = event.page_viewed, event.tenant
    known = await tenancy.known_visitor(conn, tenant, viewed.visitor_id)
    link = await tenancy.connection(conn, tenant)
    if known is None or not link.enabled:
        return
    settings = await tenancy.settings(conn, tenant)
    page = await peers.page_view(rt, tenant, viewed.visitor_id, viewed.page_view_id) if settings.write_visits else None
    engine, keywords = search_terms(viewed.referrer)
    facts = {"visitor_id": viewed.visitor_id, "current_page": viewed.url, "page_title": viewed.title, "referrer": viewed.referrer}
    facts |= {"search_engine": engine, "search_keywords": keywords, "ip_address": page.ip if page else ""}
    facts |= {"user_agent": page.user_agent if page else "", "name": known["name"], "email": known["email"]}
    fields = {settings.field_mapping[k]: v for k, v in facts.items() if k in settings.field_mapping and v}
    params = {
        "email": known["email"],
        "visitor_id": viewed.visitor_id,
        "add": should_add(settings, ACCESSED),
        "new": await _new_record(conn, tenant, settings, link.admin_email, ACCESSED, known["name"], "", fields),
        "source": CHAT_SOURCE,
        "fields": fields,
        "notify": settings.visitor_notifications,
    }
    if settings.write_visits:
        viewed_at = event.occurred_at.ToDatetime(tzinfo=timezone.utc)
        params["visit"] = {
            "visit_id": viewed.visit_id or viewed.page_view_id,
            "page_view_id": viewed.page_view_id,
            "url": viewed.url,
            "title": viewed.title,
            "referrer": viewed.referrer,
            "ip": page.ip if page else "",
            "user_agent": page.user_agent if page else "",
            "viewed_at": viewed_at.isoformat(),
            "attended_by": known["last_agent"],
            "search_engine": engine,
            "search_keywords": keywords,
        }
    if not params["add"] and not params.get("visit") and not fields and not settings.visitor_notifications:
        return
    await submit(rt, conn, tenant, link, Write("page_viewed", f"event:{event.id}", params))


async def on_visitor_identified(rt: Runtime, event: Event, conn: asyncpg.Connection) -> None:
    """VIS-03/CRM-08: a visitor who said who they are (web form, chat, agent) is known by
    that e-mail from now on (their later page views are visits), and the page views they
    made before (the visitor service's most recent ones: GetVisitor) are recorded as visits
    on the matching record (visits setting). No record matches: nothing is added here (the
    "accessed" policy adds them at their next page view)."""
    who, tenant = event.visitor_identified, event.tenant
    email = _email(who.email)
    if not email or not who.visitor_id:
        return
    name = who.name.strip()[:MAX_NAME]
    for visitor_id in dict.fromkeys([who.visitor_id, *who.merged_visitor_ids]):
        await tenancy.remember_visitor(conn, tenant, visitor_id, email, name)
    link = await tenancy.connection(conn, tenant)
    if not link.enabled or not (await tenancy.settings(conn, tenant)).write_visits:
        return
    known = await tenancy.known_visitor(conn, tenant, who.visitor_id)
    profile = await peers.visitor_profile(rt, tenant, who.visitor_id)
    pages = sorted(profile.recent_page_views, key=lambda v: (v.viewed_at.ToDatetime(), v.id))
    visits = []
    for v in pages:
        engine, keywords = search_terms(v.referrer)
        visits.append(
            {
                "visit_id": v.visit_id or v.id,
                "page_view_id": v.id,
                "url": v.url,
                "title": v.title,
                "referrer": v.referrer,
                "ip": v.ip,
                "user_agent": v.user_agent,
                "viewed_at": v.viewed_at.ToDatetime(tzinfo=timezone.utc).isoformat(),
                "attended_by": known["last_agent"] if known else "",
                "search_engine": engine,
                "search_keywords": keywords,
            }
        )
    if visits:
        params = {"email": email, "visitor_id": who.visitor_id, "add": False, "visits": visits}
        await submit(rt, conn, tenant, link, Write("visitor_identified", f"event:{event.id}", params))


async def form_fields_for(conn: asyncpg.Connection, tenant: str, chat_id: str, record_type: str) -> dict[str, str]:
    """CRM-08: the chat's pre-chat form fields that a new record of this type takes (those
    named like one of the tenant's custom fields)."""
    form = await tenancy.chat_form(conn, tenant, chat_id)
    return copied_form_fields(form, await activity.custom_fields(conn, tenant), record_type) if form else {}


async def _new_record(
    conn: asyncpg.Connection, tenant: str, s: CrmSettings, crm_admin: str, kind: str, name: str, agent_id: str, fields: dict
) -> dict:
    """The record to add for this visitor, should the play find none (CRM-03/04)."""
    agent_user = await tenancy.user_of_agent(conn, tenant, agent_id)
    admin = crm_admin or getattr(await tenancy.first_admin(conn, tenant), "email", "")
    turn = await tenancy.next_pool_turn(conn, tenant) if s.owner_rule == "pool" and should_add(s, kind) else 0
    owner = owner_for(s, pool_turn=turn, agent_user=agent_user.email if agent_user else "", crm_admin=admin)
    return {"type": s.add_as, "name": name, "owner": owner, "source": CHAT_SOURCE, "label": label_for(s, kind), "fields": fields}


def _chat_note(ended, kind: str, agent: str, name: str) -> dict:
    """CRM-06: who, visit (visitor) id, time, subject or question."""
    when = _iso(ended, "ended_at") or _now().isoformat()
    who = f"{name or ended.visitor_email}"
    if kind == UNATTENDED:
        lines = [
            f"未対応のチャット: {who}",
            f"訪問ID: {ended.visitor_id}",
            f"日時: {when}",
            f"質問: {ended.question}",
            f"理由: {ended.missed_reason or ended.reason}",
            f"待機時間: {ended.waited_seconds}秒",
        ]
        return {"key": f"missed:{ended.chat_id}", "kind": "missed_chat", "title": "未対応のチャット", "text": "\n".join(lines)}
    lines = [f"チャット: {who} ({agent})", f"訪問ID: {ended.visitor_id}", f"日時: {when}", f"件名/質問: {ended.question}"]
    return {"key": f"chat:{ended.chat_id}", "kind": "chat", "title": "チャット", "text": "\n".join(lines)}


def _mapped(settings: CrmSettings, ended) -> dict[str, str]:
    facts = {
        "visitor_id": ended.visitor_id,
        "name": ended.visitor_name,
        "email": ended.visitor_email,
        "question": ended.question,
        "department": ended.department_id,
        "missed_reason": ended.missed_reason,
        "waiting_time": str(ended.waited_seconds) if ended.waited_seconds else "",
        "end_time": _iso(ended, "ended_at"),
    }
    if ended.HasField("started_at") and ended.HasField("ended_at") and ended.reason != "missed":
        facts["chat_duration"] = str(int((ended.ended_at.ToSeconds() - ended.started_at.ToSeconds())))
    return {
        settings.field_mapping[k]: v.strip() for k, v in facts.items() if k in CATALOGUE and k in settings.field_mapping and v
    }


def _email(raw: str, chat_id: str = "") -> str:
    if not raw.strip():
        return ""
    try:
        return valid_email(raw, "visitor_email")
    except InvalidArgument as exc:
        if chat_id:
            raise PermanentEventError(f"chat {chat_id}: {exc.message}") from None
        return ""


def _iso(message, name: str) -> str:
    return message.__getattribute__(name).ToDatetime(tzinfo=timezone.utc).isoformat() if message.HasField(name) else ""


def _now() -> datetime:
    return datetime.now(timezone.utc)
