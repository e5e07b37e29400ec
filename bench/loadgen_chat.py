"""One chat of the mixed load, both sides: the visitor starts it (and, in the queued
department, reads the estimated wait shown), the agent who accepted its offer answers,
10 to 20 messages alternate with typing before each, some agent drafts are rewritten by
ai_assist first, some chats are transferred half way, and the agent ends it, some with a
30-second countdown whose end the visitor's watcher must see."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid

import grpc
from kaiwa.ai_assist.v1 import ai_assist_pb2 as ai
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.routing.v1 import routing_pb2 as rt

COUNTDOWN_SECONDS = 30


class Watcher:
    """A StreamChat follower: when each tagged message arrived, and the chat's latest state."""

    def __init__(self, load, chat_id: str, metadata) -> None:
        self.arrived: dict[str, float] = {}
        self.state, self.agent_id = conv.CHAT_STATE_QUEUED, ""
        self.changed = asyncio.Event()
        stream = load.conversation.StreamChat(conv.StreamChatRequest(chat_id=chat_id), metadata=metadata)
        self.task = asyncio.create_task(self._follow(stream))

    async def _follow(self, stream) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for event in stream:
                if event.HasField("message") and event.message.text.startswith("["):
                    self.arrived.setdefault(event.message.text[1 : event.message.text.index("]")], time.perf_counter())
                elif event.HasField("chat"):
                    self.state, self.agent_id = event.chat.state, event.chat.agent_id
                    self.changed.set()

    async def until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    def stop(self) -> None:
        self.task.cancel()


async def run_chat(load, department: str, queued: bool) -> None:
    rec, rng = load.recorder, random.Random()
    visitor = load.visitor_metadata(str(uuid.uuid4()))
    began = time.perf_counter()
    request = conv.StartChatRequest(channel=conv.CHANNEL_WEB, department_id=department, question="Do you ship to Osaka?")
    chat = await rec.timed("StartChat", load.conversation.StartChat(request, metadata=visitor))
    rec.counts["chats started"] += 1
    assignment = load.agents.assignment(chat.id)
    watcher = Watcher(load, chat.id, visitor)
    try:
        shown = await show_queue_position(load, chat.id, visitor) if queued else None
        agent_id, offered_at, assigned_at = await asyncio.wait_for(assignment, load.config["assign_timeout"])
        rec.latencies["StartChat to offer"].append(offered_at - began)
        if shown is not None:
            # Accepted before the estimate came back: it was shown for no wait at all.
            rec.queue_waits.append((shown[0], max(0.0, assigned_at - shown[1])))
        if not await watcher.until(lambda w: w.state == conv.CHAT_STATE_OPEN, 30):
            rec.counts["chats never open"] += 1
            return
        await converse(
            load, chat.id, visitor, agent_id, watcher, transfer=not queued and rng.random() < load.config["transfer_share"]
        )
    except (grpc.aio.AioRpcError, asyncio.TimeoutError) as error:
        rec.counts[f"chats abandoned ({type(error).__name__})"] += 1
    finally:
        watcher.stop()


async def show_queue_position(load, chat_id: str, visitor) -> tuple[int, float] | None:
    """The first estimate GetQueuePosition shows while the chat waits (None: it never waited)."""
    deadline = time.monotonic() + load.config["assign_timeout"]
    while time.monotonic() < deadline:
        try:
            position = await load.recorder.timed(
                "GetQueuePosition", load.routing.GetQueuePosition(rt.GetQueuePositionRequest(chat_id=chat_id), metadata=visitor)
            )
        except grpc.aio.AioRpcError as error:
            # routing has not taken chat_started in yet: NOT_FOUND, or UNAVAILABLE when it
            # gave up waiting for it
            if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                raise
            await asyncio.sleep(0.2)
            continue
        return (position.estimated_wait_seconds, time.perf_counter()) if position.position > 0 else None
    return None


async def converse(load, chat_id: str, visitor, agent_id: str, watcher: Watcher, transfer: bool) -> None:
    rec, rng = load.recorder, random.Random()
    agent = load.agent_metadata(agent_id)
    agent_watcher = Watcher(load, chat_id, agent)
    messages = rng.randint(10, 20)
    try:
        for i in range(messages):
            if transfer and i == messages // 2:
                new_agent_id, agent = await transfer_chat(load, chat_id, agent_id, agent, watcher)
                if new_agent_id != agent_id:
                    agent_id = new_agent_id
                    agent_watcher.stop()
                    agent_watcher = Watcher(load, chat_id, agent)
            from_agent = i % 2 == 1
            sender, reader = (agent, watcher) if from_agent else (visitor, agent_watcher)
            await rec.timed(
                "NotifyTyping",
                load.conversation.NotifyTyping(conv.NotifyTypingRequest(chat_id=chat_id, typing=True), metadata=sender),
            )
            await asyncio.sleep(load.config["message_interval"] * rng.uniform(0.5, 1.5))
            text = "Yes, we ship to Osaka within two days." if from_agent else "Do you ship to Osaka?"
            if from_agent and rng.random() < load.config["rewrite_share"]:
                request = ai.RewriteRequest(text=text, tone=ai.TONE_POLITE, chat_id=chat_id)
                text = (await rec.timed("Rewrite", load.ai.Rewrite(request, metadata=agent))).text
            key = uuid.uuid4().hex[:12]
            sent = time.perf_counter()
            request = conv.SendMessageRequest(chat_id=chat_id, text=f"[{key}] {text}")
            await rec.timed("SendMessage", load.conversation.SendMessage(request, metadata=sender))
            rec.counts["messages sent"] += 1
            load.sent.append((reader, key, sent))
        await end_chat(load, chat_id, agent, watcher, countdown=rng.random() < load.config["countdown_share"])
    finally:
        agent_watcher.stop()


async def transfer_chat(load, chat_id: str, agent_id: str, agent, watcher: Watcher):
    """To another agent of the main department, who accepts; the chat's new owner after."""
    rec = load.recorder
    target_id = load.agents.another_main_agent(agent_id)
    request = rt.TransferChatRequest(chat_id=chat_id, to_agent_email=load.agents.emails[target_id], note="billing question")
    try:
        transfer = await rec.timed("TransferChat", load.routing.TransferChat(request, metadata=agent))
        answer = rt.AnswerTransferRequest(transfer_id=transfer.id, accept=True)
        await rec.timed("AnswerTransfer", load.routing.AnswerTransfer(answer, metadata=load.agent_metadata(target_id)))
    except grpc.aio.AioRpcError:
        rec.counts["transfers refused"] += 1
        return agent_id, agent
    if not await watcher.until(lambda w: w.agent_id == target_id, 30):
        rec.counts["transfers not seen by conversation"] += 1
        return agent_id, agent
    rec.counts["transfers"] += 1
    return target_id, load.agent_metadata(target_id)


async def end_chat(load, chat_id: str, agent, watcher: Watcher, countdown: bool) -> None:
    rec = load.recorder
    request = conv.EndChatRequest(chat_id=chat_id, countdown_seconds=COUNTDOWN_SECONDS if countdown else 0)
    await rec.timed("EndChat", load.conversation.EndChat(request, metadata=agent))
    if not countdown:
        rec.counts["chats ended"] += 1
        return
    rec.counts["countdowns started"] += 1
    if await watcher.until(lambda w: w.state in (conv.CHAT_STATE_ENDED, conv.CHAT_STATE_COMPLETED), COUNTDOWN_SECONDS + 30):
        rec.counts["countdowns ended"] += 1
        rec.counts["chats ended"] += 1
    else:
        rec.counts["countdowns not seen ending"] += 1
