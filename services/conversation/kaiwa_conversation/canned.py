"""CONV-10: canned responses: a tenant's shortcuts to prepared texts (agents put and list
them, an admin deletes them); SendMessage(canned_shortcut) expands one, with
{visitor_name} filled in (send.py)."""

from __future__ import annotations

import re

from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import InvalidArgument, NotFound

from . import store
from .domain.messages import check_field
from .unit_of_work import Actor, Deps

_SHORTCUT = re.compile(r"^[a-z0-9_-]{1,32}$")
MAX_CANNED = 4000


async def put_canned(deps: Deps, actor: Actor, shortcut: str, text: str) -> dict:
    shortcut = _shortcut(shortcut)
    text = check_field(text, "text", MAX_CANNED, required=True)
    async with unit_of_work(deps.ctx.pool) as conn:
        return await store.put_canned(conn, actor.tenant, shortcut, text, actor.sub)


async def list_canned(deps: Deps, actor: Actor, prefix: str) -> list[dict]:
    prefix = (prefix or "").strip().lower()
    if len(prefix) > 32:
        raise InvalidArgument("prefix is too long (at most 32 characters)")
    async with deps.ctx.pool.acquire() as conn:
        return await store.list_canned(conn, actor.tenant, prefix)


async def delete_canned(deps: Deps, actor: Actor, shortcut: str) -> None:
    shortcut = _shortcut(shortcut)
    async with unit_of_work(deps.ctx.pool) as conn:
        if not await store.delete_canned(conn, actor.tenant, shortcut):
            raise NotFound(f"canned response {shortcut!r} not found")


def _shortcut(value: str) -> str:
    value = (value or "").strip().lower().lstrip("/#")
    if not _SHORTCUT.match(value):
        raise InvalidArgument("shortcut must be 1-32 characters: letters, digits, _ and -")
    return value
