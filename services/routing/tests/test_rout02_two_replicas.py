"""ROUT-02 invariants with two routing replicas on one database.

Two `python -m kaiwa_routing.main` processes, 100 agents with small limits, 1,000 chats
started on the bus at once, and mixed in concurrently: accepts (from live offer streams
on both replicas), declines, availability changes, reassignments, chat ends. Afterwards,
from the database: no agent was ever over their maximum (checked on the assignment
history, not only the counters), no chat ever had two owners at once, and no chat was
lost between queued and assigned.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import uuid
from collections import defaultdict

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kaiwa.routing.v1 import routing_pb2 as pb
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from kaiwa_common.devservers import free_port
from tests.fixtures import auth, eventually

AGENTS, CHATS = 100, 1000
# Streams of their own: thousands of routing events must not reach other tests' consumers.
PREFIX = f"tworeplicas{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def replicas():
    procs, logs, ports = [], [], []
    for _ in range(2):
        port = free_port()
        log = tempfile.TemporaryFile()
        env = {
            **os.environ,
            "KAIWA_ROUTING_PORT": str(port),
            "KAIWA_LOG_LEVEL": "WARNING",
            "KAIWA_TIMER_POLL": "0.05",
            "KAIWA_ROUTING_SWEEP": "1.0",
            "KAIWA_DB_POOL_MAX": "15",
            "KAIWA_SUBJECT_PREFIX": PREFIX,
        }
        procs.append(subprocess.Popen([sys.executable, "-m", "kaiwa_routing.main"], env=env, stdout=log, stderr=log))
        logs.append(log)
        ports.append(port)
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{p}") for p in ports]
    try:
        for channel, proc in zip(channels, procs, strict=True):
            health = health_pb2_grpc.HealthStub(channel)

            async def serving(health=health, proc=proc) -> bool:
                assert proc.poll() is None, "a routing replica exited while starting"
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                except grpc.aio.AioRpcError:
                    return False
                return reply.status == health_pb2.HealthCheckResponse.SERVING

            await eventually(serving, "a routing replica SERVING", timeout=60, interval=0.1)
        yield [RoutingServiceStub(c) for c in channels]
    finally:
        for channel in channels:
            await channel.close()
        for proc in procs:
            proc.terminate()
        for proc, log in zip(procs, logs, strict=True):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.seek(0)
            errors = [line for line in log.read().decode(errors="replace").splitlines() if '"level": "error"' in line]
            log.close()
            assert not errors, errors[:5]


def _max_overlap(intervals) -> int:
    """Largest number of intervals open at one instant (a release before an assignment at the same instant)."""
    points = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals if end is not None],
        key=lambda p: (p[0], p[1]),
    )
    open_now = peak = 0
    for _, delta in points:
        open_now += delta
        peak = max(peak, open_now)
    return peak


async def test_rout02_two_replicas_never_exceed_capacity_double_assign_or_lose_a_chat(replicas, bus, tenant):
    from kaiwa.events.v1 import conversation_pb2 as conv
    from kaiwa_common.events import make_event, subject

    rng = random.Random(4)
    js = bus.jetstream()
    admin = auth(tenant, "admin", "admin")
    one, two = replicas
    ring = await one.UpsertDepartment(
        pb.UpsertDepartmentRequest(name="Ring", strategy=pb.STRATEGY_RING_ALL, max_wait_seconds=600), metadata=admin
    )
    least = await two.UpsertDepartment(
        pb.UpsertDepartmentRequest(
            name="Least", strategy=pb.STRATEGY_LEAST_LOADED, accept_timeout_seconds=2, max_wait_seconds=600
        ),
        metadata=admin,
    )
    agents = []
    for i in range(AGENTS):
        # A ring-all department of 20 (a chat rings them all) and a least-loaded one of 90.
        departments = [ring.id] if i % 10 == 0 else [ring.id, least.id] if i % 10 == 1 else [least.id]
        agent = await replicas[i % 2].UpsertAgent(
            pb.UpsertAgentRequest(
                email=f"agent{i}@example.com", name=f"Agent {i}", department_ids=departments, max_chats=1 + i % 3
            ),
            metadata=admin,
        )
        await replicas[i % 2].SetAvailability(
            pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE), metadata=auth(tenant, "agent", agent.id)
        )
        agents.append(agent)

    prefix = PREFIX
    ended: set[str] = set()
    accepted: dict[str, int] = defaultdict(int)
    background: set[asyncio.Task] = set()

    async def publish(payload):
        event = make_event("conversation", tenant, payload)
        await js.publish(
            subject(prefix, "conversation", event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.id}
        )

    async def end_later(chat_id: str, delay: float):
        await asyncio.sleep(delay)
        if chat_id not in ended:
            ended.add(chat_id)
            await publish(conv.ChatEnded(chat_id=chat_id, reason="agent"))

    def spawn(coro):
        task = asyncio.create_task(coro)
        background.add(task)
        task.add_done_callback(background.discard)

    async def answer(stub, md, chat_id: str, live: set[str]):
        await asyncio.sleep(rng.uniform(0.0, 0.15))  # an agent takes a moment to react
        if chat_id not in live:
            return  # withdrawn meanwhile: someone else took it
        try:
            if rng.random() < 0.1:
                await stub.DeclineChat(pb.DeclineChatRequest(chat_id=chat_id, reason="busy"), metadata=md)
            else:
                await stub.AcceptChat(pb.AcceptChatRequest(chat_id=chat_id), metadata=md)
                accepted[chat_id] += 1
                spawn(end_later(chat_id, rng.uniform(0.05, 0.4)))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc  # lost a race: fine

    async def agent_loop(i: int, agent: pb.Agent):
        stub = replicas[i % 2]
        md = auth(tenant, "agent", agent.id)
        live: set[str] = set()
        stream = stub.StreamOffers(pb.StreamOffersRequest(), metadata=md)
        try:
            async for update in stream:
                chat_id = update.offer.chat_id
                if update.withdrawn:
                    live.discard(chat_id)
                else:
                    live.add(chat_id)
                    spawn(answer(stub, md, chat_id, live))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.CANCELLED, exc

    async def availability_chaos():
        while True:
            i = rng.randrange(AGENTS)
            stub, md = replicas[i % 2], auth(tenant, "agent", agents[i].id)
            await stub.SetAvailability(
                pb.SetAvailabilityRequest(availability=rng.choice([pb.AVAILABILITY_AWAY, pb.AVAILABILITY_OFFLINE])), metadata=md
            )
            await asyncio.sleep(rng.uniform(0.05, 0.2))
            await stub.SetAvailability(pb.SetAvailabilityRequest(availability=pb.AVAILABILITY_ONLINE), metadata=md)

    async def reassign_chaos():
        while True:
            await asyncio.sleep(0.05)
            if not accepted:
                continue
            chat_id = rng.choice(list(accepted))
            target = agents[rng.randrange(AGENTS)]
            try:
                await replicas[rng.randrange(2)].AssignChat(
                    pb.AssignChatRequest(chat_id=chat_id, agent_id=target.id), metadata=admin
                )
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc

    workers = [asyncio.create_task(agent_loop(i, a)) for i, a in enumerate(agents)]
    workers += [asyncio.create_task(availability_chaos()), asyncio.create_task(reassign_chaos())]
    chats = [str(uuid.uuid4()) for _ in range(CHATS)]
    started = [
        conv.ChatStarted(
            chat_id=c,
            channel="CHANNEL_WEB",
            visitor_id=f"v-{n}",
            question="help",
            department_id=ring.id if n % 5 == 0 else least.id,
            state="queued",
        )
        for n, c in enumerate(chats)
    ]
    await asyncio.gather(*(publish(p) for p in started))
    for chat_id in rng.sample(chats, CHATS // 20):  # visitors who leave while waiting
        spawn(end_later(chat_id, rng.uniform(0.0, 1.0)))

    conn = await asyncpg.connect(os.environ["KAIWA_DATABASE_URL"], server_settings={"search_path": "routing"})
    try:
        done = 0

        async def all_ended() -> bool:
            nonlocal done
            done = await conn.fetchval("SELECT count(*) FROM chats WHERE tenant = $1 AND state = 'ended'", tenant)
            return done == CHATS

        with contextlib.suppress(AssertionError):  # asserted below, once the workers have stopped
            await eventually(all_ended, f"all {CHATS} chats ended", timeout=90, interval=0.1)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await asyncio.gather(*list(background), return_exceptions=True)
        assert done == CHATS, f"only {done} of {CHATS} chats ended"

        # No chat lost: every chat started was routed and ended; nothing waits or holds capacity.
        states = await conn.fetch("SELECT id, state FROM chats WHERE tenant = $1", tenant)
        assert sorted(str(r["id"]) for r in states) == sorted(chats)
        assert await conn.fetchval("SELECT count(*) FROM offers WHERE tenant = $1", tenant) == 0
        assert await conn.fetchval("SELECT count(*) FROM assignments WHERE tenant = $1 AND released_at IS NULL", tenant) == 0
        assert await conn.fetchval("SELECT sum(active_chats) FROM agents WHERE tenant = $1", tenant) == 0
        never_assigned = set(chats) - {
            str(r["chat_id"]) for r in await conn.fetch("SELECT DISTINCT chat_id FROM assignments WHERE tenant = $1", tenant)
        }
        assert never_assigned <= ended - set(accepted)  # only visitors who left early may never have had an agent

        history = await conn.fetch(
            "SELECT chat_id, agent_id, assigned_at, released_at FROM assignments WHERE tenant = $1", tenant
        )
        assert len(history) >= len(accepted)
        # No chat ever had two owners at the same time.
        by_chat = defaultdict(list)
        by_agent = defaultdict(list)
        for row in history:
            by_chat[row["chat_id"]].append((row["assigned_at"], row["released_at"]))
            by_agent[str(row["agent_id"])].append((row["assigned_at"], row["released_at"]))
        assert max(_max_overlap(v) for v in by_chat.values()) == 1
        # No agent was ever over their maximum.
        limits = {a.id: a.max_chats for a in agents}
        over = {a: _max_overlap(v) for a, v in by_agent.items() if _max_overlap(v) > limits[a]}
        assert over == {}
        busiest = max(_max_overlap(v) / limits[a] for a, v in by_agent.items())
        assert busiest == 1  # agents were really filled up to their limits
        assert all(n == 1 for n in accepted.values())  # an offer is accepted once
    finally:
        await conn.close()
