"""CONV-05/15: the chat lifecycle, checked against statements written here, not against
the transition table the service uses (domain/lifecycle.py).

- The lifecycle as the product describes it (CONV-05/06/15, the service README) is
  written out below as a rule per operation; every (state, operation, owner) case of
  the state machine must agree with it, a refusal being a FailedPrecondition that names
  the state.
- Random operation sequences on the state machine keep invariants stated on their own:
  an ended or completed chat comes back only by a reopen, only a chat with an agent is
  completed, an open chat always has its agent, a bot chat reaches the queue only by
  being handed over, only a queued chat is missed.
- Random sequences of gRPC calls and routing's events drive the real service; every
  answer and the chat's state and agent must match a simple model of the product kept
  in this test, the same invariants must hold on what GetChat reports, the stream's
  sequence numbers have no gap, and chat_ended is published once per live period.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.events.v1.routing_pb2 import ChatAssigned, ChatMissed, TransferDeclined

from kaiwa_common.errors import FailedPrecondition
from kaiwa_conversation.domain import lifecycle as lc
from tests.fixtures import auth, eventually

STATES = ("queued", "bot", "open", "ended", "completed")
LIVE = {"queued", "bot", "open"}
OPS = ("assign", "handover", "return_to_queue", "end", "miss", "complete", "reopen")


def as_specified(state: str, op: str, has_owner: bool) -> str | None:
    """The lifecycle in the product's words; None: refused."""
    if op == "assign":  # routing gives a live chat to an agent (a transfer included)
        return "open" if state in LIVE else None
    if op == "handover":  # only the bot hands over, to the queue
        return "queued" if state == "bot" else None
    if op == "return_to_queue":  # a declined transfer whose agent had gone
        return "queued" if state == "open" else None
    if op == "end":  # visitor, agent or countdown end a live chat
        return "ended" if state in LIVE else None
    if op == "miss":  # nobody took a waiting chat
        return "ended" if state == "queued" else None
    if op == "complete":  # the assigned agent closes the case, ended or not
        return "completed" if state in ("open", "ended") and has_owner else None
    if op == "reopen":  # the agent reopens; without an agent it waits in the queue again
        return ("open" if has_owner else "queued") if state in ("ended", "completed") else None
    raise AssertionError(op)


def test_conv05_state_machine_matches_the_lifecycle_as_specified():
    assert (lc.QUEUED, lc.BOT, lc.OPEN, lc.ENDED, lc.COMPLETED) == STATES
    assert (lc.ASSIGN, lc.HANDOVER, lc.RETURN_TO_QUEUE, lc.END, lc.MISS, lc.COMPLETE, lc.REOPEN) == OPS
    for state in STATES:
        for op in OPS:
            for has_owner in (False, True):
                expected = as_specified(state, op, has_owner)
                try:
                    got = lc.next_state(state, op, has_owner=has_owner)
                except lc.IllegalTransition as refused:
                    assert isinstance(refused, FailedPrecondition), "a refusal is FAILED_PRECONDITION"
                    assert f"the chat is {state}" in refused.message, refused.message
                    got = None
                assert got == expected, (state, op, has_owner)
            assert lc.allowed(state, op) == (as_specified(state, op, True) is not None), (state, op)


@given(start=st.sampled_from(["queued", "bot"]), ops=st.lists(st.sampled_from(OPS), max_size=30))
def test_conv05_state_machine_invariants(start, ops):
    state, owner = start, False
    for op in ops:
        try:
            new = lc.next_state(state, op, has_owner=owner)
        except lc.IllegalTransition:
            continue
        if op == "assign":
            owner = True
        elif op == "return_to_queue":
            owner = False
        assert not (state in ("ended", "completed") and new in LIVE and op != "reopen"), "back only by a reopen"
        assert not (new == "completed" and not owner), "only a chat with an agent completes"
        assert not (new == "open" and not owner), "an open chat has its agent"
        assert not (state == "bot" and new == "queued" and op != "handover"), "the bot hands over to the queue"
        assert not (op == "miss" and state != "queued"), "only a waiting chat is missed"
        state = new


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
AGENT_OF = {"complete_a": "agent-a", "complete_b": "agent-b"}


class Model:
    """The product as a user would describe it, for one chat and agents a and b."""

    def __init__(self, bot: bool):
        self.state = "bot" if bot else "queued"
        self.owner = ""
        self.ended_events = 0  # chat_ended: once each time the chat leaves the live states

    def leave_live(self, new_state: str) -> None:
        if self.state in LIVE:
            self.ended_events += 1
        self.state = new_state

    def apply(self, op: str):
        """The status code the service must answer with (None for events), updating the model."""
        ok = grpc.StatusCode.OK
        if op in ("assign_a", "assign_b"):
            agent = "agent-a" if op == "assign_a" else "agent-b"
            if self.state in LIVE:
                self.state, self.owner = "open", agent
            return None
        if op == "missed":
            if self.state == "queued":
                self.leave_live("ended")
            return None
        if op == "return_to_queue":
            if self.state == "open":
                self.state, self.owner = "queued", ""
            return None
        if op == "visitor_msg":  # added to a completed chat too, which stays completed
            return grpc.StatusCode.FAILED_PRECONDITION if self.state == "ended" else ok
        if op == "agent_a_msg":
            if self.owner != "agent-a":
                return grpc.StatusCode.PERMISSION_DENIED
            if self.state == "completed":  # the assigned agent's reply reopens it
                self.state = "open"
            return ok if self.state == "open" else grpc.StatusCode.FAILED_PRECONDITION
        if op in ("end_a", "end_visitor"):
            if op == "end_a" and self.owner != "agent-a":
                return grpc.StatusCode.PERMISSION_DENIED
            if self.state not in LIVE:
                return grpc.StatusCode.FAILED_PRECONDITION
            self.leave_live("ended")
            return ok
        if op in ("complete_a", "complete_b"):
            if self.owner != AGENT_OF[op]:
                return grpc.StatusCode.PERMISSION_DENIED
            if self.state not in ("open", "ended"):
                return grpc.StatusCode.FAILED_PRECONDITION
            self.leave_live("completed")
            return ok
        if op == "reopen_a":
            if self.owner != "agent-a":
                return grpc.StatusCode.PERMISSION_DENIED
            if self.state not in ("ended", "completed"):
                return grpc.StatusCode.FAILED_PRECONDITION
            self.state = "open"
            return ok
        if op == "handover":
            if self.state != "bot":
                return grpc.StatusCode.FAILED_PRECONDITION
            self.state = "queued"
            return ok
        raise AssertionError(op)


STATE_OF = {
    "queued": pb.CHAT_STATE_QUEUED,
    "bot": pb.CHAT_STATE_BOT,
    "open": pb.CHAT_STATE_OPEN,
    "ended": pb.CHAT_STATE_ENDED,
    "completed": pb.CHAT_STATE_COMPLETED,
}
DONE = (pb.CHAT_STATE_ENDED, pb.CHAT_STATE_COMPLETED)


def check_step(op: str, before: pb.Chat, after: pb.Chat) -> None:
    """The invariants, on what the service reports before and after one operation."""
    if before.state in DONE and after.state not in DONE:
        assert op in ("reopen_a", "agent_a_msg"), f"{op} brought a finished chat back"
    if after.state == pb.CHAT_STATE_COMPLETED and before.state != pb.CHAT_STATE_COMPLETED:
        assert op in AGENT_OF and AGENT_OF[op] == before.agent_id == after.agent_id, "only the assigned agent completes"
    assert after.state != pb.CHAT_STATE_OPEN or after.agent_id, "an open chat always has its agent"
    assert after.last_seq >= before.last_seq, "sequence numbers never go back"


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
    admin, visitor, agent_a = (
        auth(tenant, "admin", "root"),
        auth(tenant, "visitor", chat.visitor_id),
        auth(tenant, "agent", "agent-a"),
    )
    stub = conv.stub
    current = await stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=admin)
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
        before, current = current, await stub.GetChat(pb.GetChatRequest(chat_id=chat.id), metadata=admin)
        assert (current.state, current.agent_id) == (STATE_OF[model.state], model.owner), (op, ops)
        check_step(op, before, current)

    seqs = []
    async for event in stub.StreamChat(pb.StreamChatRequest(chat_id=chat.id), metadata=admin):
        seqs.append(event.seq)
        if event.seq == current.last_seq:
            break
    assert seqs == list(range(1, current.last_seq + 1)), "every durable event has its own seq, in order"
    listed = [m.seq for m in (await stub.ListMessages(pb.ListMessagesRequest(chat_id=chat.id), metadata=admin)).messages]
    assert listed == sorted(set(listed)) and set(listed) <= set(seqs), "messages in order, each once, all on the stream"
    if model.ended_events:
        await eventually(lambda: _count(conv, tenant, chat.id, model.ended_events), "chat_ended published")
    await asyncio.sleep(0)
    assert len(await conv.events(tenant, "chat_ended", chat.id)) == model.ended_events, ops


async def _count(conv, tenant, chat_id, n):
    return len(await conv.events(tenant, "chat_ended", chat_id)) >= n
