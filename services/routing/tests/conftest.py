"""Routing's test services: routing in-process next to the real conversation service, the
real bus, and the database (kit.py has the helpers tests call).

Most tests publish conversation events themselves, as real Event envelopes on
kaiwa.conversation.<type> with Nats-Msg-Id, as the conversation service's relay does;
routing's own events are read back from kaiwa.routing.> on the same bus. The conversation
service runs too (its own schema, same bus): routing asks it whether a chat it has not
heard of exists (arrivals.py), and tests start chats through its StartChat. Its consumer
of routing's events is left out: it would park in its dead-letter table every routing
event of the chats routing's tests publish straight on the bus, which it never started.
"""

from __future__ import annotations

import dataclasses
import os
import uuid

import asyncpg
import nats
import pytest
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.events.v1.envelope_pb2 import Event
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from kaiwa_common.devservers import free_port
from kaiwa_conversation.main import make_spec as conversation_spec
from kaiwa_routing.main import SPEC
from services.routing.tests.kit import Events, Kit
from tests.fixtures import channel_to, running

# Queue positions are announced at most once per interval; short here so tests stay quick.
os.environ.setdefault("KAIWA_ROUTING_POSITION_INTERVAL", "0.2")


@pytest.fixture(scope="module")
async def conversation():
    """The conversation service (runner, stub), or None in a module that overrides this
    fixture to test routing with conversation out of reach."""
    schema = f"conv_{uuid.uuid4().hex[:8]}"
    spec = dataclasses.replace(conversation_spec(schema=schema), consumers=lambda ctx: [])
    async with running(spec, schema=schema) as runner:
        async with channel_to(runner) as channel:
            yield runner, ConversationServiceStub(channel)


@pytest.fixture(scope="module")
async def routing_service(conversation):
    """Routing, wired to this module's conversation service and back. The channels are
    opened while the addresses are in the environment, so no other service of the test
    session sees them."""
    peer = conversation[0] if conversation is not None else None
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KAIWA_CONVERSATION_ADDR", f"127.0.0.1:{peer.port}" if peer else nobody)
        runner = await ServiceRunner(SPEC, Settings(), port=0).start()
        runner.ctx.channel("conversation")
    if peer is not None:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("KAIWA_ROUTING_ADDR", f"127.0.0.1:{runner.port}")
            peer.ctx.channel("routing")
    try:
        async with channel_to(runner) as channel:
            yield runner, RoutingServiceStub(channel)
    finally:
        await runner.stop(grace=1)


@pytest.fixture(scope="module")
async def bus():
    nc = await nats.connect(Settings().nats_url)
    yield nc
    await nc.drain()


@pytest.fixture
async def kit(routing_service, conversation, bus, tenant) -> Kit:
    return Kit(routing_service[1], bus, tenant, conversation[1] if conversation is not None else None)


@pytest.fixture
async def db():
    """A direct connection to routing's schema, for what only the database can show (keys,
    locks) or hold still (a lock that keeps a race open)."""
    conn = await asyncpg.connect(os.environ["KAIWA_DATABASE_URL"], server_settings={"search_path": "routing"})
    yield conn
    await conn.close()


@pytest.fixture
async def events(bus, tenant):
    collected = Events(tenant)

    async def on_message(msg):
        event = Event.FromString(msg.data)
        if event.tenant == tenant:
            collected.items.append(event)

    sub = await bus.subscribe(f"{Settings().subject_prefix}.routing.>", cb=on_message)
    yield collected
    await sub.unsubscribe()
