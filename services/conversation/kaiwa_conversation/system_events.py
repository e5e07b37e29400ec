"""CONV-03: PostSystemEvent: another service (the CRM bridge, the visitor service) adds a
typed system message to a chat, e.g. converted_to_ticket, visitor_blocked; the types it
may post and their parameters are domain/system_messages.py."""

from __future__ import annotations

from kaiwa_common.errors import InvalidArgument, parse_uuid
from kaiwa_common.idempotency import claim_request, fingerprint_of

from . import store
from .domain import system_messages as sysmsg
from .unit_of_work import Actor, Deps, writing


async def post_system(
    deps: Deps, actor: Actor, chat_id: str, type_name: str, params: dict[str, str], request_id: str = ""
) -> dict:
    """The system message; a repeated request_id returns the one the first call posted."""
    chat_id = parse_uuid(chat_id, "chat_id")
    if len(params) > 10 or any(len(k) > 40 or len(v) > _limit(k) or "\x00" in v for k, v in params.items()):
        raise InvalidArgument("params: at most 10, names up to 40 and values up to 200 characters (URLs 2000)")
    sysmsg.validate(type_name, params, external=True)
    async with writing(deps, actor.tenant, chat_id) as w:
        fingerprint = fingerprint_of(str(chat_id), type_name, params)
        claim = await claim_request(w.conn, actor.tenant, f"PostSystemEvent:{actor.sub}", request_id, fingerprint)
        if claim.result_id:
            return (await store.messages_from(w.conn, actor.tenant, chat_id, int(claim.result_id), 1))[0]
        row = await w.system(type_name, **params)
        await claim.record(w.conn, str(row["seq"]))
        return row


def _limit(name: str) -> int:
    return 2000 if name.endswith("_url") else 200
