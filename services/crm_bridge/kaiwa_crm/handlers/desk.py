"""DESK-01: tickets from chats. Converting needs the chat (conversation's GetChat, and its
transcript) and the department's permission; the "converted to ticket (number)" system
message is posted by a timer in the same transaction, so it reaches the chat even when
conversation is away at that moment (PostSystemEvent's request id stops a double); it
carries the ticket's link (`ticket_url`) when the desk has one (KAIWA_DESK_TICKET_URL)."""

from __future__ import annotations

import logging

import asyncpg

from kaiwa_common.db import unit_of_work
from kaiwa_common.emails import valid_email
from kaiwa_common.errors import FailedPrecondition, InvalidArgument, NotFound, parse_uuid
from kaiwa_common.timers import Timer, schedule

from .. import peers
from ..adapters.desk import BuiltinDesk
from ..domain.desk import (
    MAX_SUBJECT,
    NewTicket,
    Query,
    Ticket,
    check_numbers,
    check_status,
    parse_query,
    subject_from,
    ticket_ref,
)
from ..runtime import Runtime
from ..store import desk
from .common import Caller, text_of

log = logging.getLogger("kaiwa.crm.desk")

TICKET_MESSAGE = "ticket_message"
MAX_RETRY_DELAY = 60.0


async def set_department(rt: Runtime, tenant: str, department_id: str, enabled: bool) -> tuple[str, bool]:
    if department_id:
        department_id = parse_uuid(department_id.strip(), "department_id")
        await peers.department(rt, tenant, department_id)  # NOT_FOUND for another tenant's or none
    async with unit_of_work(rt.pool) as conn:
        await desk.set_department(conn, tenant, department_id, enabled)
    return department_id, enabled


async def departments(rt: Runtime, tenant: str) -> list[tuple[str, bool]]:
    async with rt.pool.acquire() as conn:
        return await desk.departments(conn, tenant)


async def convert(
    rt: Runtime, caller: Caller, chat_id: str, message_seq: int, numbers: tuple[int, int, int], subject: str
) -> Ticket:
    chat_id = parse_uuid(chat_id, "chat_id")
    priority, status, category = check_numbers(*numbers)
    if message_seq < 0:
        raise InvalidArgument("message_seq must not be negative", field="message_seq")
    subject = text_of(subject, "subject", MAX_SUBJECT, required=False)
    t = await peers.transcript(rt, caller.tenant, chat_id, with_pdf=False)
    async with rt.pool.acquire() as conn:
        if not await desk.conversion_enabled(conn, caller.tenant, t.chat.department_id):
            raise FailedPrecondition(
                "converting chats into tickets is not enabled for this chat's department (SetDeskDepartment)"
            )
    description = t.text
    if message_seq:
        message = next((m for m in t.messages if m.seq == message_seq), None)
        if message is None or not message.text.strip():
            raise NotFound(f"chat {chat_id} has no message {message_seq} with text")
        description = message.text
    new = NewTicket(
        subject=subject or subject_from(description if message_seq else t.chat.question or description),
        description=description,
        email=t.chat.visitor_email,
        name=t.chat.visitor_name,
        priority=priority,
        status=status,
        category=category,
        chat_id=chat_id,
        message_seq=message_seq,
        created_by=caller.sub,
    )
    async with unit_of_work(rt.pool) as conn:
        ticket, created = await BuiltinDesk(conn, caller.tenant).create(new)
        if created:
            url = rt.config.ticket_link(ticket.number, ticket.id)
            payload = {"chat_id": chat_id, "number": ticket.number, "url": url}
            await schedule(conn, caller.tenant, TICKET_MESSAGE, ticket.id, payload=payload)
    return ticket


async def post_message(rt: Runtime, timer: Timer, conn: asyncpg.Connection) -> None:
    """The timer of a new ticket: the system message in its chat, tried again (with a
    growing delay) while conversation is away."""
    try:
        p = timer.payload
        url = p["url"] if "url" in p else rt.config.ticket_link(p["number"], timer.key)  # timers made before links
        await peers.post_ticket_message(rt, timer.tenant, p["chat_id"], p["number"], timer.key, url)
    except (NotFound, InvalidArgument, FailedPrecondition) as exc:
        log.warning("ticket message not posted", extra={"fields": {"ticket": timer.key, "error": exc.message}})
    except Exception as exc:  # conversation away (Unavailable) or erring: later
        tries = int(timer.payload.get("tries", 0)) + 1
        delay = min(0.5 * 2**tries, MAX_RETRY_DELAY)
        log.warning(
            "ticket message: conversation unavailable, retrying", extra={"fields": {"ticket": timer.key, "error": repr(exc)}}
        )
        await schedule(conn, timer.tenant, TICKET_MESSAGE, timer.key, delay=delay, payload={**timer.payload, "tries": tries})


async def search(rt: Runtime, tenant: str, query: str) -> list[Ticket]:
    q = parse_query(query)
    async with rt.pool.acquire() as conn:
        return await BuiltinDesk(conn, tenant).search(q, 50)


async def associate(rt: Runtime, tenant: str, ticket: str, chat_id: str) -> Ticket:
    ref, chat_id = ticket_ref(ticket), parse_uuid(chat_id, "chat_id")
    await peers.chat(rt, tenant, chat_id)  # the chat exists in this tenant
    async with unit_of_work(rt.pool) as conn:
        d = BuiltinDesk(conn, tenant)
        return await d.associate(await _must(d, ref), chat_id)


async def set_status(rt: Runtime, tenant: str, ticket: str, status: int) -> Ticket:
    ref, status = ticket_ref(ticket), check_status(status)
    async with unit_of_work(rt.pool) as conn:
        d = BuiltinDesk(conn, tenant)
        return await d.set_status(await _must(d, ref), status)


async def recent(rt: Runtime, tenant: str, email: str, chat_id: str, limit: int) -> list[Ticket]:
    if not 0 <= limit <= 50:
        raise InvalidArgument("limit must be 0 (10) to 50", field="limit")
    if chat_id.strip():
        email = (await peers.chat(rt, tenant, parse_uuid(chat_id.strip(), "chat_id"))).visitor_email
        if not email:
            return []
    email = valid_email(email)
    async with rt.pool.acquire() as conn:
        return await BuiltinDesk(conn, tenant).search(Query("email", email.lower()), limit or 10)


async def get(rt: Runtime, tenant: str, ticket: str, chat_id: str) -> Ticket:
    async with rt.pool.acquire() as conn:
        d = BuiltinDesk(conn, tenant)
        if ticket.strip():
            return await _must(d, ticket_ref(ticket))
        found = await d.of_chat(parse_uuid(chat_id.strip(), "chat_id"))
    if found is None:
        raise NotFound("この訪問者の情報はありません (no ticket for this chat)")
    return found


async def _must(d: BuiltinDesk, ref: Query) -> Ticket:
    found = await d.get(ref)
    if found is None:
        raise NotFound(f"no ticket {ref.value}")
    return found
