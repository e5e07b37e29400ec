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

import grpc
import pytest

from kaiwa.conversation.v1 import conversation_pb2 as pb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.routing.v1 import routing_pb2 as rpb
from kaiwa.events.v1.envelope_pb2 import Event
from kaiwa.events.v1.routing_pb2 import ChatAssigned
from nats.js.api import ConsumerConfig, DeliverPolicy

from kaiwa_common.app import ServiceRunner, ServiceSpec
from kaiwa_common.config import Settings
from kaiwa_common.devservers import free_port
from kaiwa_common.events import make_event, subject
from tests.fixtures import auth, channel_to, eventually

# 30-90 s countdowns run 50x faster here: 30 s -> 0.6 s.
COUNTDOWN_SCALE = 0.02
# How long conversation waits for a routing event that routing says is on its way (ROUT-02).
SETTLE_SECONDS = 1.5


def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def service(
    spec: ServiceSpec, schema: str, prefix: str, peers: dict[str, str] | None = None, port: int = 0, stop_grace: float = 1
) -> AsyncIterator[ServiceRunner]:
    """A service in this process on `port` (0: any free one), on the bus `prefix`; `peers`
    (service -> host:port) says where its gRPC channels to other services go. The channels
    are opened now, while the addresses are in the environment, so nothing else in the
    test session sees those settings."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAIWA_SUBJECT_PREFIX", prefix)
        for peer, address in (peers or {}).items():
            patch.setenv(f"KAIWA_{peer.upper()}_ADDR", address)
        runner = await ServiceRunner(spec, Settings(), port=port, schema=schema).start()
        for peer in peers or {}:
            runner.ctx.channel(peer)
    try:
        yield runner
    finally:
        await runner.stop(grace=stop_grace)


@contextlib.asynccontextmanager
async def forwarding(js, source: str, from_prefix: str, to_prefix: str) -> AsyncIterator[None]:
    """Copy `source`'s events from one bus to another (same envelope, same Nats-Msg-Id), as
    if both services shared a bus in that one direction."""

    async def forward(msg) -> None:
        event_type = msg.subject.rsplit(".", 1)[-1]
        await js.publish(
            subject(to_prefix, source, event_type), msg.data, headers={"Nats-Msg-Id": (msg.headers or {}).get("Nats-Msg-Id", "")}
        )

    subscription = await js.subscribe(
        f"{from_prefix}.{source}.>", cb=forward, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    try:
        yield
    finally:
        await subscription.unsubscribe()


@contextlib.asynccontextmanager
async def conversation_with_routing(conversation_spec: ServiceSpec, schema: str) -> AsyncIterator["Harness"]:
    """Conversation and a real routing service, each on a bus of its own, wired by gRPC
    both ways. Conversation's events are forwarded to routing (routing knows every chat,
    as in production); routing's events are not: the tests publish routing's events to
    conversation themselves (Harness.routing_event), so routing's own announcements never
    race them, and an assignment made in routing reaches conversation only when a test
    says so (ROUT-02: the event "has not arrived yet")."""
    from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

    from kaiwa_routing.main import SPEC as ROUTING

    conv_prefix, routing_prefix, routing_port = new_prefix(), new_prefix(), free_port()
    async with service(conversation_spec, schema, conv_prefix, peers={"routing": f"127.0.0.1:{routing_port}"}) as conversation:
        async with service(
            ROUTING, f"{schema}_rt", routing_prefix, port=routing_port, peers={"conversation": f"127.0.0.1:{conversation.port}"}
        ) as routing:
            async with forwarding(conversation.ctx.js, "conversation", conv_prefix, routing_prefix):
                async with channel_to(conversation) as conv_channel, channel_to(routing) as routing_channel:
                    yield Harness(
                        conversation, ConversationServiceStub(conv_channel), routing, RoutingServiceStub(routing_channel)
                    )


class Harness:
    def __init__(self, runner, stub: ConversationServiceStub, routing=None, routing_stub=None):
        self.runner = runner
        self.stub = stub
        self.ctx = runner.ctx
        self.routing = routing  # the routing service beside it (its own bus)
        self.routing_stub = routing_stub

    async def department(self, tenant: str, name: str = "Sales") -> str:
        """A department of the tenant, created in routing by an admin."""
        department = await self.routing_stub.UpsertDepartment(
            rpb.UpsertDepartmentRequest(name=name), metadata=auth(tenant, "admin", "root")
        )
        return department.id

    async def routing_knows(self, tenant: str, chat_id: str) -> None:
        """Wait until routing has applied the chat's chat_started."""

        async def known():
            try:
                await self.routing_stub.GetAssignment(
                    rpb.GetAssignmentRequest(chat_id=chat_id), metadata=auth(tenant, "admin", "root"), timeout=0.5
                )
                return True
            except grpc.aio.AioRpcError:
                return False

        await eventually(known, "routing knows the chat")

    async def routing_event(self, tenant: str, payload) -> Event:
        """Publish a routing event exactly as the routing service's relay does."""
        event = make_event("routing", tenant, payload)
        prefix = self.ctx.settings.subject_prefix
        await self.ctx.js.publish(
            subject(prefix, "routing", event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.id}
        )
        return event

    async def events(self, tenant: str, event_type: str, chat_id: str | None = None) -> list[Event]:
        """Conversation events of this tenant (and chat) that reached JetStream so far."""
        prefix = self.ctx.settings.subject_prefix
        sub = await self.ctx.js.pull_subscribe(
            subject(prefix, "conversation", event_type),
            durable=None,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=5.0),
        )
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
        return await self.stub.StartChat(pb.StartChatRequest(**fields), metadata=auth(tenant, "visitor", visitor))

    async def open_chat(self, tenant: str, agent: str = "agent-1", agent_name: str = "Kawane Taro", **fields) -> pb.Chat:
        """A chat started by a visitor and accepted by `agent` (through routing's event)."""
        chat = await self.start(tenant, **fields)
        await self.routing_event(tenant, ChatAssigned(chat_id=chat.id, agent_id=agent, agent_name=agent_name, how="accepted"))
        return await self.wait_state(tenant, chat.id, pb.CHAT_STATE_OPEN)

    async def wait_state(self, tenant: str, chat_id: str, state: int, timeout: float = 10.0) -> pb.Chat:
        """The chat once it has reached `state` (routing's events and timers act a moment later)."""

        async def reached():
            chat = await self.stub.GetChat(pb.GetChatRequest(chat_id=chat_id), metadata=auth(tenant, "admin", "root"))
            return chat if chat.state == state else None

        return await eventually(reached, f"chat {chat_id} reaches {pb.ChatState.Name(state)}", timeout=timeout)


def visitor_of(chat: pb.Chat, tenant: str):
    return auth(tenant, "visitor", chat.visitor_id)
