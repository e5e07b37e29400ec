"""PLAT-01 / ROUT-02 / CONV-06 under faults: the whole suite, as processes, on a PostgreSQL
and a NATS of this test's own, under a steady load of chats (tests/e2e/fault_load.py),
while in turn each service is killed with SIGKILL and started again, NATS is stopped and
started on the same store, and PostgreSQL is restarted (fast shutdown). Nobody helps a
service back: the test only waits for SERVING.

Afterwards, from the databases and the streams (tests/e2e/fault_checks.py): no
acknowledged message lost or stored twice, each published once and delivered once, in
order, to the chat's watcher; every event applied exactly once by every consumer, the
outboxes drained; each countdown and missed-chat timer fired once; no agent ever over
capacity (sampled throughout) and no chat assigned twice; every service SERVING. No error
line is allowed in the services' logs (suite.allowed_errors stays empty): each of these
faults is one they retry through, logged at warning.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import asyncpg
import pytest
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from kaiwa_common.devrun import MODULES
from kaiwa_common.devservers import LocalNats, LocalPostgres, free_port
from tests.e2e import fault_checks as checks
from tests.e2e.fault_load import MISSED, Load, Ledger
from tests.e2e.suite import Suite
from tests.fixtures import auth, eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

AGENTS = 4
MAX_CHATS = 3
CHAT_INTERVAL = 0.4  # a new chat this often
IN_FLIGHT = 10  # at most this many chats under way at once (agents hold 12)
MESSAGES = 5  # per side, about
CONVERGE = 90  # seconds for anything to settle after the last fault (ack_wait is 30 s)
# One at a time: a service name is kill -9 and start again, NATS / PostgreSQL a restart.
FAULT_ORDER = ("crm_bridge", "visitor", "routing", "NATS", "conversation", "PostgreSQL", "ai_assist")


@pytest.fixture
def own_servers():
    """PostgreSQL and NATS for this test alone: it restarts them. Not in pytest's tmp_path:
    another pytest run resets that tree to owner-only, and PostgreSQL (as its own system
    user when run by root) could no longer reach its data to start again."""
    workdir = Path(tempfile.mkdtemp(prefix="kaiwa-faults-"))
    pg = LocalPostgres(workdir / "pg", free_port(), database="kaiwa", durable=False).start()
    nats_server = LocalNats(workdir / "nats", free_port()).start()
    yield pg, nats_server
    nats_server.stop()
    pg.stop()
    shutil.rmtree(workdir, ignore_errors=True)


async def _staff(suite: Suite, tenant: str) -> tuple[str, str, dict[str, tuple]]:
    """A ring-all department with online agents, and one nobody serves (chats are missed
    after two seconds there)."""
    routing = RoutingServiceStub(suite.channel("routing"))
    admin = auth(tenant, "admin", "admin@example.com")
    sales = await routing.UpsertDepartment(
        rt.UpsertDepartmentRequest(
            name="Sales", strategy=rt.STRATEGY_RING_ALL, accept_timeout_seconds=3600, max_wait_seconds=3600
        ),
        metadata=admin,
    )
    unserved = await routing.UpsertDepartment(
        rt.UpsertDepartmentRequest(name="Night", strategy=rt.STRATEGY_RING_ALL, max_wait_seconds=2), metadata=admin
    )
    agents = {}
    for i in range(AGENTS):
        agent = await routing.UpsertAgent(
            rt.UpsertAgentRequest(
                email=f"agent{i}@example.com", name=f"担当者{i}", department_ids=[sales.id], max_chats=MAX_CHATS
            ),
            metadata=admin,
        )
        agents[agent.id] = auth(tenant, "agent", agent.id)
        await routing.SetAvailability(rt.SetAvailabilityRequest(availability=rt.AVAILABILITY_ONLINE), metadata=agents[agent.id])
    return sales.id, unserved.id, agents


class Faults:
    """One fault at a time; after each, every service SERVING and the load moving again.
    routing and conversation are killed just before one of their timers comes due (a
    missed-chat wait, a countdown), so it comes due while they are down."""

    TIMED = {"routing": "max_wait", "conversation": "conversation.countdown"}  # service -> timer kind

    def __init__(self, suite: Suite, pg: LocalPostgres, nats_server: LocalNats, load: Load):
        self.suite, self.pg, self.nats_server, self.load = suite, pg, nats_server, load
        self.serving: dict[str, float] = {}  # fault -> seconds until every service was SERVING again
        self.moving: dict[str, float] = {}  # fault -> seconds until the load had 10 more messages acknowledged
        self.due_while_down: dict[str, float] = {}  # fault -> seconds after the kill its timer came due

    async def inject_all(self) -> None:
        restarts = {"NATS": self._restart_nats, "PostgreSQL": self._restart_postgres}
        assert set(MODULES) | set(restarts) == set(FAULT_ORDER)
        for step in FAULT_ORDER:
            if step in restarts:
                await self._inject(f"restart {step}", restarts[step])
            else:
                await self._inject(f"kill -9 {step}", lambda name=step: self._kill(name), step if step in self.TIMED else None)
            if step == "conversation":
                self.load.countdowns = False  # the rest of the run need not wait for new ones

    async def _inject(self, fault: str, inject: Callable[[], None], timed_service: str | None = None) -> None:
        await self._load_moving(f"the load to move before: {fault}")
        due_in = await self._timer_due_soon(timed_service) if timed_service else None
        began = time.monotonic()
        inject()
        await self.suite.wait_serving(timeout=60)
        self.serving[fault] = time.monotonic() - began
        if due_in is not None:
            assert due_in < self.serving[fault], f"{fault}: its timer came due only after the restart"
            self.due_while_down[fault] = due_in
        await self._load_moving(f"the load to move again after: {fault}")
        self.moving[fault] = time.monotonic() - began

    async def _timer_due_soon(self, service: str) -> float:
        """Wait until a timer of the service's TIMED kind comes due within the next second;
        its seconds left."""
        kind = self.TIMED[service]

        async def due_in() -> float | None:
            conn = await asyncpg.connect(self.suite.env["KAIWA_DATABASE_URL"])
            try:
                left = await conn.fetchval(
                    f'SELECT extract(epoch FROM min(due_at) - clock_timestamp()) FROM "{service}".timers WHERE kind = $1 '
                    "AND due_at > clock_timestamp() + interval '0.2 s'",
                    kind,
                )
            finally:
                await conn.close()
            return float(left) if left is not None and left < 1.0 else None

        return await eventually(due_in, f"a {kind} timer about to come due in {service}", timeout=45, interval=0.1)

    def _kill(self, name: str) -> None:
        self.suite.kill(name)
        self.suite.spawn(name)

    def _restart_nats(self) -> None:
        self.nats_server.stop()
        self.nats_server.start()  # same port and store: JetStream keeps its streams

    def _restart_postgres(self) -> None:
        self.pg.stop()
        self.pg.start()

    async def _load_moving(self, what: str) -> None:
        acked = len(self.load.ledger.acked)
        await eventually(lambda: len(self.load.ledger.acked) >= acked + 10, what, timeout=60, interval=0.1)


async def _converged(suite: Suite, conn: asyncpg.Connection, load: Load) -> checks.Streams:
    """Wait until every chat ended, consumers and relays idle, watchers caught up."""
    ledger = load.ledger

    async def all_ended() -> bool:
        rows = await conn.fetch("SELECT id FROM conversation.chats WHERE state = 'ended'")
        return {str(r["id"]) for r in rows} >= set(ledger.chats)

    await eventually(all_ended, "every chat ended (countdowns and missed-chat timers fired)", timeout=CONVERGE, interval=0.2)

    async def settled() -> checks.Streams | None:
        if await checks.total(conn, "outbox"):
            return None
        streams = await checks.Streams.read(suite.env["KAIWA_NATS_URL"], suite.env["KAIWA_SUBJECT_PREFIX"])
        return streams if streams.settled() else None

    streams = await eventually(settled, "outboxes drained and every consumer caught up", timeout=CONVERGE, interval=0.5)
    stored = await checks.stored_seqs(conn)
    await eventually(lambda: checks.delivered_in_order(ledger, stored), "every watcher caught up", timeout=CONVERGE)
    return streams


async def test_plat01_rout02_conv06_nothing_lost_doubled_or_over_capacity_under_faults(own_servers, tenant):
    pg, nats_server = own_servers
    async with Suite.start(database_url=pg.url, nats_url=nats_server.url) as suite:
        load = Load(suite, tenant, *await _staff(suite, tenant))
        sampler = checks.CapacitySampler(suite.env["KAIWA_DATABASE_URL"])
        stop = asyncio.Event()
        running = [
            asyncio.create_task(sampler.run()),
            asyncio.create_task(load.run(stop, CHAT_INTERVAL, MESSAGES, IN_FLIGHT)),
        ]
        faults = Faults(suite, pg, nats_server, load)
        try:
            await faults.inject_all()
            stop.set()
            await running[1]
            await load.finish()
            conn = await asyncpg.connect(suite.env["KAIWA_DATABASE_URL"])
            try:
                streams = await _converged(suite, conn, load)
                assert not running[0].done(), running[0].exception()  # the capacity sampler still runs
                await _check_and_report(conn, streams, load.ledger, sampler, faults)
            finally:
                await conn.close()
        finally:
            running[0].cancel()
            await load.close()
        await suite.wait_serving(timeout=5)


async def _check_and_report(conn, streams: checks.Streams, ledger: Ledger, sampler, faults: Faults) -> None:
    assert not [chat for chat, agents in ledger.accepted.items() if len(agents) > 1], "AcceptChat said OK to two agents"
    assert sampler.samples and not sampler.over, f"agents over capacity: {sampler.over[:5]} ({sampler.samples} samples)"
    stored = await checks.check_messages(conn, streams, ledger)
    messages_delivered = await checks.delivered_messages(conn, ledger)
    applied = await checks.check_events_applied_once(conn, streams)
    await checks.check_chat_events(streams, ledger)
    fired = await checks.check_timers_and_assignments(conn, ledger)
    delivered = sum(len(seqs) for seqs in ledger.delivered.values())
    missed = sum(kind == MISSED for kind in ledger.chats.values())
    print(
        f"\nchats {len(ledger.chats)} ({missed} missed); messages sent {ledger.sent}, acked {len(ledger.acked)}, "
        f"stored {stored}, refused {dict(ledger.refused)} (a missed chat's first line); watchers got "
        f"{messages_delivered} messages (system ones too) among {delivered} chat events, each once, in order "
        f"(streams broken and resumed {ledger.stream_breaks} times); events published {len(streams.events)}, "
        f"applied {applied} by {len(streams.consumers)} consumers; timers fired {dict(fired)}; "
        f"capacity sampled {sampler.samples} times (peak {sampler.peak} of {MAX_CHATS}); retries {dict(ledger.retries)}"
    )
    print(f"{len(faults.serving)} faults, seconds until   every service SERVING   10 more messages acked")
    for fault, seconds in faults.serving.items():
        print(f"  {fault:34} {seconds:5.1f} {faults.moving[fault]:23.1f}")
    for fault, due in faults.due_while_down.items():
        print(f"{fault}: its {Faults.TIMED[fault.removeprefix('kill -9 ')]} timer came due {due:.1f} s after the kill")
