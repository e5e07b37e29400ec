"""Helpers of the CRM bridge's tests: the service in this process with a schema, durable
consumers and (optionally) a conversation service of its own; events published as the
producing services' relays publish them; the Zoho stand-in connected to a tenant."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

import pytest
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub
from kaiwa.events.v1.conversation_pb2 import ChatEnded
from kaiwa.events.v1.envelope_pb2 import Event

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from kaiwa_common.events import make_event, subject
from kaiwa_crm.main import make_spec
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
