"""CONV-05/15: the lifecycle state machine under random operation sequences (hypothesis).

One property runs on the pure state machine; the other drives the real service through
its gRPC API and routing's events, comparing every answer and the chat's state with a
model, and checking at the end that the stream has no gap and chat_ended was published
once per live period."""

from __future__ import annotations

import asyncio
import uuid

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.events.v1.routing_pb2 import ChatAssigned, ChatMissed, TransferDeclined

from kaiwa_conversation.domain import lifecycle as lc
from services.conversation.tests.helpers import eventually
from tests.fixtures import auth

OPS = [lc.ASSIGN, lc.HANDOVER, lc.RETURN_TO_QUEUE, lc.END, lc.MISS, lc.COMPLETE, lc.REOPEN]


@given(start=st.sampled_from([lc.QUEUED, lc.BOT]), ops=st.lists(st.sampled_from(OPS), max_size=30))
def test_conv05_state_machine_invariants(start, ops):
    state, owner, left_live = start, False, 0
    for op in ops:
        try:
            new = lc.next_state(state, op, has_owner=owner)
        except lc.IllegalTransition as exc:
            assert state in str(exc)
            continue
        assert lc.allowed(state, op)
        if op == lc.ASSIGN:
            owner = True
        if op == lc.RETURN_TO_QUEUE:
            owner = False
        if state in lc.LIVE and new not in lc.LIVE:
            left_live += 1
        assert new in lc.STATES
        assert not (new == lc.COMPLETED and not owner), "only a chat with an assigned agent completes"
        assert not (new == lc.OPEN and not owner), "an open chat has an owner"
        assert not (state == lc.BOT and new == lc.QUEUED and op != lc.HANDOVER)
        assert not (state in (lc.ENDED, lc.COMPLETED) and new in lc.LIVE and op != lc.REOPEN)
        state = new
    assert lc.next_state(lc.COMPLETED, lc.REOPEN, has_owner=False) == lc.QUEUED


API_OPS = [
    "assign_a",
    "assign_b",
    "visitor_msg",
    "agent_a_msg",
    "end_a",
    "end_visitor",
    "complete_a",
    "complete_b",
    "reopen_a",
    "missed",
    "return_to_queue",
    "handover",
]


class Model:
    def __init__(self, bot: bool):
        self.state = lc.BOT if bot else lc.QUEUED
        self.owner = ""
        self.ended_events = 0

    def leave_live(self, new_state: str) -> None:
        if self.state in lc.LIVE:
            self.ended_events += 1
        self.state = new_state

    def apply(self, op: str):
        """The status code the service must answer with (None for events), updating the model."""
        ok = grpc.StatusCode.OK
        if op in ("assign_a", "assign_b"):
            agent = "agent-a" if op == "assign_a" else "agent-b"
            if self.state in lc.LIVE and not (self.state == lc.OPEN and self.owner == agent):
                self.state, self.owner = lc.OPEN, agent
            return None
        if op == "missed":
            if self.state == lc.QUEUED:
                self.leave_live(lc.ENDED)
            return None
        if op == "return_to_queue":
            if self.state == lc.OPEN:
                self.state, self.owner = lc.QUEUED, ""
            return None
        if op == "visitor_msg":  # added to a completed chat too, which stays completed
            return grpc.StatusCode.FAILED_PRECONDITION if self.state == lc.ENDED else ok
        if op == "agent_a_msg":
            if self.owner != "agent-a":
                return grpc.StatusCode.PERMISSION_DENIED
            if self.state == lc.COMPLETED:  # the assigned agent's reply reopens it
                self.state = lc.OPEN
            return ok if self.state == lc.OPEN else grpc.StatusCode.FAILED_PRECONDITION
        if op in ("end_a", "end_visitor"):
            if op == "end_a" and self.owner != "agent-a":
                return grpc.StatusCode.PERMISSION_DENIED
            if self.state not in lc.LIVE:
                return grpc.StatusCode.FAILED_PRECONDITION
            self.leave_live(lc.ENDED)
            return ok
        if op in ("complete_a", "complete_b"):
            if self.owner != ("agent-a" if op == "complete_a" else "agent-b"):
                return grpc.StatusCode.PERMISSION_DENIED
            if self.state not in (lc.OPEN, lc.ENDED):
                return grpc.StatusCode.FAILED_PRECONDITION
            self.leave_live(lc.COMPLETED)
            return ok
        if op == "reopen_a":
            if self.owner != "agent-a":
                return grpc.StatusCode.PERMISSION_DENIED
            if self.state not in (lc.ENDED, lc.COMPLETED):
                return grpc.StatusCode.FAILED_PRECONDITION
            self.state = lc.OPEN
            return ok
        if op == "handover":
            if self.state != lc.BOT:
                return grpc.StatusCode.FAILED_PRECONDITION
            self.state = lc.QUEUED
            return ok
        raise AssertionError(op)


STATE_OF = {
    lc.QUEUED: pb.CHAT_STATE_QUEUED,
    lc.BOT: pb.CHAT_STATE_BOT,
    lc.OPEN: pb.CHAT_STATE_OPEN,
    lc.ENDED: pb.CHAT_STATE_ENDED,
    lc.COMPLETED: pb.CHAT_STATE_COMPLETED,
}


async def _call(call) -> grpc.StatusCode:
    try:
        await call
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as err:
        return err.code()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bot=st.booleans(), ops=st.lists(st.sampled_from(API_OPS), min_size=1, max_size=8))
async def test_conv05_random_api_sequences_match_the_model(conv, bot, ops):
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    chat = await conv.start(tenant, bot_id="bot" if bot else "")
    model = Model(bot)
    visitor, agent_a = auth(tenant, "visitor", chat.visitor_id), auth(tenant, "agent", "agent-a")
    stub = conv.stub
    for op in ops:
        expected = model.apply(op)
        if expected is None:
            payload = {
                "assign_a": ChatAssigned(chat_id=chat.id, agent_id="agent-a", agent_name="A", how="accepted"),
                "assign_b": ChatAssigned(chat_id=chat.id, agent_id="agent-b", agent_name="B", how="assigned"),
                "missed": ChatMissed(chat_id=chat.id, reason="no_agent_accepted", waited_seconds=5),
                "return_to_queue": TransferDeclined(
                    chat_id=chat.id, to_agent_id="agent-c", reason="busy", returned_to_queue=True
                ),
            }[op]
            event = await conv.routing_event(tenant, payload)
            await eventually(
                lambda event_id=event.id: conv.ctx.pool.fetchval(
                    "SELECT true FROM processed_events WHERE event_id = $1", event_id
                ),
                f"{op} applied",
            )
        else:
            call = {
                "visitor_msg": lambda: stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="hi"), metadata=visitor),
                "agent_a_msg": lambda: stub.SendMessage(pb.SendMessageRequest(chat_id=chat.id, text="hello"), metadata=agent_a),
                "end_a": lambda: stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=agent_a),
                "end_visitor": lambda: stub.EndChat(pb.EndChatRequest(chat_id=chat.id), metadata=visitor),
                "complete_a": lambda: stub.CompleteChat(pb.CompleteChatRequest(chat_id=chat.id), metadata=agent_a),
                "complete_b": lambda: stub.CompleteChat(
                    pb.CompleteChatRequest(chat_id=chat.id), metadata=auth(tenant, "agent", "agent-b")
                ),
                "reopen_a": lambda: stub.ReopenChat(pb.ReopenChatRequest(chat_id=chat.id), metadata=agent_a),
                "handover": lambda: stub.HandOverToHuman(
                    pb.HandOverToHumanRequest(chat_id=chat.id), metadata=auth(tenant, "service", "bot")
                ),
            }[op]()
            assert await _call(call) == expected, (op, ops)
        current = await stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=auth(tenant, "admin", "root"))
        assert (current.state, current.agent_id) == (STATE_OF[model.state], model.owner), (op, ops)
        assert current.state != pb.CHAT_STATE_OPEN or current.agent_id, "an open chat always has an owner"

    seqs = []
    async for event in stub.StreamChat(pb.StreamChatRequest(chat_id=chat.id), metadata=auth(tenant, "admin", "root")):
        seqs.append(event.seq)
        if event.seq == current.last_seq:
            break
    assert seqs == list(range(1, current.last_seq + 1)), "every durable event has its own seq, in order"
    if model.ended_events:
        await eventually(lambda: _count(conv, tenant, chat.id, model.ended_events), "chat_ended published")
    await asyncio.sleep(0)
    assert len(await conv.events(tenant, "chat_ended", chat.id)) == model.ended_events, ops


async def _count(conv, tenant, chat_id, n):
    return len(await conv.events(tenant, "chat_ended", chat_id)) >= n
