"""CONV-05: a visitor (or a channel's service) starts a chat.

    validate ─▶ same request_id seen? ─yes─▶ the chat that request created
                   │ no
                   ▼
    department_id set? ─yes─▶ routing.GetDepartment (1 s): malformed ▶ INVALID_ARGUMENT,
                   │          not this tenant's ▶ NOT_FOUND, routing down/slow ▶ UNAVAILABLE
                   ▼
    one transaction: claim request_id, chat row, the question, chat_started (outbox)

An empty department_id is "no department": routing offers the chat to every agent of
the tenant (a portal without departments). Nothing is stored before routing has
confirmed the department, so a refused or unanswered call leaves no chat and no event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from kaiwa.events.v1.conversation_pb2 import ChatStarted

from kaiwa_common.db import unit_of_work
from kaiwa_common.emails import valid_email
from kaiwa_common.errors import InvalidArgument, NotFound, PermissionDenied, parse_uuid
from kaiwa_common.idempotency import MAX_REQUEST_ID, claim_request, fingerprint_of

from . import store
from .domain import lifecycle as lc
from .domain.messages import Draft
from .handlers import Actor, Conversation, short
from .routing_client import RoutingClient
from .writer import ChatWriter


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


class ChatStarter:
    def __init__(self, conversation: Conversation, routing: RoutingClient):
        self.conversation = conversation
        self.routing = routing
        self.ctx = conversation.ctx

    async def start(self, actor: Actor, req: StartRequest) -> tuple[dict, list[dict]]:
        """The new chat (or, for a repeated request_id, the one the first call created) and
        its participants."""
        req = self._validated(actor, req)
        scope = f"StartChat:{actor.role}:{actor.sub}"
        fingerprint = fingerprint_of(
            req.channel, req.department_id, req.question, req.visitor_name, req.visitor_email, req.visitor_id, req.bot_id
        )
        if req.request_id:  # a retry returns at once, even while routing is away
            async with self.ctx.pool.acquire() as conn:
                earlier = await store.request_result(conn, actor.tenant, scope, req.request_id, fingerprint)
                if earlier is not None:
                    return await self._existing(conn, actor.tenant, earlier)
        if req.department_id:
            await self.routing.check_department(actor.tenant, req.department_id)
        async with unit_of_work(self.ctx.pool) as conn:
            claim = await claim_request(conn, actor.tenant, scope, req.request_id, fingerprint)
            if claim.result_id:  # a concurrent retry committed first
                return await self._existing(conn, actor.tenant, claim.result_id)
            chat = await self._create(conn, actor.tenant, req)
            await claim.record(conn, str(chat["id"]))
        return chat, []

    @staticmethod
    def _validated(actor: Actor, req: StartRequest) -> StartRequest:
        visitor_id = req.visitor_id
        if actor.role == "visitor":
            if visitor_id and visitor_id != actor.sub:
                raise PermissionDenied("a visitor token starts chats for its own visitor only; leave visitor_id empty")
            visitor_id = actor.sub
        if len(req.request_id) > MAX_REQUEST_ID:
            raise InvalidArgument(f"request_id: at most {MAX_REQUEST_ID} characters")
        email = short(req.visitor_email, "visitor_email", 254)
        department_id = short(req.department_id, "department_id", 64)
        return StartRequest(
            channel=req.channel,
            department_id=parse_uuid(department_id, "department_id") if department_id else "",
            question=short(req.question, "question", 2000),
            visitor_name=short(req.visitor_name, "visitor_name", 100),
            visitor_email=valid_email(email, "visitor_email") if email else "",
            visitor_id=short(visitor_id, "visitor_id", 128, required=True),
            bot_id=short(req.bot_id, "bot_id", 64),
            request_id=req.request_id,
        )

    async def _existing(self, conn, tenant: str, chat_id: str) -> tuple[dict, list[dict]]:
        chat = await store.get_chat(conn, tenant, uuid.UUID(chat_id))
        if chat is None:
            raise NotFound(f"chat {chat_id} not found")
        return chat, (await store.participants(conn, tenant, [chat["id"]])).get(str(chat["id"]), [])

    async def _create(self, conn, tenant: str, req: StartRequest) -> dict:
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
            },
        )
        w = ChatWriter(conn, self.ctx.outbox, self.conversation.notify_channel, chat)
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
            )
        )
        await w.finish()
        return chat
