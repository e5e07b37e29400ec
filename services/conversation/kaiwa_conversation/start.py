"""CONV-05: a visitor (or a channel's service) starts a chat.

    validate ─▶ same request_id seen? ─yes─▶ the chat that request created
                   │ no
                   ▼
    department_id set? ─yes─▶ routing.GetDepartment (1 s): malformed ▶ INVALID_ARGUMENT,
                   │          not this tenant's ▶ NOT_FOUND, routing down/slow ▶ UNAVAILABLE
                   ▼
    one transaction: blocked (VIS-05)? ▶ PERMISSION_DENIED; claim request_id, chat row,
                     the question, chat_started (outbox)

An empty department_id is "no department": routing offers the chat to every agent of
the tenant (a portal without departments). Nothing is stored before routing has
confirmed the department, so a refused or unanswered call leaves no chat and no event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from kaiwa.events.v1.conversation_pb2 import ChatStarted

from kaiwa_common.auth import VISITOR
from kaiwa_common.db import unit_of_work
from kaiwa_common.emails import valid_email
from kaiwa_common.errors import InvalidArgument, NotFound, PermissionDenied, parse_uuid
from kaiwa_common.idempotency import MAX_REQUEST_ID, claim_request, fingerprint_of

from . import store
from .domain import lifecycle as lc
from .domain.messages import Draft, check_field
from .unit_of_work import Actor, ChatWriter, Deps

MAX_FORM_FIELDS, MAX_FORM_NAME, MAX_FORM_VALUE = 50, 100, 2000

BLOCKED = (
    "this visitor has been blocked on this site (by address or messaging thread): a new chat cannot be started; "
    "an agent can lift the block"
)


@dataclass(frozen=True)
class StartRequest:
    channel: str
    department_id: str = ""
    question: str = ""
    visitor_name: str = ""
    visitor_email: str = ""
    visitor_id: str = ""
    bot_id: str = ""
    request_id: str = ""
    visitor_ip: str = ""  # the caller's address (api.py; never one the visitor sets)
    fields: dict[str, str] = field(default_factory=dict)  # the widget's pre-chat form (CRM-08)


async def start_chat(deps: Deps, actor: Actor, req: StartRequest) -> tuple[dict, list[dict]]:
    """The new chat (or, for a repeated request_id, the one the first call created) and
    its participants."""
    req = _validated(actor, req)
    scope = f"StartChat:{actor.role}:{actor.sub}"
    fingerprint = fingerprint_of(
        req.channel,
        req.department_id,
        req.question,
        req.visitor_name,
        req.visitor_email,
        req.visitor_id,
        req.bot_id,
        *([req.fields] if req.fields else []),  # absent when none: earlier requests' fingerprints hold
    )
    if req.request_id:  # a retry returns at once, even while routing is away
        async with deps.ctx.pool.acquire() as conn:
            earlier = await store.request_result(conn, actor.tenant, scope, req.request_id, fingerprint)
            if earlier is not None:
                return await _existing(conn, actor.tenant, earlier)
    if req.department_id:
        await deps.routing.check_department(actor.tenant, req.department_id)
    async with unit_of_work(deps.ctx.pool) as conn:
        if await store.is_blocked(conn, actor.tenant, req.visitor_ip, req.channel, req.visitor_id):
            raise PermissionDenied(BLOCKED)
        claim = await claim_request(conn, actor.tenant, scope, req.request_id, fingerprint)
        if claim.result_id:  # a concurrent retry committed first
            return await _existing(conn, actor.tenant, claim.result_id)
        chat = await _create(deps, conn, actor.tenant, req)
        await claim.record(conn, str(chat["id"]))
    return chat, []


def checked_department(value: str) -> str:
    """A department id as given (empty: no department), or InvalidArgument if not a UUID;
    whether it is the tenant's is routing's answer (RoutingClient.check_department)."""
    value = check_field(value, "department_id", 64)
    return parse_uuid(value, "department_id") if value else ""


def _validated(actor: Actor, req: StartRequest) -> StartRequest:
    visitor_id = req.visitor_id
    if actor.role == VISITOR:
        if visitor_id and visitor_id != actor.sub:
            raise PermissionDenied("a visitor token starts chats for its own visitor only; leave visitor_id empty")
        visitor_id = actor.sub
    if len(req.request_id) > MAX_REQUEST_ID:
        raise InvalidArgument(f"request_id: at most {MAX_REQUEST_ID} characters")
    return StartRequest(
        channel=req.channel,
        department_id=checked_department(req.department_id),
        question=check_field(req.question, "question", 2000),
        visitor_name=check_field(req.visitor_name, "visitor_name", 100),
        # As typed (the CRM shows it so and matches it case-insensitively); empty: none given.
        visitor_email=valid_email(req.visitor_email, "visitor_email") if req.visitor_email.strip() else "",
        visitor_id=check_field(visitor_id, "visitor_id", 128, required=True),
        bot_id=check_field(req.bot_id, "bot_id", 64),
        request_id=req.request_id,
        visitor_ip=req.visitor_ip,
        fields=check_form_fields(req.fields),
    )


def check_form_fields(fields: dict[str, str]) -> dict[str, str]:
    """CRM-08: the widget's pre-chat form fields: at most 50, names of letters, digits, _,
    space or - (1..100), values trimmed (at most 2000 characters); empty values dropped."""
    if len(fields) > MAX_FORM_FIELDS:
        raise InvalidArgument(f"fields: at most {MAX_FORM_FIELDS} entries, not {len(fields)}", field="fields")
    clean = {}
    for name, value in sorted(fields.items()):
        if not 1 <= len(name) <= MAX_FORM_NAME or not name.strip() or not all(c.isalnum() or c in "_ -" for c in name):
            raise InvalidArgument(
                f"fields: name {name[:MAX_FORM_NAME]!r} must be 1..{MAX_FORM_NAME} letters, digits, _, space or -",
                field="fields",
            )
        value = value.strip()
        if len(value) > MAX_FORM_VALUE:
            raise InvalidArgument(f"fields[{name!r}]: at most {MAX_FORM_VALUE} characters", field="fields")
        if value:
            clean[name] = value
    return clean


async def _existing(conn, tenant: str, chat_id: str) -> tuple[dict, list[dict]]:
    chat = await store.get_chat(conn, tenant, uuid.UUID(chat_id))
    if chat is None:
        raise NotFound(f"chat {chat_id} not found")
    return chat, await store.participants_of(conn, tenant, chat["id"])


async def _create(deps: Deps, conn, tenant: str, req: StartRequest) -> dict:
    state = lc.BOT if req.bot_id else lc.QUEUED
    chat = await store.insert_chat(
        conn,
        tenant,
        {
            "id": uuid.uuid4(),
            "channel": req.channel,
            "state": state,
            "department_id": req.department_id,
            "visitor_id": req.visitor_id,
            "visitor_name": req.visitor_name,
            "visitor_email": req.visitor_email,
            "question": req.question,
            "bot_id": req.bot_id,
            "visitor_ip": req.visitor_ip,
            "form_fields": req.fields,
        },
    )
    w = ChatWriter(conn, deps.ctx.outbox, deps.hub.channel, chat)
    await w.snapshot()
    if req.question:
        await w.append([Draft(kind="text", text=req.question)], "visitor", req.visitor_id, outgoing=False)
    await w.publish(
        ChatStarted(
            chat_id=str(chat["id"]),
            channel=f"CHANNEL_{req.channel.upper()}",
            department_id=req.department_id,
            visitor_id=req.visitor_id,
            visitor_name=req.visitor_name,
            visitor_email=req.visitor_email,
            question=req.question,
            state=state,
            fields=req.fields,
        )
    )
    await w.finish()
    return chat
