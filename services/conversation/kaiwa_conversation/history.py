"""CONV-08/09/13: reading what was said: a chat's messages (ListMessages), a visitor's or
an agent's recent chats with their first messages (ListVisitorChats, ListAgentChats)
and the transcript (GetTranscript: text, and a PDF on request).

Pages follow kaiwa_common.paging: page_size 0 takes the default, more is capped, a
negative one is refused; page tokens are keyset positions (a message's seq, a chat's
(started_at, id)), stable while new messages and chats are written.
A visitor never sees internal notes or internal system messages (`visible`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from kaiwa_common.auth import AGENT, VISITOR
from kaiwa_common.errors import InvalidArgument, PermissionDenied, parse_uuid
from kaiwa_common.paging import PageLimits, decode_seq_token, decode_time_token, encode_token

from . import store, transcript
from .domain import system_messages as sysmsg
from .domain.messages import check_field
from .unit_of_work import Actor, Deps, check_read

MESSAGES = PageLimits(default=100, limit=500)
CHATS = PageLimits(default=20, limit=100)
FIRST_MESSAGES = PageLimits(default=100, limit=500)  # ListVisitorChats.message_limit


@dataclass(frozen=True)
class History:
    """A chat in a list of chats, with its first messages."""

    chat: dict
    participants: list[dict]
    messages: list[dict]
    more_messages: bool


@dataclass(frozen=True)
class Transcript:
    chat: dict
    participants: list[dict]
    messages: list[dict]
    text: str
    pdf: bytes = b""


def visible(role: str, row: dict) -> bool:
    """Visitors never see internal notes or internal system events."""
    if role != VISITOR:
        return True
    if row["kind"] == "note":
        return False
    return not (row["kind"] == "system" and sysmsg.is_internal(row["body"]["system"]["type"]))


async def messages(deps: Deps, actor: Actor, chat_id: str, size: int, token: str) -> tuple[list[dict], str]:
    chat_id = parse_uuid(chat_id, "chat_id")
    size = MESSAGES.size(size)
    after = decode_seq_token(token) or 0
    async with deps.ctx.pool.acquire() as conn:
        check_read(actor, await store.get_chat(conn, actor.tenant, chat_id), chat_id)
        rows = await store.messages_page(conn, actor.tenant, [chat_id], after, size + 1, actor.role != VISITOR)
    more = len(rows) > size
    rows = rows[:size]
    return [r for r in rows if visible(actor.role, r)], encode_token(rows[-1]["seq"]) if more else ""


async def visitor_chats(deps: Deps, actor: Actor, visitor_id: str, size: int, token: str, limit: int):
    """A visitor's chats, newest first, each with its first `limit` messages."""
    if actor.role == VISITOR:
        if visitor_id and visitor_id != actor.sub:
            raise PermissionDenied("a visitor sees only its own chats")
        visitor_id = actor.sub
    visitor_id = check_field(visitor_id, "visitor_id", 128, required=True)
    if limit < 0:
        raise InvalidArgument("message_limit must not be negative", field="message_limit")
    size, limit = CHATS.size(size), min(limit or FIRST_MESSAGES.default, FIRST_MESSAGES.limit)
    before = time_position(token)
    async with deps.ctx.pool.acquire() as conn:
        chats = await store.chats_page(conn, actor.tenant, visitor_id=visitor_id, before=before, limit=size + 1)
        return await _page(conn, actor, chats, size, limit)


async def agent_chats(deps: Deps, actor: Actor, agent_id: str, size: int, token: str):
    """The chats an agent took part in, newest first."""
    if actor.role == AGENT:
        if agent_id and agent_id != actor.sub:
            raise PermissionDenied("an agent sees only their own recent chats")
        agent_id = actor.sub
    agent_id = check_field(agent_id, "agent_id", 128, required=True)
    size = CHATS.size(size)
    before = time_position(token)
    async with deps.ctx.pool.acquire() as conn:
        chats = await store.chats_page(conn, actor.tenant, agent_id=agent_id, before=before, limit=size + 1)
        return await _page(conn, actor, chats, size, 0)


def time_position(token: str):
    """The (time, id) keyset position of a page token (None: the first page)."""
    position = decode_time_token(token)
    return None if position is None else (position[0], parse_uuid(position[1], "page_token"))


async def _page(conn, actor: Actor, chats: list[dict], size: int, limit: int) -> tuple[list[History], str]:
    more = len(chats) > size
    chats = chats[:size]
    token = encode_token((chats[-1]["started_at"], chats[-1]["id"])) if more else ""
    ids = [c["id"] for c in chats]
    people = await store.participants(conn, actor.tenant, ids)
    rows = await store.history_messages(conn, actor.tenant, ids, limit, actor.role != VISITOR)
    by_chat: dict[str, list[dict]] = {}
    for r in rows:
        by_chat.setdefault(str(r["chat_id"]), []).append(r)
    histories = []
    for c in chats:
        first = by_chat.get(str(c["id"]), [])
        shown = [m for m in first[:limit] if visible(actor.role, m)]
        histories.append(History(c, people.get(str(c["id"]), []), shown, len(first) > limit))
    return histories, token


async def transcript_of(deps: Deps, actor: Actor, chat_id: str, locale: str, time_zone: str, pdf: bool) -> Transcript:
    """What the visitor saw, printable: as text, and as a PDF when asked for."""
    chat_id = parse_uuid(chat_id, "chat_id")
    zone = transcript.zone(time_zone)
    async with deps.ctx.pool.acquire() as conn:
        chat = check_read(actor, await store.get_chat(conn, actor.tenant, chat_id), chat_id)
        people = await store.participants_of(conn, actor.tenant, chat_id)
        rows = await store.messages_page(conn, actor.tenant, [chat_id], 0, 100000, False)
    rows = [r for r in rows if visible(VISITOR, r)]
    doc = transcript.Document.build(chat, people, rows, locale, zone)
    return Transcript(chat, people, rows, doc.text(), await asyncio.to_thread(doc.pdf) if pdf else b"")
