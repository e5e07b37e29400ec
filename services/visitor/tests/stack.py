"""Helpers of the visitor service's tests that need its peers: the visitor service with
crm_bridge and routing (each in this process with a schema of its own, found through
KAIWA_<SVC>_ADDR), or with crm_bridge on a port that nothing answers yet; events
published as another service's relay publishes them."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

import nats
import pytest
from google.protobuf.message import Message
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

from kaiwa_common.config import Settings
from kaiwa_common.events import make_event, subject
from kaiwa_crm.main import make_spec as crm_spec
from kaiwa_routing.main import SPEC as ROUTING_SPEC
from kaiwa_visitor.main import make_spec as visitor_spec
from tests.fixtures import channel_to, running

# Quick background rounds and no caching of routing's rules, so tests see changes at once.
FAST = {"KAIWA_VISITOR_CRM_REFRESH_INTERVAL": "0.2", "KAIWA_VISITOR_RULES_TTL": "0", "KAIWA_CRM_CACHE_TTL": "0"}


@dataclass
class Stack:
    visitors: VisitorServiceStub
    crm: CrmBridgeServiceStub | None
    routing: RoutingServiceStub | None


@contextlib.asynccontextmanager
async def stack(with_crm: bool = True, with_routing: bool = False, crm_addr: str = "", extra: dict | None = None):
    suffix = uuid.uuid4().hex[:8]
    async with contextlib.AsyncExitStack() as exits:
        patch = exits.enter_context(pytest.MonkeyPatch.context())
        for key, value in {**FAST, **(extra or {})}.items():
            patch.setenv(key, value)
        stubs = {}
        peers = {}
        if with_crm:
            peers["crm_bridge"] = crm_spec(schema=f"vcrm_{suffix}", durable=f"vcrm_{suffix}")
        if with_routing:
            peers["routing"] = ROUTING_SPEC
        for name, spec in peers.items():
            runner = await exits.enter_async_context(running(spec, schema=f"v{name[:4]}_{suffix}"))
            patch.setenv(f"KAIWA_{name.upper()}_ADDR", f"127.0.0.1:{runner.port}")
            stubs[name] = await exits.enter_async_context(channel_to(runner))
        if crm_addr:
            patch.setenv("KAIWA_CRM_BRIDGE_ADDR", crm_addr)
        schema = f"vis_{suffix}"
        runner = await exits.enter_async_context(running(visitor_spec(schema=schema), schema=schema))
        channel = await exits.enter_async_context(channel_to(runner))
        yield Stack(
            VisitorServiceStub(channel),
            CrmBridgeServiceStub(stubs["crm_bridge"]) if "crm_bridge" in stubs else None,
            RoutingServiceStub(stubs["routing"]) if "routing" in stubs else None,
        )


async def publish(source: str, tenant: str, payload: Message) -> None:
    """An event on <prefix>.<source>.<type>, as that service's outbox relay sends it."""
    settings = Settings()
    event = make_event(source, tenant, payload)
    nc = await nats.connect(settings.nats_url)
    try:
        await nc.jetstream().publish(subject(settings.subject_prefix, source, event.type), event.SerializeToString())
    finally:
        await nc.drain()
