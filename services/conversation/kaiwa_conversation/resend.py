"""CONV-04: ResendMessage: an agent of the chat sends a failed message again (as a new
message pointing at the failed one), or an approved template in its place, which is
the only way once the channel's session window has closed."""

from __future__ import annotations

from kaiwa_common.errors import FailedPrecondition, NotFound, parse_uuid
from kaiwa_common.idempotency import claim_request, fingerprint_of

from . import store
from .domain import lifecycle as lc
from .domain.channels import channel, window_closed
from .domain.attachments import check_rich
from .domain.messages import Draft, Span, split
from .unit_of_work import Actor, Deps, now, require_member, writing


async def resend(deps: Deps, actor: Actor, chat_id: str, seq: int, template: dict | None, request_id: str = "") -> list[dict]:
    """The new message (its parts); a repeated request_id returns the first resend."""
    chat_id = parse_uuid(chat_id, "chat_id")
    async with writing(deps, actor.tenant, chat_id) as w:
        chat = w.chat
        await require_member(w.conn, chat, actor.sub)
        fingerprint = fingerprint_of(str(chat_id), seq, template)
        claim = await claim_request(w.conn, actor.tenant, f"ResendMessage:{actor.sub}", request_id, fingerprint)
        if claim.result_id:
            first, count = (int(x) for x in claim.result_id.split(":"))
            return await store.messages_from(w.conn, actor.tenant, chat_id, first, count)
        original = await store.message(w.conn, actor.tenant, chat_id, seq)
        if original is None:
            raise NotFound(f"message {seq} not found in this chat")
        if original["status"] != "failed":
            raise FailedPrecondition(
                f"message {seq} has not failed ({original['status'] or 'incoming'}): only failed messages are resent"
            )
        if chat["state"] != lc.OPEN:
            raise FailedPrecondition(f"the chat is {chat['state']}")
        ch = channel(chat["channel"])
        draft = _again(original) if template is None else Draft(kind="rich", rich=check_rich(template, ch))
        if window_closed(chat, now()) and (draft.rich or {}).get("type") != "template":
            raise FailedPrecondition(f"the {chat['channel']} session window has closed: resend with an approved template")
        rows = await w.append(split(draft, ch.max_text), "agent", actor.sub, outgoing=True, resent_from_seq=seq)
        await claim.record(w.conn, f"{rows[0]['seq']}:{len(rows)}")
        return rows


def _again(original: dict) -> Draft:
    """The failed message's content, as its sender wrote it."""
    body = original["body"]
    return Draft(
        kind=original["kind"],
        text=original["text"],
        spans=tuple(Span(**s) for s in body.get("spans", [])),
        file=body.get("file"),
        link=body.get("link"),
        rich=body.get("rich"),
    )
