"""CONV-02: SendMessage's one-round-trip path checks a message against this replica's
snapshot of the chat (snapshots.py). A change made elsewhere (another replica, or any
other writer of the row, here a plain UPDATE) must be seen by the very next message."""

from __future__ import annotations

import uuid

import grpc
from kaiwa.conversation.v1 import conversation_pb2 as pb

from tests.fixtures import auth, status_of

AGENT = "agent-1"


def send(conv, tenant, chat, role, sub, text):
    return conv.stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text=text), metadata=auth(tenant, role, sub))


async def change_row(conv, chat, assignment: str) -> None:
    async with conv.ctx.pool.acquire() as conn:
        await conn.execute(f"UPDATE chats SET {assignment} WHERE id = $1", uuid.UUID(chat.id))


async def test_conv02_a_send_sees_a_block_made_after_the_last_send(conv, tenant):
    chat = await conv.open_chat(tenant)
    first = await send(conv, tenant, chat, "visitor", chat.visitor_id, "one")
    await change_row(conv, chat, "visitor_blocked = true")
    refused = await status_of(send(conv, tenant, chat, "visitor", chat.visitor_id, "two"))
    assert refused == grpc.StatusCode.PERMISSION_DENIED
    await change_row(conv, chat, "visitor_blocked = false")
    third = await send(conv, tenant, chat, "visitor", chat.visitor_id, "three")
    assert third.seq == first.seq + 1


async def test_conv02_a_send_takes_the_sequence_number_after_one_used_elsewhere(conv, tenant):
    chat = await conv.open_chat(tenant)
    first = await send(conv, tenant, chat, "agent", AGENT, "hello")
    await change_row(conv, chat, "last_seq = last_seq + 1")  # another replica wrote a stream event
    second = await send(conv, tenant, chat, "agent", AGENT, "again")
    third = await send(conv, tenant, chat, "agent", AGENT, "and again")
    assert (second.seq, third.seq) == (first.seq + 2, first.seq + 3)


async def test_conv02_the_next_send_to_an_ended_chat_is_refused(conv, tenant):
    chat = await conv.open_chat(tenant)
    await send(conv, tenant, chat, "visitor", chat.visitor_id, "hi")
    await change_row(conv, chat, "state = 'ended', ended_at = now()")
    refused = await status_of(send(conv, tenant, chat, "visitor", chat.visitor_id, "anyone?"))
    assert refused == grpc.StatusCode.FAILED_PRECONDITION
