"""Helpers for the conversation tests: the service harness and routing events.

Routing's events are produced the way the routing service produces them: a real Event
envelope published on the real JetStream subject <prefix>.routing.<type>.

Every service started here gets a subject prefix of its own (its own streams): a new
durable consumer delivers everything its streams hold, and events of other tests' chats
would only be dead-lettered (which the suite counts as an error).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import AsyncIterator

import pytest

from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.events.v1.envelope_pb2 import Event
from kaiwa.events.v1.routing_pb2 import ChatAssigned
from nats.js.api import ConsumerConfig, DeliverPolicy

from kaiwa_common.app import ServiceRunner, ServiceSpec
from kaiwa_common.config import Settings
from kaiwa_common.events import make_event, subject
from tests.fixtures import auth, eventually  # noqa: F401 (re-exported for the tests here)

# 30-90 s countdowns run 50x faster here: 30 s -> 0.6 s.
COUNTDOWN_SCALE = 0.02


def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def service(spec: ServiceSpec, schema: str, prefix: str, routing_address: str = "",
                  stop_grace: float = 1) -> AsyncIterator[ServiceRunner]:
    """A service in this process on a free port, on the bus `prefix`; with `routing_address`,
    its gRPC channel to routing goes there (the channel is opened now, while the address is
    in the environment, so nothing else in the test session sees that setting)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAIWA_SUBJECT_PREFIX", prefix)
        if routing_address:
            patch.setenv("KAIWA_ROUTING_ADDR", routing_address)
        runner = await ServiceRunner(spec, Settings(), port=0, schema=schema).start()
        if routing_address:
            runner.ctx.channel("routing")
    try:
        yield runner
    finally:
        await runner.stop(grace=stop_grace)


class Harness:
    def __init__(self, runner, stub: ConversationServiceStub):
        self.runner = runner
        self.stub = stub
        self.ctx = runner.ctx

    async def routing_event(self, tenant: str, payload) -> Event:
        """Publish a routing event exactly as the routing service's relay does."""
        event = make_event("routing", tenant, payload)
        prefix = self.ctx.settings.subject_prefix
        await self.ctx.js.publish(subject(prefix, "routing", event.type), event.SerializeToString(),
                                  headers={"Nats-Msg-Id": event.id})
        return event

    async def events(self, tenant: str, event_type: str, chat_id: str | None = None) -> list[Event]:
        """Conversation events of this tenant (and chat) that reached JetStream so far."""
        prefix = self.ctx.settings.subject_prefix
        sub = await self.ctx.js.pull_subscribe(
            subject(prefix, "conversation", event_type), durable=None,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=5.0))
        found: list[Event] = []
        try:
            while True:
                try:
                    batch = await sub.fetch(256, timeout=0.3)
                except asyncio.TimeoutError:
                    break
                for msg in batch:
                    event = Event.FromString(msg.data)
                    payload = getattr(event, event.type)
                    if event.tenant == tenant and (chat_id is None or payload.chat_id == chat_id):
                        found.append(event)
                    await msg.ack()
                if len(batch) < 256:
                    break
        finally:
            await sub.unsubscribe()
        return found

    async def start(self, tenant: str, visitor: str | None = None, **fields) -> pb.Chat:
        visitor = visitor or f"v-{uuid.uuid4().hex[:8]}"
        fields.setdefault("channel", pb.CHANNEL_WEB)
        fields.setdefault("department_id", "sales")
        return await self.stub.StartChat(pb.StartChatRequest(**fields), metadata=auth(tenant, "visitor", visitor))

    async def open_chat(self, tenant: str, agent: str = "agent-1", agent_name: str = "Kawane Taro",
                        **fields) -> pb.Chat:
        """A chat started by a visitor and accepted by `agent` (through routing's event)."""
        chat = await self.start(tenant, **fields)
        await self.routing_event(tenant, ChatAssigned(chat_id=chat.id, agent_id=agent, agent_name=agent_name,
                                                      how="accepted"))
        return await self.wait_state(tenant, chat.id, pb.CHAT_STATE_OPEN)

    async def wait_state(self, tenant: str, chat_id: str, state: int, attempts: int = 200) -> pb.Chat:
        chat = None
        for _ in range(attempts):
            chat = await self.stub.GetChat(pb.GetChatRequest(chat_id=chat_id), metadata=auth(tenant, "admin", "root"))
            if chat.state == state:
                return chat
            await asyncio.sleep(0.05)
        raise AssertionError(f"chat {chat_id} never reached {pb.ChatState.Name(state)} (is {pb.ChatState.Name(chat.state)})")




def visitor_of(chat: pb.Chat, tenant: str):
    return auth(tenant, "visitor", chat.visitor_id)


