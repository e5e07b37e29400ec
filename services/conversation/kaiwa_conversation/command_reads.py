"""CMD-01: what the reading commands show (#info and the details after y, #m, #n, #h,
#crm info, #support info / ticketinfo / recentreq), one line each, in the agent's
language. Other services are read with this service's token (peers.py); a service that
is away leaves its part out of #info and the details after y (they still answer), and
makes the other commands answer "unavailable"."""

from __future__ import annotations

from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as cpb
from kaiwa.crm_bridge.v1 import desk_pb2 as dpb
from kaiwa.routing.v1 import routing_pb2 as rpb
from kaiwa.visitor.v1 import visitor_pb2 as vpb

from . import history as chat_history
from . import notes as chat_notes
from .domain import system_messages as sysmsg
from .domain.command_texts import say
from .domain.system_messages import locale_of
from .peers import CHAT_DEADLINE, Down, Refused, Unsupported

__all__ = ["CHAT_DEADLINE"]

INFO_LABELS = {
    "name": ("名前", "Name"),
    "email": ("メールアドレス", "E-mail"),
    "number": ("訪問者の番号", "Visitor number"),
    "question": ("件名", "Subject"),
    "department": ("部門", "Department"),
    "channel": ("チャネル", "Channel"),
    "country": ("国", "Country"),
    "browser": ("ブラウザー", "Browser"),
    "os": ("OS", "OS"),
    "ip": ("IPアドレス", "IP address"),
    "page": ("ページ", "Page"),
    "visits": ("訪問回数", "Visits"),
}
HISTORY_CHATS = 2  # the visitor's latest chats shown by #h (this one and the one before)
HISTORY_MESSAGES = 100


def _label(run, key: str) -> str:
    return INFO_LABELS[key][0 if locale_of(run.locale) == "ja" else 1]


def _lines(run, pairs: list[tuple[str, str]]) -> list[str]:
    return [say("info_line", run.locale, label=_label(run, key), value=value) for key, value in pairs if value]


async def department_name(run, department_id: str) -> str:
    if not department_id:
        return ""
    try:
        department = await run.peers.call(
            "routing", "GetDepartment", rpb.GetDepartmentRequest(department_id=department_id), run.service
        )
    except (Refused, Down, Unsupported):
        return department_id
    return department.name


async def visitor_lines(run, chat: dict) -> list[str]:
    """#info, and what the agent learns after y: the chat's visitor (name, number,
    subject, department), then what the visitor service knows (country, browser, OS, IP,
    the page they are on)."""
    pairs = [
        ("name", chat["visitor_name"]),
        ("number", chat["visitor_id"]),
        ("email", chat["visitor_email"]),
        ("question", chat["question"]),
        ("department", await department_name(run, chat["department_id"])),
        ("channel", chat["channel"]),
    ]
    visit = None
    try:
        visitor = await run.peers.call("visitor", "GetVisitor", vpb.GetVisitorRequest(visitor_id=chat["visitor_id"]), run.service)
        visit = visitor.current_visit if visitor.HasField("current_visit") else None
        pairs.append(("visits", str(visitor.visit_count) if visitor.visit_count else ""))
    except (Refused, Down, Unsupported):  # not a tracked visitor (messaging channels), or the service is away
        pass
    if visit is not None:
        browser = " ".join(x for x in (visit.client.browser, visit.client.browser_version) if x)
        pairs += [
            ("country", visit.location.country),
            ("browser", browser),
            ("os", " ".join(x for x in (visit.client.os, visit.client.os_version) if x)),
            ("page", visit.current_url),
        ]
    pairs.append(("ip", chat["visitor_ip"] or (visit.ip if visit is not None else "")))
    return _lines(run, pairs)


async def members(run) -> list[str]:
    reply = await run.peers.call(
        "routing", "ListMembers", rpb.ListMembersRequest(chat_id=str(run.chat["id"])), run.service, CHAT_DEADLINE
    )
    lines = [say("members", run.locale)]
    for m in reply.members:
        presence = {rpb.AVAILABILITY_ONLINE: "online", rpb.AVAILABILITY_AWAY: "away"}.get(m.availability, "offline")
        role = "owner" if m.role == rpb.MEMBER_ROLE_OWNER else "participant"
        lines.append(
            say(
                "member_line",
                run.locale,
                name=m.name,
                email=m.email,
                role=say(role, run.locale),
                presence=say(presence, run.locale),
            )
        )
    return lines


async def agent_names(run) -> dict[str, str]:
    try:
        reply = await run.peers.call("routing", "ListAgents", rpb.ListAgentsRequest(), run.service)
    except (Refused, Down, Unsupported):
        return {}
    return {a.id: a.name for a in reply.agents}


async def notes(run) -> list[str]:
    """#n: the visitor's notes (#an writes them there), oldest first."""
    rows, _ = await chat_notes.list_notes(run.deps, run.actor, "", run.chat["visitor_id"], 200, "")
    if not rows:
        return [say("no_notes", run.locale)]
    names = await agent_names(run)
    return [
        say(
            "note_line",
            run.locale,
            time=row["created_at"].strftime("%Y-%m-%d %H:%M"),
            author=names.get(row["author_id"], row["author_id"]),
            text=row["text"],
        )
        for row in rows
    ]


async def history(run) -> list[str]:
    """#h: the visitor's latest chats (this one and the one before), oldest first, a
    message a line with its author in brackets."""
    page, _ = await history_page(run)
    lines: list[str] = []
    for h in reversed(page):
        names = {p["agent_id"]: p["name"] for p in h.participants}
        lines.append(say("history_chat", run.locale, time=h.chat["started_at"].strftime("%Y-%m-%d %H:%M")))
        for m in h.messages:
            lines.append(say("history_line", run.locale, who=_author(run, h.chat, names, m), text=_text_of(run, m)))
    return lines or [say("no_history", run.locale)]


async def history_page(run):
    return await chat_history.visitor_chats(run.deps, run.actor, run.chat["visitor_id"], HISTORY_CHATS, "", HISTORY_MESSAGES)


def _author(run, chat: dict, names: dict[str, str], m: dict) -> str:
    if m["sender_kind"] == "visitor":
        return chat["visitor_name"] or say("visitor", run.locale)
    if m["sender_kind"] == "agent":
        return names.get(m["sender_id"], m["sender_id"])
    if m["sender_kind"] == "bot":
        return m["sender_id"] or "bot"
    return say("system", run.locale)


def _text_of(run, m: dict) -> str:
    body = m["body"] or {}
    if m["kind"] == "system":
        system = body["system"]
        return sysmsg.render(system["type"], system["params"], run.locale)
    if "file" in body:
        return f"{body['file']['name']} {body['file']['url']}"
    if "link" in body:
        return body["link"]["url"]
    return m["text"]


async def crm(run) -> list[str]:
    """#crm info: the fields CRM-02 shows, or the seed's 「この訪問者のCRM情報はありません」."""
    if not run.chat["visitor_email"]:
        return [say("no_crm_info", run.locale)]
    request = cpb.GetContextRequest(email=run.chat["visitor_email"], locale=locale_of(run.locale))
    context = await run.peers.call("crm_bridge", "GetContext", request, run.service)
    if not context.connected or not context.found:
        return [say("no_crm_info", run.locale)]
    record = context.record
    kind = cpb.RecordType.Name(record.type).removeprefix("RECORD_TYPE_").lower()
    lines = [say("crm_record", run.locale, type=kind, name=record.name, email=record.email)]
    lines += [say("info_line", run.locale, label=f.label, value=f.value) for f in [*context.fields, *context.company_fields]]
    if context.open_deal_count:
        lines.append(say("crm_deals", run.locale, count=context.open_deal_count, amount=f"{context.open_deal_amount:g}"))
    return lines


async def recent_tickets(run) -> list:
    if not run.chat["visitor_email"]:
        return []
    request = dpb.ListRecentTicketsRequest(chat_id=str(run.chat["id"]))
    return list((await run.peers.call("crm_bridge", "ListRecentTickets", request, run.service, CHAT_DEADLINE)).tickets)


async def support_summary(run) -> list[str]:
    """#support info: how many requests the visitor has made, how many are not closed,
    and the latest; the seed's 「この訪問者のサポート情報はありません」 when none."""
    tickets = await recent_tickets(run)
    if not tickets:
        return [say("no_support_info", run.locale)]
    still_open = sum(1 for t in tickets if t.status_name != "closed")
    return [say("support_summary", run.locale, count=len(tickets), open=still_open), ticket_line(run, tickets[0])]


async def chat_ticket(run):
    """The ticket of this chat (converted from it or associated with it), or None."""
    try:
        return await run.peers.call("crm_bridge", "GetTicket", dpb.GetTicketRequest(chat_id=str(run.chat["id"])), run.service)
    except Refused as exc:
        if exc.code == "NOT_FOUND":
            return None
        raise


def ticket_line(run, t) -> str:
    return say(
        "ticket_line",
        run.locale,
        number=t.number,
        subject=t.subject,
        status=t.status_name,
        priority=t.priority_name,
        category=t.category_name,
    )
