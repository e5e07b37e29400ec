"""CONV-07: internal notes on a chat or on a visitor, by agents (AddNote, ListNotes);
never shown to visitors. AddNote takes a request_id (kaiwa_common.idempotency)."""

from __future__ import annotations

from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import InvalidArgument, NotFound, parse_uuid
from kaiwa_common.idempotency import claim_request, fingerprint_of
from kaiwa_common.paging import PageLimits, encode_token

from . import store
from .domain.messages import MAX_NOTE, check_field
from .history import time_position
from .unit_of_work import Actor, Deps

NOTES = PageLimits(default=50, limit=200)


async def add_note(deps: Deps, actor: Actor, chat_id: str, visitor_id: str, text: str, request_id: str = "") -> dict:
    chat_id, visitor_id = _target(chat_id, visitor_id)
    text = check_field(text, "note text", MAX_NOTE, required=True)
    async with unit_of_work(deps.ctx.pool) as conn:
        if chat_id and await store.get_chat(conn, actor.tenant, chat_id) is None:
            raise NotFound(f"chat {chat_id} not found")
        fingerprint = fingerprint_of(chat_id, visitor_id, text)
        claim = await claim_request(conn, actor.tenant, f"AddNote:{actor.sub}", request_id, fingerprint)
        if claim.result_id:
            return await store.note(conn, actor.tenant, claim.result_id)
        note = await store.add_note(conn, actor.tenant, chat_id, visitor_id, actor.sub, text)
        await claim.record(conn, str(note["id"]))
        return note


async def list_notes(deps: Deps, actor: Actor, chat_id: str, visitor_id: str, size: int, token: str) -> tuple[list[dict], str]:
    """A chat's or a visitor's notes, oldest first."""
    chat_id, visitor_id = _target(chat_id, visitor_id)
    size = NOTES.size(size)
    after = time_position(token)
    async with deps.ctx.pool.acquire() as conn:
        if chat_id and await store.get_chat(conn, actor.tenant, chat_id) is None:
            raise NotFound(f"chat {chat_id} not found")
        rows = await store.list_notes(conn, actor.tenant, chat_id, visitor_id, after, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    return rows, encode_token((rows[-1]["created_at"], rows[-1]["id"])) if more else ""


def _target(chat_id: str, visitor_id: str) -> tuple[str | None, str | None]:
    """A note is on a chat or on a visitor: exactly one of the two."""
    if bool(chat_id) == bool(visitor_id):
        raise InvalidArgument("set exactly one of chat_id and visitor_id")
    if chat_id:
        return parse_uuid(chat_id, "chat_id"), None
    return None, check_field(visitor_id, "visitor_id", 128, required=True)
