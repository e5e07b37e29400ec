"""Helpers of the CRM bridge's tests: the service in this process with a schema, durable
consumers and (optionally) a conversation service of its own; events published as the
producing services' relays publish them; the Zoho stand-in connected to a tenant."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

import pytest
from kaiwa.conversation.v1 import conversation_pb2 as conv_pb
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub
from kaiwa.events.v1.conversation_pb2 import ChatEnded
from kaiwa.events.v1.envelope_pb2 import Event
from kaiwa.events.v1.routing_pb2 import ChatAssigned
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from kaiwa_common.events import make_event, subject
from kaiwa_conversation.main import make_spec as conversation_spec
from kaiwa_crm.main import make_spec
from kaiwa_routing.main import SPEC as ROUTING_SPEC
from kaiwa_visitor.main import SPEC as VISITOR_SPEC
from services.crm_bridge.tests.zoho_standin import ZohoStandIn
from tests.fixtures import auth, channel_to, running

# Quick retries, so that tests of outages and rate limits finish in seconds.
FAST = {
    "KAIWA_CRM_WRITES_POLL": "0.1",
    "KAIWA_CRM_WRITES_MAX_BACKOFF": "0.5",
    "KAIWA_CRM_ZOHO_TIMEOUT": "2",
    "KAIWA_CRM_ZOHO_MAX_INLINE_WAIT": "0.5",
    "KAIWA_CRM_CACHE_TTL": "0",
}


def admin(tenant: str, sub: str = "admin-1"):
    return auth(tenant, "admin", sub)


def agent(tenant: str, sub: str | None = None):
    return auth(tenant, "agent", sub or str(uuid.uuid4()))


@dataclass
class Crm:
    runner: ServiceRunner
    stub: CrmBridgeServiceStub

    async def publish(self, source: str, tenant: str, payload) -> Event:
        """An event exactly as the producing service's outbox relay publishes it."""
        event = make_event(source, tenant, payload)
        await self.runner.ctx.js.publish(
            subject(Settings().subject_prefix, source, event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.id}
        )
        return event

    async def processed(self, event: Event) -> bool:
        return bool(await self.runner.ctx.pool.fetchval("SELECT count(*) FROM processed_events WHERE event_id = $1", event.id))


AGENT, AGENT_NAME = "agent-7", "Kawane Taro"


@dataclass
class Stack:
    """The CRM bridge with the real conversation (and visitor) services next to it."""

    crm: Crm
    conv: ConversationServiceStub
    visitor: VisitorServiceStub | None
    routing: RoutingServiceStub | None = None

    async def ended_chat(
        self, tenant: str, email: str, name: str = "佐藤 一郎", visitor_id: str = "", form: dict[str, str] | None = None
    ) -> conv_pb.Chat:
        """A web chat (with the widget's pre-chat `form`): started by a visitor, accepted by
        AGENT, two messages, ended by the agent."""
        visitor = auth(tenant, "visitor", visitor_id or str(uuid.uuid4()))
        chat = await self.conv.StartChat(
            conv_pb.StartChatRequest(
                channel=conv_pb.CHANNEL_WEB,
                question="見積もりをお願いします",
                visitor_name=name,
                visitor_email=email,
                fields=form or {},
            ),
            metadata=visitor,
        )
        assigned = ChatAssigned(chat_id=chat.id, agent_id=AGENT, agent_name=AGENT_NAME, how="accepted")
        await self.crm.publish("routing", tenant, assigned)
        agent = auth(tenant, "agent", AGENT)
        for _ in range(200):
            if (
                await self.conv.GetChat(conv_pb.GetChatRequest(chat_id=chat.id), metadata=agent)
            ).state == conv_pb.CHAT_STATE_OPEN:
                break
            await asyncio.sleep(0.05)
        await self.conv.SendMessage(
            conv_pb.SendMessageRequest(chat_id=chat.id, text="Plan B の見積もりが欲しいです"), metadata=visitor
        )
        await self.conv.SendMessage(
            conv_pb.SendMessageRequest(chat_id=chat.id, text="Thanks, sending the quote today."), metadata=agent
        )
        return await self.conv.EndChat(conv_pb.EndChatRequest(chat_id=chat.id), metadata=agent)


@contextlib.asynccontextmanager
async def stack(with_visitor: bool = False, with_routing: bool = False, env: dict[str, str] | None = None):
    """conversation (and visitor, routing) in this process, each with a schema of its own,
    finding each other through KAIWA_<SVC>_ADDR; then the CRM bridge."""
    suffix = uuid.uuid4().hex[:8]
    async with contextlib.AsyncExitStack() as exits:
        patch = exits.enter_context(pytest.MonkeyPatch.context())
        peers = {"conversation": conversation_spec(schema=f"crm_conv_{suffix}")}
        if with_visitor:
            peers["visitor"] = VISITOR_SPEC
        if with_routing:
            peers["routing"] = ROUTING_SPEC
        runners = {}
        for name, spec in peers.items():
            schema = f"crm_{name[:4]}_{suffix}"
            runners[name] = await exits.enter_async_context(running(spec, schema=schema))
            patch.setenv(f"KAIWA_{name.upper()}_ADDR", f"127.0.0.1:{runners[name].port}")
        crm = await exits.enter_async_context(crm_service({**FAST, **(env or {})}))
        stubs = {name: await exits.enter_async_context(channel_to(runner)) for name, runner in runners.items()}
        yield Stack(
            crm,
            ConversationServiceStub(stubs["conversation"]),
            VisitorServiceStub(stubs["visitor"]) if with_visitor else None,
            RoutingServiceStub(stubs["routing"]) if with_routing else None,
        )


@contextlib.asynccontextmanager
async def crm_service(env: dict[str, str] | None = None):
    name = f"crm_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        async with running(make_spec(schema=name, durable=name), schema=name) as runner, channel_to(runner) as channel:
            yield Crm(runner, CrmBridgeServiceStub(channel))


def zoho_env(standin: ZohoStandIn) -> dict[str, str]:
    return {**FAST, "KAIWA_CRM_ZOHO_ACCOUNTS_URL": standin.url, "KAIWA_CRM_ZOHO_API_URL": standin.url}


async def connect_zoho(stub: CrmBridgeServiceStub, tenant: str, standin: ZohoStandIn) -> pb.Connection:
    refresh_token = next(iter(standin.refresh_tokens))
    client_id, client_secret = standin.client
    return await stub.ConnectCrm(
        pb.ConnectCrmRequest(
            kind=pb.CRM_KIND_ZOHO,
            admin_email="boss@zylker.example",
            integration_key=refresh_token,
            client_id=client_id,
            client_secret=client_secret,
            data_center="jp",
        ),
        metadata=admin(tenant),
    )


def missed_chat(email: str, name: str = "佐藤 一郎", question: str = "料金を教えてください") -> ChatEnded:
    """A chat nobody took (conversation's chat_ended with reason "missed")."""
    return ChatEnded(
        chat_id=str(uuid.uuid4()),
        visitor_id=str(uuid.uuid4()),
        visitor_email=email,
        visitor_name=name,
        question=question,
        reason="missed",
        missed_reason="no_agent_accepted",
        waited_seconds=95,
        channel="CHANNEL_WEB",
    )
