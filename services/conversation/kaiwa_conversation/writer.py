"""One chat's changes inside one transaction: sequence numbers, messages, stream events,
outbox events, and the live wake-up (a NOTIFY delivered at commit)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import asyncpg
from google.protobuf.message import Message as ProtoMessage
from kaiwa.events.v1.conversation_pb2 import MessageSent

from . import store
from .domain.messages import Draft


def now() -> datetime:
    return datetime.now(timezone.utc)


def jsonable(chat: dict, participants: list[dict]) -> dict:
    """A chat snapshot for the stream log (datetimes as ISO strings)."""
    out = {k: (v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v) for k, v in chat.items()}
    out["participants"] = [
        {k: (v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v) for k, v in p.items()}
        for p in participants
    ]
    return out


class ChatWriter:
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
        rows = []
        for d in drafts:
            rows.append(
                {
                    "tenant": self.tenant,
                    "chat_id": self.chat["id"],
                    "seq": self._next_seq(),
                    "id": uuid.uuid4(),
                    "sender_kind": sender_kind,
                    "sender_id": sender_id,
                    "kind": d.kind,
                    "channel": self.chat["channel"],
                    "text": d.text,
                    "body": d.body(),
                    "outgoing": outgoing,
                    "reply_to_seq": d.reply_to_seq or None,
                    "part": d.part,
                    "parts": d.parts,
                    "resent_from_seq": resent_from_seq,
                    "client_message_id": client_message_id,
                    "emoji_only": d.emoji_only,
                    "status": "sent" if outgoing else None,
                    "failure_reason": "",
                }
            )
        await store.insert_messages(self.conn, rows)
        if sender_kind != "system":
            self.set(last_activity_at=rows[-1]["sent_at"])
        if publish:
            for r in rows:
                await self.publish(
                    MessageSent(
                        chat_id=str(r["chat_id"]),
                        seq=r["seq"],
                        message_id=str(r["id"]),
                        sender_kind=sender_kind,
                        sender_id=sender_id,
                        kind=r["kind"],
                        text=r["text"],
                    )
                )
        return rows

    async def system(self, type_name: str, reply_to_seq: int = 0, **params) -> dict:
        draft = Draft(
            kind="system", reply_to_seq=reply_to_seq, system={"type": type_name, "params": {k: str(v) for k, v in params.items()}}
        )
        return (await self.append([draft], "system", "", outgoing=False, publish=False))[0]

    async def snapshot(self) -> None:
        """A 'chat' stream event: the chat as it is now, for every watcher."""
        seq = self._next_seq()
        people = (await store.participants(self.conn, self.tenant, [self.chat["id"]])).get(str(self.chat["id"]), [])
        await store.insert_event(self.conn, self.tenant, self.chat["id"], seq, "chat", jsonable(self.chat, people))

    async def event(self, kind: str, data: dict) -> int:
        seq = self._next_seq()
        await store.insert_event(self.conn, self.tenant, self.chat["id"], seq, kind, data)
        return seq

    async def publish(self, payload: ProtoMessage) -> None:
        await self.outbox.add(self.conn, self.tenant, payload)

    async def finish(self) -> None:
        await store.save_chat(self.conn, self.chat, self.changed, self.notify_channel)
