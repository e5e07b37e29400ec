"""The mixed-load generator, a process of its own: `python -m bench.loadgen <config.json>`.

It sets up a tenant (a main department on least loaded with its agents online, and a small
department whose few agents take one chat at a time, so visitors there queue), brings
every agent's StreamOffers up (an offer is accepted at once), starts visitors' chats at a
steady rate (bench.loadgen_chat), starts the page-view process (bench.loadgen_views) for
the same window, and writes what it measured to the config's "output" file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
import uuid

import grpc
from kaiwa.ai_assist.v1.ai_assist_pb2_grpc import AiAssistServiceStub
from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub
from kaiwa.routing.v1 import routing_pb2 as rt
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub

from bench.bench_conversation import percentile
from bench.loadgen_chat import run_chat
from bench.loadgen_record import Recorder
from kaiwa_common.auth import mint_token
from kaiwa_common.config import Settings


class Load:
    """The stubs, tokens, recorder and agents one run shares."""

    def __init__(self, config: dict) -> None:
        self.config, self.tenant, self.settings = config, config["tenant"], Settings()
        self.channels = {name: grpc.aio.insecure_channel(address) for name, address in config["addresses"].items()}
        self.conversation = ConversationServiceStub(self.channels["conversation"])
        self.routing = RoutingServiceStub(self.channels["routing"])
        self.ai = AiAssistServiceStub(self.channels["ai_assist"])
        self.recorder = Recorder()
        self.sent: list = []  # (the reader's Watcher, message key, when the send began)
        self._agent_tokens: dict[str, tuple] = {}
        self.agents = AgentPool(self)

    def visitor_metadata(self, visitor_id: str):
        return (("authorization", f"Bearer {mint_token(self.settings, self.tenant, 'visitor', visitor_id)}"),)

    def agent_metadata(self, agent_id: str):
        if agent_id not in self._agent_tokens:
            token = mint_token(self.settings, self.tenant, "agent", agent_id)
            self._agent_tokens[agent_id] = (("authorization", f"Bearer {token}"),)
        return self._agent_tokens[agent_id]

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()


class AgentPool:
    """Every agent online with an offer stream; an offer is accepted as soon as it arrives."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.emails: dict[str, str] = {}
        self.main: list[str] = []
        self._assignments: dict[str, asyncio.Future] = {}
        self._streams: list[asyncio.Task] = []

    async def create(self, department_id: str, count: int, max_chats: int, prefix: str) -> list[str]:
        admin = (("authorization", f"Bearer {mint_token(self.load.settings, self.load.tenant, 'admin', 'bench')}"),)
        ids = []
        for i in range(count):
            request = rt.UpsertAgentRequest(
                email=f"{prefix}{i}@bench.example", name=f"{prefix} {i}", department_ids=[department_id], max_chats=max_chats
            )
            agent = await self.load.routing.UpsertAgent(request, metadata=admin)
            self.emails[agent.id] = request.email
            ids.append(agent.id)
        online = rt.SetAvailabilityRequest(availability=rt.AVAILABILITY_ONLINE)
        await asyncio.gather(*(self.load.routing.SetAvailability(online, metadata=self.load.agent_metadata(a)) for a in ids))
        self._streams += [asyncio.create_task(self._take_offers(a)) for a in ids]
        return ids

    def assignment(self, chat_id: str) -> asyncio.Future:
        """Resolves to (agent id, when the offer arrived, when AcceptChat returned)."""
        return self._assignments.setdefault(chat_id, asyncio.get_running_loop().create_future())

    def another_main_agent(self, agent_id: str) -> str:
        return random.choice([a for a in self.main if a != agent_id])

    async def _take_offers(self, agent_id: str) -> None:
        metadata = self.load.agent_metadata(agent_id)
        stream = self.load.routing.StreamOffers(rt.StreamOffersRequest(), metadata=metadata)
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for update in stream:
                if not update.withdrawn:
                    asyncio.create_task(self._accept(agent_id, update.offer.chat_id, time.perf_counter()))

    async def _accept(self, agent_id: str, chat_id: str, offered_at: float) -> None:
        request = rt.AcceptChatRequest(chat_id=chat_id)
        try:
            await self.load.recorder.timed(
                "AcceptChat", self.load.routing.AcceptChat(request, metadata=self.load.agent_metadata(agent_id))
            )
        except grpc.aio.AioRpcError:
            return
        future = self.assignment(chat_id)
        if not future.done():
            future.set_result((agent_id, offered_at, time.perf_counter()))

    async def stop(self) -> None:
        for task in self._streams:
            task.cancel()
        await asyncio.gather(*self._streams, return_exceptions=True)


async def setup(load: Load) -> tuple[str, str]:
    """The main and the queued department, with their agents online."""
    config = load.config
    admin = (("authorization", f"Bearer {mint_token(load.settings, load.tenant, 'admin', 'bench')}"),)
    departments = []
    for name in ("Main", "Queued"):
        request = rt.UpsertDepartmentRequest(
            name=name, strategy=rt.STRATEGY_LEAST_LOADED, accept_timeout_seconds=600, max_wait_seconds=3600
        )
        departments.append((await load.routing.UpsertDepartment(request, metadata=admin)).id)
    main, queued = departments
    load.agents.main = await load.agents.create(main, config["agents"], config["max_chats"], "agent")
    await load.agents.create(queued, config["queue_agents"], 1, "queue-agent")
    return main, queued


async def arrive(load: Load, rate: float, seconds: float, department: str, queued: bool, poisson: bool) -> None:
    """Chats starting `rate` a second for `seconds` (evenly spaced, or Poisson), each run to
    its end or cut off `drain_seconds` after the last arrival."""
    rng, tasks, at = random.Random(), [], 0.0
    began = time.perf_counter()
    while at < seconds:
        delay = began + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(run_chat(load, department, queued)))
        at += rng.expovariate(rate) if poisson else 1 / rate
    await finish(tasks, load.config["drain_seconds"], load.recorder, "chats cut off at the end")


async def finish(tasks: list[asyncio.Task], timeout: float, recorder: Recorder, cut_off: str) -> None:
    """Waits for the tasks up to `timeout` seconds, then cancels and counts the rest."""
    _, pending = await asyncio.wait(tasks, timeout=timeout) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if pending:
        recorder.counts[cut_off] += len(pending)


def watcher_latencies(load: Load) -> list[float]:
    """Send began -> the other side's StreamChat delivered it, for every message it delivered."""
    delays = [reader.arrived[key] - sent for reader, key, sent in load.sent if key in reader.arrived]
    load.recorder.counts["messages seen by the other side"] = len(delays)
    return delays


async def run(config: dict) -> dict:
    load = Load(config)
    main, queued = await setup(load)
    await asyncio.sleep(1.0)  # every offer stream is open
    views = subprocess.Popen([sys.executable, "-m", "bench.loadgen_views", json.dumps(config)])
    began = load.recorder.began = time.perf_counter()
    await asyncio.gather(
        arrive(load, config["rate"], config["seconds"], main, queued=False, poisson=False),
        arrive(load, config["queue_rate"], config["seconds"], queued, queued=True, poisson=True),
    )
    elapsed = time.perf_counter() - began
    views.wait()
    with open(config["views_output"]) as figures:
        page_views = json.load(figures)
    await load.agents.stop()
    await load.close()
    delays = watcher_latencies(load)
    result = load.recorder.summary(elapsed)
    # Steady state: from when the first chats end (they last about 15 s) to the last arrival.
    window = (min(25, int(config["seconds"]) // 2), int(config["seconds"]))
    result["steady"] = {
        "window_s": window,
        "chats_per_s": load.recorder.steady_rate("StartChat", *window),
        "messages_per_s": load.recorder.steady_rate("SendMessage", *window),
    }
    if delays:
        result["latency_ms"]["message to watcher"] = {
            "n": len(delays),
            "p50": percentile(delays, 50) * 1000,
            "p99": percentile(delays, 99) * 1000,
        }
    result["latency_ms"].update(page_views["latency_ms"])
    result["counts"].update(page_views["counts"])
    result["errors"].update(page_views["errors"])
    result["error_details"].update(page_views["error_details"])
    return result


def main() -> None:
    config = json.loads(sys.argv[1])
    config.setdefault("tenant", f"mixed-{uuid.uuid4().hex[:8]}")
    result = asyncio.run(run(config))
    with open(config["output"], "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
