"""Issue 4 benchmark: assignments per second with one and two routing replicas, next to a
same-run baseline of the bare SQL one assignment needs; and the time from chat started
to offer delivered.

(a) baseline: a conditional UPDATE of the agent's open chats plus an INSERT of the
    assignment, in one transaction, straight through asyncpg (pool of 20), 200 in flight;
(b) AcceptChat with 1,000 chats waiting, already offered (least loaded) to 200 online
    agents of 5 chats each, all agents accepting at once, through 1 and 2 replicas;
(c) drain: 1,000 chats waiting and 200 agents who come online at once and accept what
    their offer stream brings, until every chat is assigned, through 1 and 2 replicas;
(d) offer latency: chat_started published on the bus -> the offer arriving on the agent's
    StreamOffers, 500 chats at 50/s, p50/p99.

Every routing replica runs in a process of its own; this process is only the client
(and stands in for the conversation service on the bus). Needs KAIWA_DATABASE_URL and
KAIWA_NATS_URL (`make bench` starts both).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid

import asyncpg
import grpc
import nats
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kaiwa.events.v1 import conversation_pb2 as conv
from kaiwa.routing.v1 import routing_pb2 as pb
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from kaiwa_common.auth import mint_token
from kaiwa_common.config import Settings
from kaiwa_common.devservers import free_port
from kaiwa_common.events import make_event, subject

AGENTS, CHATS, MAX_CHATS = 200, 1000, 5


def md(tenant: str, role: str, sub: str):
    return (("authorization", f"Bearer {mint_token(Settings(), tenant, role, sub)}"),)


@contextlib.asynccontextmanager
async def replicas(count: int):
    procs, channels = [], []
    try:
        for _ in range(count):
            port = free_port()
            env = {**os.environ, "KAIWA_ROUTING_PORT": str(port), "KAIWA_LOG_LEVEL": "WARNING"}
            procs.append(subprocess.Popen([sys.executable, "-m", "kaiwa_routing.main"], env=env))
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            channels.append(channel)
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(600):
                with contextlib.suppress(grpc.aio.AioRpcError):
                    if (
                        await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    ).status == health_pb2.HealthCheckResponse.SERVING:
                        break
                await asyncio.sleep(0.1)
        yield [RoutingServiceStub(c) for c in channels]
    finally:
        for channel in channels:
            await channel.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


class Bus:
    def __init__(self, nc, tenant: str):
        self.js, self.tenant, self.prefix = nc.jetstream(), tenant, Settings().subject_prefix

    async def start_chat(self, chat_id: str, department_id: str) -> None:
        event = make_event(
            "conversation",
            self.tenant,
            conv.ChatStarted(
                chat_id=chat_id,
                channel="CHANNEL_WEB",
                department_id=department_id,
                visitor_id=f"v-{chat_id[:8]}",
                question="help",
                state="queued",
            ),
        )
        await self.js.publish(
            subject(self.prefix, "conversation", event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.id}
        )


async def setup_tenant(stubs, strategy, online: bool, agents: int = AGENTS, max_chats: int = MAX_CHATS):
    tenant = f"bench-{uuid.uuid4().hex[:10]}"
    admin = md(tenant, "admin", "bench")
    dept = await stubs[0].UpsertDepartment(
        pb.UpsertDepartmentRequest(name="Bench", strategy=strategy, accept_timeout_seconds=600, max_wait_seconds=3600),
        metadata=admin,
    )
    ids = []
    for i in range(agents):
        agent = await stubs[i % len(stubs)].UpsertAgent(
            pb.UpsertAgentRequest(
                email=f"agent{i}@bench.example", name=f"Agent {i}", department_ids=[dept.id], max_chats=max_chats
            ),
            metadata=admin,
        )
        ids.append(agent.id)
    if online:
        await asyncio.gather(*(set_online(stubs[i % len(stubs)], tenant, a) for i, a in enumerate(ids)))
    return tenant, dept.id, ids


async def set_online(stub, tenant: str, agent_id: str) -> None:
    await stub.SetAvailability(
        pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE), metadata=md(tenant, "agent", agent_id)
    )


async def wait_count(db, query: str, tenant: str, want: int, timeout: float = 120, more_args: tuple = ()) -> None:
    deadline = time.monotonic() + timeout
    while await db.fetchval(query, tenant, *more_args) < want:
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {want}: {query}")
        await asyncio.sleep(0.05)


async def baseline(db_url: str) -> float:
    pool = await asyncpg.create_pool(db_url, min_size=20, max_size=20)
    try:
        await pool.execute("CREATE SCHEMA IF NOT EXISTS bench_routing")
        await pool.execute("DROP TABLE IF EXISTS bench_routing.agents, bench_routing.assignments")
        await pool.execute("CREATE TABLE bench_routing.agents (id int PRIMARY KEY, active int NOT NULL, max int NOT NULL)")
        await pool.execute(
            "CREATE TABLE bench_routing.assignments (id bigserial PRIMARY KEY, chat_id uuid NOT NULL, "
            "agent_id int NOT NULL, assigned_at timestamptz NOT NULL DEFAULT now())"
        )
        await pool.executemany("INSERT INTO bench_routing.agents VALUES ($1, 0, $2)", [(i, MAX_CHATS) for i in range(AGENTS)])

        async def assign(agent: int) -> None:
            async with pool.acquire() as conn:
                async with conn.transaction():
                    ok = await conn.fetchval(
                        "UPDATE bench_routing.agents SET active = active + 1 WHERE id = $1 AND active < max RETURNING true", agent
                    )
                    if ok:
                        await conn.execute(
                            "INSERT INTO bench_routing.assignments (chat_id, agent_id) VALUES ($1, $2)", uuid.uuid4(), agent
                        )

        async def agent_loop(agent: int) -> None:
            for _ in range(CHATS // AGENTS):
                await assign(agent)

        started = time.perf_counter()
        await asyncio.gather(*(agent_loop(a) for a in range(AGENTS)))
        return CHATS / (time.perf_counter() - started)
    finally:
        await pool.execute("DROP SCHEMA IF EXISTS bench_routing CASCADE")
        await pool.close()


async def accept_throughput(stubs, nc, db) -> float:
    """All 1,000 chats offered (one agent each); then every agent accepts its offers at once."""
    tenant, dept, agents = await setup_tenant(stubs, pb.STRATEGY_LEAST_LOADED, online=True)
    bus = Bus(nc, tenant)
    await asyncio.gather(*(bus.start_chat(str(uuid.uuid4()), dept) for _ in range(CHATS)))
    await wait_count(db, "SELECT count(*) FROM routing.offers WHERE tenant = $1", tenant, CHATS)

    async def agent_loop(i: int, agent_id: str) -> int:
        stub, meta = stubs[i % len(stubs)], md(tenant, "agent", agent_id)
        offers = (await stub.ListOffers(pb.ListOffersRequest(), metadata=meta)).offers
        for offer in offers:
            await stub.AcceptChat(pb.AcceptChatRequest(chat_id=offer.chat_id), metadata=meta)
        return len(offers)

    started = time.perf_counter()
    accepted = sum(await asyncio.gather(*(agent_loop(i, a) for i, a in enumerate(agents))))
    elapsed = time.perf_counter() - started
    assert accepted == CHATS, accepted
    return accepted / elapsed


async def drain(stubs, nc, db) -> float:
    """1,000 chats waiting; 200 agents come online and take what their offer streams bring."""
    tenant, dept, agents = await setup_tenant(stubs, pb.STRATEGY_LEAST_LOADED, online=False)
    bus = Bus(nc, tenant)
    await asyncio.gather(*(bus.start_chat(str(uuid.uuid4()), dept) for _ in range(CHATS)))
    await wait_count(db, "SELECT count(*) FROM routing.chats WHERE tenant = $1 AND state = 'queued'", tenant, CHATS)

    async def agent_loop(i: int, agent_id: str) -> None:
        stub, meta = stubs[i % len(stubs)], md(tenant, "agent", agent_id)
        stream = stub.StreamOffers(pb.StreamOffersRequest(), metadata=meta)
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for update in stream:
                if not update.withdrawn:
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        await stub.AcceptChat(pb.AcceptChatRequest(chat_id=update.offer.chat_id), metadata=meta)

    started = time.perf_counter()
    loops = [asyncio.create_task(agent_loop(i, a)) for i, a in enumerate(agents)]
    await asyncio.gather(*(set_online(stubs[i % len(stubs)], tenant, a) for i, a in enumerate(agents)))
    await wait_count(db, "SELECT count(*) FROM routing.chats WHERE tenant = $1 AND state = 'assigned'", tenant, CHATS)
    elapsed = time.perf_counter() - started
    for task in loops:
        task.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    return CHATS / elapsed


async def offer_latency(stubs, nc) -> tuple[float, float]:
    tenant, dept, agents = await setup_tenant(stubs, pb.STRATEGY_ROUND_ROBIN, online=True, agents=20, max_chats=100)
    bus = Bus(nc, tenant)
    published: dict[str, float] = {}
    delivered: dict[str, float] = {}
    ready = 0

    async def watch(i: int, agent_id: str) -> None:
        nonlocal ready
        stream = stubs[i % len(stubs)].StreamOffers(pb.StreamOffersRequest(), metadata=md(tenant, "agent", agent_id))
        ready += 1
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for update in stream:
                if not update.withdrawn:
                    delivered.setdefault(update.offer.chat_id, time.perf_counter())

    watchers = [asyncio.create_task(watch(i, a)) for i, a in enumerate(agents)]
    await asyncio.sleep(1.0)
    for _ in range(500):
        chat_id = str(uuid.uuid4())
        published[chat_id] = time.perf_counter()
        await bus.start_chat(chat_id, dept)
        await asyncio.sleep(0.02)
    for _ in range(200):
        if len(delivered) >= len(published):
            break
        await asyncio.sleep(0.05)
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    latencies = sorted((delivered[c] - t) * 1000 for c, t in published.items() if c in delivered)
    if len(latencies) < len(published):
        print(f"  (only {len(latencies)} of {len(published)} offers delivered)")
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]


async def main() -> None:
    db_url = os.environ["KAIWA_DATABASE_URL"]
    base = await baseline(db_url)
    print(f"baseline: bare SQL assignment (conditional UPDATE + INSERT, 1 tx), 200 in flight: {base:8.0f} /s")
    nc = await nats.connect(Settings().nats_url)
    db = await asyncpg.connect(db_url)
    try:
        for count in (1, 2):
            async with replicas(count) as stubs:
                rate = await accept_throughput(stubs, nc, db)
                print(
                    f"{count} replica(s): AcceptChat, 1,000 offered chats, 200 agents: {rate:8.0f} /s "
                    f"({rate / base:.0%} of baseline)"
                )
                rate = await drain(stubs, nc, db)
                print(f"{count} replica(s): drain 1,000 waiting chats as 200 agents come online: {rate:8.0f} /s")
                if count == 1:
                    p50, p99 = await offer_latency(stubs, nc)
                    print(f"{count} replica(s): chat started -> offer on the agent's stream: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    finally:
        await db.close()
        await nc.drain()


if __name__ == "__main__":
    from kaiwa_common.devservers import start_missing_servers, stop_servers
    import tempfile
    from pathlib import Path

    started = start_missing_servers(Path(tempfile.mkdtemp(prefix="kaiwa-bench-")), database="kaiwa_bench", durable=False)
    try:
        asyncio.run(main())
    finally:
        stop_servers(started)
