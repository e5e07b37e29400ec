"""SendMessage and AcceptChat with many stored chats (issue 14, "how the cost grows").

Ended chats are bulk-loaded with copy_records_to_table into the services' own tables, in
the tenant being measured: conversation's chats (with five messages each) and routing's
chats and released assignments (columns the schemas require; defaults for the rest).
Then, against the running suite:
- SendMessage, 64 in flight over 64 open chats (started by visitors, accepted by an agent);
- AcceptChat: 1,000 chats started by visitors, offered (least loaded) to 200 online agents
  of 5 chats each, then every agent accepts its offers at once: accepted per second.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
from kaiwa.conversation.v1 import conversation_pb2 as conv
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from bench.bench_conversation import closed_loop
from bench.bench_routing import md, set_online, wait_count
from bench.stored_rows import bulk_load

SEND_INFLIGHT, SEND_CALLS = 64, 4000
ACCEPT_AGENTS, ACCEPT_CHATS, ACCEPT_MAX = 200, 1000, 5


class Tenant:
    """Departments and agents made through the running suite, in one tenant."""

    def __init__(self, channels: dict, tenant: str) -> None:
        self.tenant = tenant
        self.routing = RoutingServiceStub(channels["routing"])
        self.conversation = ConversationServiceStub(channels["conversation"])
        self.admin = md(tenant, "admin", "bench")

    async def department(self, max_chats: int, agents: int) -> tuple[str, list[str]]:
        request = rt.UpsertDepartmentRequest(
            name=f"Stored {uuid.uuid4().hex[:6]}",
            strategy=rt.STRATEGY_LEAST_LOADED,
            accept_timeout_seconds=600,
            max_wait_seconds=3600,
        )
        department = await self.routing.UpsertDepartment(request, metadata=self.admin)
        ids = []
        for i in range(agents):
            email = f"stored-{uuid.uuid4().hex[:8]}-{i}@bench.example"
            request = rt.UpsertAgentRequest(email=email, name=f"Stored {i}", department_ids=[department.id], max_chats=max_chats)
            ids.append((await self.routing.UpsertAgent(request, metadata=self.admin)).id)
        await asyncio.gather(*(set_online(self.routing, self.tenant, a) for a in ids))
        return department.id, ids

    async def start_chats(self, department_id: str, count: int) -> list[str]:
        async def start() -> str:
            request = conv.StartChatRequest(channel=conv.CHANNEL_WEB, department_id=department_id, question="help")
            chat = await self.conversation.StartChat(request, metadata=md(self.tenant, "visitor", str(uuid.uuid4())))
            return chat.id

        chats = []
        for first in range(0, count, 50):
            chats += await asyncio.gather(*(start() for _ in range(min(50, count - first))))
        return chats


async def send_messages(tenant: Tenant, db) -> dict:
    department, (agent,) = await tenant.department(max_chats=SEND_INFLIGHT, agents=1)
    chats = await tenant.start_chats(department, SEND_INFLIGHT)
    meta = md(tenant.tenant, "agent", agent)
    offered = "SELECT count(*) FROM routing.offers WHERE tenant = $1 AND chat_id = ANY($2::uuid[])"
    await wait_count(db, offered, tenant.tenant, SEND_INFLIGHT, more_args=(chats,))
    for chat_id in chats:
        await tenant.routing.AcceptChat(rt.AcceptChatRequest(chat_id=chat_id), metadata=meta)
    open_chats = "SELECT count(*) FROM conversation.chats WHERE tenant = $1 AND id = ANY($2::uuid[]) AND state = 'open'"
    await wait_count(db, open_chats, tenant.tenant, SEND_INFLIGHT, more_args=(chats,))

    def send(w: int):
        request = conv.SendMessageRequest(chat_id=chats[w], text="How can I help you today?")
        return tenant.conversation.SendMessage(request, metadata=meta)

    result = await closed_loop(send, SEND_INFLIGHT, SEND_CALLS)
    for chat_id in chats:
        await tenant.conversation.EndChat(conv.EndChatRequest(chat_id=chat_id), metadata=meta)
    return result


async def accept_chats(tenant: Tenant, db) -> dict:
    department, agents = await tenant.department(max_chats=ACCEPT_MAX, agents=ACCEPT_AGENTS)
    await tenant.start_chats(department, ACCEPT_CHATS)
    offered = (
        "SELECT count(*) FROM routing.offers o JOIN routing.chats c ON c.tenant = o.tenant AND c.id = o.chat_id "
        "WHERE o.tenant = $1 AND c.department_id = $2::uuid"
    )
    await wait_count(db, offered, tenant.tenant, ACCEPT_CHATS, more_args=(department,))

    async def agent_accepts(agent_id: str) -> int:
        meta = md(tenant.tenant, "agent", agent_id)
        offers = (await tenant.routing.ListOffers(rt.ListOffersRequest(), metadata=meta)).offers
        for offer in offers:
            await tenant.routing.AcceptChat(rt.AcceptChatRequest(chat_id=offer.chat_id), metadata=meta)
        return len(offers)

    began = time.perf_counter()
    accepted = sum(await asyncio.gather(*(agent_accepts(a) for a in agents)))
    return {"rps": accepted / (time.perf_counter() - began), "accepted": accepted}


async def measure_baselines() -> dict:
    from bench import baselines

    return {
        "echo_insert": {"inflight": SEND_INFLIGHT, **await baselines.echo("echo-insert", SEND_INFLIGHT, SEND_CALLS)},
        "echo_assignment": {"inflight": ACCEPT_AGENTS, **await baselines.echo_assignment(ACCEPT_AGENTS, ACCEPT_CHATS * 3)},
        "copy_records_to_table": await baselines.copy_rate(100_000),
    }


async def main() -> dict:
    import os

    from tests.e2e.suite import Suite

    steps = [int(n) for n in os.environ.get("KAIWA_BENCH_STORED", "0,10000,100000").split(",")]
    out: dict = {"steps": []}
    async with Suite.start() as suite:
        database_url = suite.env["KAIWA_DATABASE_URL"]
        os.environ["KAIWA_DATABASE_URL"] = database_url  # baselines: the same database
        tenant = Tenant({name: suite.channel(name) for name in ("routing", "conversation")}, f"stored-{uuid.uuid4().hex[:8]}")
        db = await asyncpg.connect(database_url)
        try:
            department, (agent,) = await tenant.department(max_chats=1, agents=1)
            stored = 0
            for target in steps:
                load = (
                    await bulk_load(database_url, tenant.tenant, department, agent, target - stored) if target > stored else None
                )
                stored = target
                step = {"stored_chats": stored, "bulk_load": load}
                step["send"] = await send_messages(tenant, db)
                step["accept"] = await accept_chats(tenant, db)
                out["steps"].append(step)
                print(
                    f"  {stored:>7} stored chats: SendMessage {step['send']['rps']:.0f}/s (p99 {step['send']['p99']:.1f} ms, "
                    f"{SEND_INFLIGHT} in flight), AcceptChat {step['accept']['rps']:.0f}/s"
                    + (f"; bulk load {load['rows_per_s']:.0f} rows/s" if load else "")
                )
        finally:
            await db.close()
        out["baselines"] = await measure_baselines()
        print(f"  baselines: {json.dumps(out['baselines'])}")
        out["service_error_lines"] = suite.error_lines()[:20]
        suite.allowed_errors.append(".*")  # reported above; a benchmark reports, it does not fail
    return out
