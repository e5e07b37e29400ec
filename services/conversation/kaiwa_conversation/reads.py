"""CONV-07/08/09/10: notes, history with stable cursors, transcripts, canned responses,
settings. Cursors are keyset positions (opaque base64 JSON), stable under new writes."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime

from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import InvalidArgument, NotFound, PermissionDenied, parse_uuid
from kaiwa_common.idempotency import claim_request, fingerprint_of

from . import store
from .domain import system_messages as sysmsg
from .domain.messages import MAX_NOTE, check_text
from .handlers import Actor, Conversation, short

_SHORTCUT = re.compile(r"^[a-z0-9_-]{1,32}$")
MAX_INACTIVITY = 30 * 86400


def encode_token(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def decode_token(token: str, shape: str):
    """shape: 'seq' -> int, 'time' -> (datetime, uuid str)."""
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
        if shape == "seq":
            if not isinstance(value, int) or value < 0:
                raise ValueError
            return value
        when, ident = value
        return datetime.fromisoformat(when), parse_uuid(ident, "page_token")
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, InvalidArgument):
        raise InvalidArgument("page_token is not valid (pass back a next_page_token unchanged)") from None


def page_size(value: int, default: int, limit: int) -> int:
    if value < 0:
        raise InvalidArgument("page_size must not be negative")
    return min(value or default, limit)


def visible(actor: Actor, row: dict) -> bool:
    """Visitors never see internal notes or internal system events."""
    if actor.role != "visitor":
        return True
    if row["kind"] == "note":
        return False
    return not (row["kind"] == "system" and sysmsg.is_internal(row["body"]["system"]["type"]))


class Reads:
    def __init__(self, ctx, conversation: Conversation):
        self.ctx = ctx
        self.conversation = conversation

    async def messages(self, actor: Actor, chat_id: str, size: int, token: str) -> tuple[list[dict], str]:
        chat_id = parse_uuid(chat_id, "chat_id")
        size = page_size(size, 100, 500)
        after = decode_token(token, "seq") or 0
        async with self.ctx.pool.acquire() as conn:
            self.conversation.check_read(actor, await store.get_chat(conn, actor.tenant, chat_id), chat_id)
            rows = await store.messages_page(conn, actor.tenant, [chat_id], after, size + 1, actor.role != "visitor")
        more = len(rows) > size
        rows = rows[:size]
        return [r for r in rows if visible(actor, r)], encode_token(rows[-1]["seq"]) if more else ""

    async def _histories(self, conn, actor: Actor, chats: list[dict], limit: int) -> list[tuple]:
        ids = [c["id"] for c in chats]
        people = await store.participants(conn, actor.tenant, ids)
        rows = await store.history_messages(conn, actor.tenant, ids, limit, actor.role != "visitor")
        by_chat: dict[str, list[dict]] = {}
        for r in rows:
            by_chat.setdefault(str(r["chat_id"]), []).append(r)
        out = []
        for c in chats:
            msgs = by_chat.get(str(c["id"]), [])
            out.append((c, people.get(str(c["id"]), []), [m for m in msgs[:limit] if visible(actor, m)], len(msgs) > limit))
        return out

    async def visitor_chats(self, actor: Actor, visitor_id: str, size: int, token: str, limit: int):
        if actor.role == "visitor":
            if visitor_id and visitor_id != actor.sub:
                raise PermissionDenied("a visitor sees only its own chats")
            visitor_id = actor.sub
        visitor_id = short(visitor_id, "visitor_id", 128, required=True)
        size, limit = page_size(size, 20, 100), page_size(limit, 100, 500)
        before = decode_token(token, "time")
        async with self.ctx.pool.acquire() as conn:
            chats = await store.chats_page(conn, actor.tenant, visitor_id=visitor_id, before=before, limit=size + 1)
            return await self._page(conn, actor, chats, size, limit)

    async def agent_chats(self, actor: Actor, agent_id: str, size: int, token: str):
        if actor.role == "agent":
            if agent_id and agent_id != actor.sub:
                raise PermissionDenied("an agent sees only their own recent chats")
            agent_id = actor.sub
        agent_id = short(agent_id, "agent_id", 128, required=True)
        size = page_size(size, 20, 100)
        before = decode_token(token, "time")
        async with self.ctx.pool.acquire() as conn:
            chats = await store.chats_page(conn, actor.tenant, agent_id=agent_id, before=before, limit=size + 1)
            return await self._page(conn, actor, chats, size, 0)

    async def _page(self, conn, actor: Actor, chats: list[dict], size: int, limit: int):
        more = len(chats) > size
        chats = chats[:size]
        token = encode_token([chats[-1]["started_at"].isoformat(), str(chats[-1]["id"])]) if more else ""
        return await self._histories(conn, actor, chats, limit), token

    async def transcript(self, actor: Actor, chat_id: str) -> tuple[dict, list[dict], list[dict]]:
        chat_id = parse_uuid(chat_id, "chat_id")
        async with self.ctx.pool.acquire() as conn:
            chat = self.conversation.check_read(actor, await store.get_chat(conn, actor.tenant, chat_id), chat_id)
            people = (await store.participants(conn, actor.tenant, [chat_id])).get(str(chat_id), [])
            rows = await store.messages_page(conn, actor.tenant, [chat_id], 0, 100000, False)
        return chat, people, [r for r in rows if visible(Actor(actor.tenant, "visitor", ""), r)]

    # --- notes -------------------------------------------------------------------------

    async def add_note(self, actor: Actor, chat_id: str, visitor_id: str, text: str, request_id: str = "") -> dict:
        chat_id, visitor_id = self._note_target(chat_id, visitor_id)
        text = (text or "").strip()
        try:
            check_text(text, required=True, limit=MAX_NOTE, what="note text")
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        async with unit_of_work(self.ctx.pool) as conn:
            if chat_id and await store.get_chat(conn, actor.tenant, chat_id) is None:
                raise NotFound(f"chat {chat_id} not found")
            claim = await claim_request(
                conn, actor.tenant, f"AddNote:{actor.sub}", request_id, fingerprint_of(chat_id, visitor_id, text)
            )
            if claim.result_id:
                return await store.note(conn, actor.tenant, claim.result_id)
            note = await store.add_note(conn, actor.tenant, chat_id, visitor_id, actor.sub, text)
            await claim.record(conn, str(note["id"]))
            return note

    async def list_notes(self, actor: Actor, chat_id: str, visitor_id: str, size: int, token: str):
        chat_id, visitor_id = self._note_target(chat_id, visitor_id)
        size = page_size(size, 50, 200)
        after = decode_token(token, "time")
        async with self.ctx.pool.acquire() as conn:
            if chat_id and await store.get_chat(conn, actor.tenant, chat_id) is None:
                raise NotFound(f"chat {chat_id} not found")
            rows = await store.list_notes(conn, actor.tenant, chat_id, visitor_id, after, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return rows, encode_token([rows[-1]["created_at"].isoformat(), str(rows[-1]["id"])]) if more else ""

    @staticmethod
    def _note_target(chat_id: str, visitor_id: str):
        if bool(chat_id) == bool(visitor_id):
            raise InvalidArgument("set exactly one of chat_id and visitor_id")
        if chat_id:
            return parse_uuid(chat_id, "chat_id"), None
        return None, short(visitor_id, "visitor_id", 128, required=True)

    # --- canned responses, settings ------------------------------------------------

    async def put_canned(self, actor: Actor, shortcut: str, text: str) -> dict:
        shortcut = self._shortcut(shortcut)
        text = (text or "").strip()
        try:
            check_text(text, required=True, limit=4000, what="text")
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        async with unit_of_work(self.ctx.pool) as conn:
            return await store.put_canned(conn, actor.tenant, shortcut, text, actor.sub)

    async def list_canned(self, actor: Actor, prefix: str) -> list[dict]:
        prefix = (prefix or "").strip().lower()
        if len(prefix) > 32:
            raise InvalidArgument("prefix is too long (at most 32 characters)")
        async with self.ctx.pool.acquire() as conn:
            return await store.list_canned(conn, actor.tenant, prefix)

    async def delete_canned(self, actor: Actor, shortcut: str) -> None:
        shortcut = self._shortcut(shortcut)
        async with unit_of_work(self.ctx.pool) as conn:
            if not await store.delete_canned(conn, actor.tenant, shortcut):
                raise NotFound(f"canned response {shortcut!r} not found")

    @staticmethod
    def _shortcut(value: str) -> str:
        value = (value or "").strip().lower().lstrip("/#")
        if not _SHORTCUT.match(value):
            raise InvalidArgument("shortcut must be 1-32 characters: letters, digits, _ and -")
        return value

    async def settings(self, actor: Actor) -> int:
        async with self.ctx.pool.acquire() as conn:
            return await store.inactivity_seconds(conn, actor.tenant)

    async def update_settings(self, actor: Actor, inactivity: int) -> int:
        if inactivity < 0 or inactivity > MAX_INACTIVITY:
            raise InvalidArgument(f"inactivity_seconds must be between 1 and {MAX_INACTIVITY} (0 = default)")
        async with unit_of_work(self.ctx.pool) as conn:
            await store.put_settings(conn, actor.tenant, inactivity or store.DEFAULT_INACTIVITY)
            return await store.inactivity_seconds(conn, actor.tenant)
