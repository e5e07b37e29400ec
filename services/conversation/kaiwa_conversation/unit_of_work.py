"""What every use case of a chat shares, in one place:

- `Deps`: what use cases need (the service context, routing, the live hub); passed to
  plain functions instead of a class holding every use case;
- `Actor`: who calls (tenant, role, subject) from the call's identity;
- `writing()`: one chat's unit of work: one transaction with the chat row locked, so a
  chat's sequence numbers, state, messages, stream events and outbox events always
  change together and in order; the `ChatWriter` it hands out writes them, and saves the
  chat and wakes its live watchers (a NOTIFY delivered at commit) at the end;
- who may act: read access, membership, names, and `require_owner`/`require_member`,
  which refuse with NotAssignedYet so the ROUT-02 gate (assignment.py) can ask routing.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import AsyncIterator

import asyncpg
from google.protobuf.message import Message as ProtoMessage
from kaiwa.events.v1.conversation_pb2 import MessageSent

from kaiwa_common.app import ServiceContext
from kaiwa_common.auth import VISITOR, current_identity
from kaiwa_common.db import unit_of_work
from kaiwa_common.errors import NotFound, PermissionDenied, parse_uuid

from . import store
from .assignment import MEMBER, OWNER, NotAssignedYet
from .domain.messages import Draft
from .live import LiveHub
from .routing_client import RoutingClient
from .snapshots import ChatSnapshots


@dataclass(frozen=True)
class Deps:
    ctx: ServiceContext
    routing: RoutingClient
    hub: LiveHub
    countdown_scale: float = 1.0  # < 1 compresses the 30-90 s countdowns (tests only)
    snapshots: ChatSnapshots = field(default_factory=ChatSnapshots)  # send.py's one-statement path


@dataclass(frozen=True)
class Actor:
    tenant: str
    role: str
    sub: str

    @classmethod
    def current(cls) -> Actor:
        identity = current_identity()
        return cls(identity.tenant, identity.role, identity.sub)


def now() -> datetime:
    return datetime.now(timezone.utc)


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, uuid.UUID) else value


def jsonable(row: dict) -> dict:
    """A row for the stream log or a NOTIFY payload (datetimes and ids as strings)."""
    return {k: _plain(v) for k, v in row.items()}


def message_row(
    chat: dict,
    seq: int,
    draft: Draft,
    sender_kind: str,
    sender_id: str,
    outgoing: bool,
    client_message_id: str | None = None,
    resent_from_seq: int | None = None,
) -> dict:
    """A message as stored (and streamed): one part of what a sender wrote."""
    return {
        "tenant": chat["tenant"],
        "chat_id": chat["id"],
        "seq": seq,
        "id": uuid.uuid4(),
        "sender_kind": sender_kind,
        "sender_id": sender_id,
        "kind": draft.kind,
        "channel": chat["channel"],
        "text": draft.text,
        "body": draft.body(),
        "outgoing": outgoing,
        "reply_to_seq": draft.reply_to_seq or None,
        "part": draft.part,
        "parts": draft.parts,
        "resent_from_seq": resent_from_seq,
        "client_message_id": client_message_id,
        "emoji_only": draft.emoji_only,
        "status": "sent" if outgoing else None,
        "failure_reason": "",
    }


def message_sent(row: dict) -> MessageSent:
    return MessageSent(
        chat_id=str(row["chat_id"]),
        seq=row["seq"],
        message_id=str(row["id"]),
        sender_kind=row["sender_kind"],
        sender_id=row["sender_id"],
        kind=row["kind"],
        text=row["text"],
    )


class ChatWriter:
    """One chat's changes inside its transaction: each message or stream event takes the
    chat's next sequence number; outbox events commit with them."""

    def __init__(self, conn: asyncpg.Connection, outbox, notify_channel: str, chat: dict):
        self.conn = conn
        self.outbox = outbox
        self.notify_channel = notify_channel
        self.chat = chat
        self.tenant = chat["tenant"]
        self.changed: set[str] = set()

    def set(self, **fields) -> None:
        self.chat.update(fields)
        self.changed.update(fields)

    def _next_seq(self) -> int:
        self.chat["last_seq"] += 1
        return self.chat["last_seq"]

    async def append(
        self,
        drafts: list[Draft],
        sender_kind: str,
        sender_id: str,
        *,
        outgoing: bool,
        client_message_id: str | None = None,
        resent_from_seq: int | None = None,
        publish: bool = True,
    ) -> list[dict]:
        """Messages (the parts of one), published as message_sent unless `publish` is off."""
        rows = [
            message_row(self.chat, self._next_seq(), d, sender_kind, sender_id, outgoing, client_message_id, resent_from_seq)
            for d in drafts
        ]
        await store.insert_messages(self.conn, rows)
        if sender_kind != "system":
            self.set(last_activity_at=rows[-1]["sent_at"])
        if publish:
            for row in rows:
                await self.publish(message_sent(row))
        return rows

    async def system(self, type_name: str, reply_to_seq: int = 0, **params) -> dict:
        """A typed system message (CONV-03), rendered in the reader's locale when read."""
        system = {"type": type_name, "params": {k: str(v) for k, v in params.items()}}
        draft = Draft(kind="system", reply_to_seq=reply_to_seq, system=system)
        return (await self.append([draft], "system", "", outgoing=False, publish=False))[0]

    async def snapshot(self) -> None:
        """A 'chat' stream event: the chat as it is now, for every watcher."""
        people = await store.participants_of(self.conn, self.tenant, self.chat["id"])
        data = {**jsonable(self.chat), "participants": [jsonable(p) for p in people]}
        await self.event("chat", data)

    async def event(self, kind: str, data: dict) -> int:
        seq = self._next_seq()
        await store.insert_event(self.conn, self.tenant, self.chat["id"], seq, kind, data)
        return seq

    async def publish(self, payload: ProtoMessage) -> None:
        await self.outbox.add(self.conn, self.tenant, payload)

    async def finish(self) -> None:
        await store.save_chat(self.conn, self.chat, self.changed, self.notify_channel)


@contextlib.asynccontextmanager
async def writing(deps: Deps, tenant: str, chat_id, conn: asyncpg.Connection | None = None) -> AsyncIterator[ChatWriter]:
    """Lock the chat (in `conn`'s transaction, or a new one), hand out its writer, save the
    chat and wake its watchers at the end if anything changed."""
    deps.snapshots.drop(tenant, chat_id)  # about to change: this replica's next send reads it again
    async with contextlib.AsyncExitStack() as stack:
        if conn is None:
            conn = await stack.enter_async_context(unit_of_work(deps.ctx.pool))
        chat = await store.get_chat(conn, tenant, chat_id, lock=True)
        if chat is None:
            raise NotFound(f"chat {chat_id} not found")
        writer = ChatWriter(conn, deps.ctx.outbox, deps.hub.channel, chat)
        first_seq = chat["last_seq"]
        yield writer
        if writer.changed or chat["last_seq"] != first_seq:
            await writer.finish()


# --- who may act --------------------------------------------------------------------


def check_read(actor: Actor, chat: dict | None, chat_id) -> dict:
    """The chat, if this caller may read it (a visitor: only its own)."""
    if chat is None:
        raise NotFound(f"chat {chat_id} not found")
    if actor.role == VISITOR and chat["visitor_id"] != actor.sub:
        raise PermissionDenied("this chat belongs to another visitor")
    return chat


async def read_chat(deps: Deps, actor: Actor, chat_id: str) -> tuple[dict, list[dict]]:
    """GetChat: the chat and its participants."""
    chat_id = parse_uuid(chat_id, "chat_id")
    async with deps.ctx.pool.acquire() as conn:
        chat = check_read(actor, await store.get_chat(conn, actor.tenant, chat_id), chat_id)
        return chat, await store.participants_of(conn, actor.tenant, chat["id"])


async def chat_participants(deps: Deps, chat: dict) -> list[dict]:
    """The participants of a chat a use case returned (read after its transaction)."""
    async with deps.ctx.pool.acquire() as conn:
        return await store.participants_of(conn, chat["tenant"], chat["id"])


async def is_member(conn, chat: dict, agent_id: str) -> bool:
    """The chat's agent, or an agent invited to it (who has not left)."""
    if chat["agent_id"] == agent_id:
        return True
    people = await store.participants_of(conn, chat["tenant"], chat["id"])
    return any(p["agent_id"] == agent_id and p["role"] != "former" for p in people)


async def name_of(conn, chat: dict, agent_id: str) -> str:
    """An agent's name as routing gave it for this chat, else the agent's id."""
    people = await store.participants_of(conn, chat["tenant"], chat["id"])
    return next((p["name"] for p in people if p["agent_id"] == agent_id and p["name"]), agent_id)


def require_owner(chat: dict, agent_id: str, message: str) -> None:
    """Only the chat's agent may go on (ROUT-02: unless routing says the event is late)."""
    if chat["agent_id"] != agent_id:
        raise NotAssignedYet(message, chat["id"], agent_id, OWNER)


async def require_member(conn, chat: dict, agent_id: str) -> None:
    """Only the chat's agent or an invited one may go on (ROUT-02 as above)."""
    if not await is_member(conn, chat, agent_id):
        raise NotAssignedYet(f"agent {agent_id} is not in this chat", chat["id"], agent_id, MEMBER)
