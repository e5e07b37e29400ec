"""The steady load of the fault suite (test_plat01_fault_suite.py), as real clients drive it.

Visitors start chats (request_id) and watch them live (resuming after the last sequence
seen); agents follow their offers and accept them; messages go both ways (each with a
client_message_id); agents end chats now or with a countdown; some chats go to a
department nobody serves and are missed. A call that can be repeated safely is retried
on UNAVAILABLE / DEADLINE_EXCEEDED with the same key, as a client would; a call that
cannot (EndChat) is retried only after reading that it has not happened. The Ledger
records what was acknowledged, for the checks afterwards.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable

import grpc
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from tests.fixtures import auth, eventually

RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
CALL_TIMEOUT = 10
GIVE_UP_AFTER = 90  # seconds of retrying one call: longer than any fault lasts
RETRY_PAUSE = 0.2
MAX_REOPEN_PAUSE = 1.6  # a stream is opened again at most this long after it broke
COUNTDOWN_SECONDS = 30  # the shortest the API takes
ANSWERED, COUNTDOWN, MISSED = "answered", "countdown", "missed"


@dataclass
class Ledger:
    chats: dict[str, str] = field(default_factory=dict)  # chat id -> ANSWERED / COUNTDOWN / MISSED
    sent: int = 0  # SendMessage requests (one per client_message_id, retries not counted)
    acked: dict[str, tuple[str, int]] = field(default_factory=dict)  # client_message_id -> (chat id, seq)
    refused: Counter = field(default_factory=Counter)  # SendMessage final refusals by code
    accepted: dict[str, set[str]] = field(default_factory=dict)  # chat id -> agents whose AcceptChat said OK
    delivered: dict[str, list[int]] = field(default_factory=dict)  # chat id -> seqs its watcher got, in order
    retries: Counter = field(default_factory=Counter)  # retried calls by status code
    stream_breaks: int = 0


async def retried(ledger: Ledger, call: Callable[[], Awaitable]):
    """The call, repeated unchanged while the service is unreachable."""
    deadline = asyncio.get_running_loop().time() + GIVE_UP_AFTER
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as err:
            if err.code() not in RETRYABLE or asyncio.get_running_loop().time() > deadline:
                raise
            ledger.retries[err.code().name] += 1
            await asyncio.sleep(RETRY_PAUSE)


class Load:
    def __init__(self, suite, tenant: str, sales_id: str, unserved_id: str, agents: dict[str, tuple]):
        self.conversation = ConversationServiceStub(suite.channel("conversation"))
        self.routing = RoutingServiceStub(suite.channel("routing"))
        self.tenant = tenant
        self.sales_id = sales_id
        self.unserved_id = unserved_id
        self.agents = agents  # agent id -> call metadata
        self.ledger = Ledger()
        self.scripts: list[asyncio.Task] = []
        self.countdowns = True  # cleared once no more countdowns are wanted (each holds an agent 30 s)
        self.background: list[asyncio.Task] = []

    async def run(self, stop: asyncio.Event, interval: float, messages: int, in_flight: int) -> None:
        """Agents on their offers, then a new chat every `interval` seconds until `stop`,
        while fewer than `in_flight` chats are under way: a backlog left by a fault is
        worked off instead of growing past what this machine serves. Every eighth chat
        ends with a countdown while `countdowns` is set, every fifth is missed."""
        self.background += [asyncio.create_task(self._agent(agent_id, md)) for agent_id, md in self.agents.items()]
        number = 0
        while not stop.is_set():
            if sum(not task.done() for task in self.scripts) < in_flight:
                kind = COUNTDOWN if number % 8 == 1 and self.countdowns else MISSED if number % 5 == 4 else ANSWERED
                self.scripts.append(asyncio.create_task(self._chat(number, kind, messages)))
                number += 1
            await asyncio.sleep(interval)

    async def finish(self) -> None:
        """Every chat script to its end (a failed script fails the test), and no watcher,
        offer follower or accept failed meanwhile."""
        outcomes = await asyncio.gather(*self.scripts, return_exceptions=True)
        background = [task.exception() for task in self.background if task.done() and not task.cancelled()]
        failed = Counter(repr(error)[:200] for error in outcomes + background if isinstance(error, BaseException))
        assert not failed, f"{sum(failed.values())} clients failed:\n" + "\n".join(f"{n} x {e}" for e, n in failed.most_common(8))

    async def close(self) -> None:
        for task in self.background + self.scripts:
            task.cancel()
        await asyncio.gather(*self.background, *self.scripts, return_exceptions=True)

    async def _chat(self, number: int, kind: str, messages: int) -> None:
        visitor = auth(self.tenant, "visitor", f"visitor-{number}")
        request = conv.StartChatRequest(
            channel=conv.CHANNEL_WEB,
            department_id=self.unserved_id if kind == MISSED else self.sales_id,
            question=f"質問 {number}",
            request_id=f"start-{number}",
        )
        chat = await retried(self.ledger, lambda: self.conversation.StartChat(request, metadata=visitor, timeout=CALL_TIMEOUT))
        self.ledger.chats[chat.id] = kind
        self.background.append(asyncio.create_task(self._watch(chat.id, visitor)))
        # A chat that is missed may end before the visitor's first line gets in: refused then.
        await self._send(chat.id, visitor, f"v{number}-0", "こんにちは", may_be_refused=kind == MISSED)
        if kind == MISSED:
            return
        owners = await eventually(lambda: self.ledger.accepted.get(chat.id), f"chat {number} accepted", timeout=GIVE_UP_AFTER)
        agent = self.agents[next(iter(owners))]
        for n in range(1, messages):
            await self._send(chat.id, agent, f"a{number}-{n}", f"回答 {n}")
            await self._send(chat.id, visitor, f"v{number}-{n}", f"質問 {n}")
        await self._end(chat.id, agent, COUNTDOWN_SECONDS if kind == COUNTDOWN else 0)

    async def _send(self, chat_id: str, md, client_message_id: str, text: str, may_be_refused: bool = False) -> None:
        request = conv.SendMessageRequest(chat_id=chat_id, text=text, client_message_id=client_message_id)
        self.ledger.sent += 1
        try:
            reply = await retried(self.ledger, lambda: self.conversation.SendMessage(request, metadata=md, timeout=CALL_TIMEOUT))
        except grpc.aio.AioRpcError as err:
            if not may_be_refused or err.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            self.ledger.refused[err.code().name] += 1
            return
        self.ledger.acked[client_message_id] = (chat_id, reply.seq)

    async def _end(self, chat_id: str, md, countdown: int) -> None:
        """EndChat is not idempotent (a second countdown would restart it): retried only
        while the chat shows it has not taken effect."""
        request = conv.EndChatRequest(chat_id=chat_id, countdown_seconds=countdown)
        while True:
            current = await retried(
                self.ledger,
                lambda: self.conversation.GetChat(conv.GetChatRequest(chat_id=chat_id), metadata=md, timeout=CALL_TIMEOUT),
            )
            if current.state == conv.CHAT_STATE_ENDED or current.HasField("countdown_ends_at"):
                return
            try:
                await self.conversation.EndChat(request, metadata=md, timeout=CALL_TIMEOUT)
                return
            except grpc.aio.AioRpcError as err:
                if err.code() not in RETRYABLE:
                    raise
                self.ledger.retries[err.code().name] += 1
                await asyncio.sleep(RETRY_PAUSE)

    async def _watch(self, chat_id: str, md) -> None:
        """The chat live, resumed after the last sequence seen whenever the stream breaks."""
        seen = self.ledger.delivered.setdefault(chat_id, [])

        def stream():
            request = conv.StreamChatRequest(chat_id=chat_id, after_seq=seen[-1] if seen else 0)
            return self.conversation.StreamChat(request, metadata=md)

        def on_event(event) -> None:
            if event.seq:
                seen.append(event.seq)

        await self._follow(stream, on_event)

    async def _agent(self, agent_id: str, md) -> None:
        """The agent's offers, followed again whenever the stream breaks; each accepted at once."""

        def on_update(update) -> None:
            if not update.withdrawn and update.offer.chat_id not in self.ledger.accepted:
                self.background.append(asyncio.create_task(self._accept(agent_id, md, update.offer.chat_id)))

        await self._follow(lambda: self.routing.StreamOffers(rt.StreamOffersRequest(), metadata=md), on_update)

    async def _follow(self, open_stream: Callable[[], AsyncIterator], on_item: Callable[[object], None]) -> None:
        """A server stream followed for good: opened again after a break, a little later
        each time while the service stays unreachable."""
        pause = RETRY_PAUSE
        while True:
            try:
                async for item in open_stream():
                    on_item(item)
                    pause = RETRY_PAUSE
            except grpc.aio.AioRpcError as err:
                if err.code() not in RETRYABLE:
                    raise
                self.ledger.stream_breaks += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_REOPEN_PAUSE)

    async def _accept(self, agent_id: str, md, chat_id: str) -> None:
        request = rt.AcceptChatRequest(chat_id=chat_id)
        try:
            await retried(self.ledger, lambda: self.routing.AcceptChat(request, metadata=md, timeout=CALL_TIMEOUT))
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            # Another agent was quicker, or our own earlier try went through unanswered.
            lookup = rt.GetAssignmentRequest(chat_id=chat_id)
            assignment = await retried(self.ledger, lambda: self.routing.GetAssignment(lookup, metadata=md, timeout=CALL_TIMEOUT))
            if assignment.agent_id != agent_id:
                return
        self.ledger.accepted.setdefault(chat_id, set()).add(agent_id)
