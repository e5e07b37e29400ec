"""Issue 3 benchmark: SendMessage against same-run baselines, and live-stream latency.

(a) a bare grpc.aio echo, (b) the same echo doing one asyncpg INSERT in a transaction,
(c) ConversationService.SendMessage (auth, validation, chat row lock, message, outbox
event, live NOTIFY), each at 1 and 64 calls in flight: throughput, p50, p99; and
(d) the delay from SendMessage returning to the message arriving on a StreamChat
watcher, at 500 messages/s.

Every server runs in a process of its own (as in production); this process is only the
client. Needs KAIWA_DATABASE_URL and KAIWA_NATS_URL (`make bench` starts both).
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
from pathlib import Path

import grpc

from kaiwa_common.app import run_on_service_loop

ROOT = Path(__file__).resolve().parents[1]
ECHO = "/bench.Echo/Echo"
SCHEMA = "bench_conversation"
WARMUP = 200
CALLS = {1: 1500, 64: 6000}


# --- servers (run as subprocesses) ---------------------------------------------------


async def serve_echo(port: int, with_db: bool) -> None:
    pool = None
    if with_db:
        import asyncpg

        pool = await asyncpg.create_pool(os.environ["KAIWA_DATABASE_URL"], min_size=20, max_size=20)
        await pool.execute(
            "CREATE TABLE IF NOT EXISTS bench_echo (id bigserial PRIMARY KEY, body bytea NOT NULL, "
            "created_at timestamptz NOT NULL DEFAULT now())"
        )

    async def echo(request: bytes, context) -> bytes:
        if pool is not None:
            async with pool.acquire() as conn:
                async with conn.transaction():
                    await conn.execute("INSERT INTO bench_echo (body) VALUES ($1)", request)
        return request

    await serve_bytes(port, echo)


async def serve_bytes(port: int, handler) -> None:
    """A bare grpc.aio server of one bytes-in, bytes-out method (bench.Echo/Echo): the
    baselines' servers, each around its own handler."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(handler)})]
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


async def serve_conversation(port: int) -> None:
    from kaiwa_common.app import ServiceRunner
    from kaiwa_common.config import Settings
    from kaiwa_conversation.main import make_spec

    runner = await ServiceRunner(make_spec(schema=SCHEMA), Settings(), port=port, schema=SCHEMA).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.stop()


@contextlib.contextmanager
def server_process(mode: str, module: str = "bench.bench_conversation", drop_env_prefix: str = ""):
    """`python -m <module> <mode> <port>` in its own process, until it prints "ready"
    (every benchmark's servers run this way, apart from the load generator)."""
    from kaiwa_common.devservers import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not (drop_env_prefix and k.startswith(drop_env_prefix))}
    env["KAIWA_LOG_LEVEL"] = "WARNING"
    proc = subprocess.Popen([sys.executable, "-m", module, mode, str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"benchmark server {module} {mode} did not start")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- measurement -----------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def closed_loop(make_call, inflight: int, calls: int) -> dict:
    """`inflight` workers issue `calls` calls back to back; latency per call."""
    latencies: list[float] = []
    counter = iter(range(calls))

    async def worker(w: int) -> None:
        for _ in counter:
            start = time.perf_counter()
            await make_call(w)
            latencies.append(time.perf_counter() - start)

    for i in range(WARMUP):
        await make_call(i % inflight)
    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(inflight)))
    elapsed = time.perf_counter() - began
    return {"rps": calls / elapsed, "p50": percentile(latencies, 50) * 1000, "p99": percentile(latencies, 99) * 1000}


def row(label: str, inflight: int, result: dict) -> str:
    return (
        f"  {label:<44} {inflight:>3} in flight  {result['rps']:>8.0f} calls/s   "
        f"p50 {result['p50']:6.2f} ms   p99 {result['p99']:6.2f} ms"
    )


async def bench_echo(address: str) -> dict[int, dict]:
    out = {}
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(ECHO)
        payload = b"x" * 64
        for inflight in (1, 64):
            out[inflight] = await closed_loop(lambda _w: call(payload), inflight, CALLS[inflight])
    return out


class ConversationClient:
    def __init__(self, address: str, tenant: str):
        from kaiwa.conversation.v1.conversation_pb2_grpc import ConversationServiceStub

        from kaiwa_common.auth import mint_token
        from kaiwa_common.config import Settings

        self.channel = grpc.aio.insecure_channel(address)
        self.stub = ConversationServiceStub(self.channel)
        self.tenant = tenant
        settings = Settings()
        self.agent = (("authorization", f"Bearer {mint_token(settings, tenant, 'agent', 'bench-agent')}"),)
        self.settings = settings

    def visitor(self, visitor_id: str):
        from kaiwa_common.auth import mint_token

        return (("authorization", f"Bearer {mint_token(self.settings, self.tenant, 'visitor', visitor_id)}"),)

    async def open_chats(self, n: int, js) -> list[str]:
        """Chats started by visitors and assigned to the bench agent by routing's event."""
        from kaiwa.conversation.v1 import conversation_pb2 as pb
        from kaiwa.events.v1.routing_pb2 import ChatAssigned

        from kaiwa_common.events import make_event, subject

        ids = []
        for _ in range(n):
            # No department: StartChat asks routing about a department only when one is given.
            chat = await self.stub.StartChat(
                pb.StartChatRequest(channel=pb.CHANNEL_WEB), metadata=self.visitor(f"v-{uuid.uuid4().hex[:8]}")
            )
            event = make_event(
                "routing", self.tenant, ChatAssigned(chat_id=chat.id, agent_id="bench-agent", agent_name="Bench", how="accepted")
            )
            await js.publish(
                subject(self.settings.subject_prefix, "routing", "chat_assigned"),
                event.SerializeToString(),
                headers={"Nats-Msg-Id": event.id},
            )
            ids.append(chat.id)
        for chat_id in ids:
            for _ in range(400):
                current = await self.stub.GetChat(pb.GetChatRequest(chat_id=chat_id), metadata=self.agent)
                if current.state == pb.CHAT_STATE_OPEN:
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("chat never opened: is the routing consumer running?")
        return ids


async def bench_send(address: str, js) -> tuple[dict[int, dict], dict]:
    from kaiwa.conversation.v1 import conversation_pb2 as pb

    client = ConversationClient(address, f"bench-{uuid.uuid4().hex[:8]}")
    chats = await client.open_chats(64, js)
    out = {}
    for inflight in (1, 64):
        # one chat per caller: concurrent chats, as in production (one chat's sends serialise on its row)
        out[inflight] = await closed_loop(
            lambda w: client.stub.SendMessage(
                pb.SendMessageRequest(chat_id=chats[w], text="How can I help you today?"), metadata=client.agent
            ),
            inflight,
            CALLS[inflight],
        )
    latency = await bench_stream_latency(client, chats[:10])
    await client.channel.close()
    return out, latency


async def bench_stream_latency(client: ConversationClient, chats: list[str], rate: int = 500, seconds: float = 6.0) -> dict:
    """Open loop at `rate` messages/s over several chats, each followed by a StreamChat watcher."""
    from kaiwa.conversation.v1 import conversation_pb2 as pb

    returned: dict[str, float] = {}
    arrived: dict[str, float] = {}
    ready = 0

    async def watch(chat_id: str) -> None:
        nonlocal ready
        latest = await client.stub.GetChat(pb.GetChatRequest(chat_id=chat_id), metadata=client.agent)
        stream = client.stub.StreamChat(pb.StreamChatRequest(chat_id=chat_id, after_seq=latest.last_seq), metadata=client.agent)
        ready += 1
        async for event in stream:
            if event.HasField("message") and event.message.text.startswith("live "):
                arrived[event.message.text[5:]] = time.perf_counter()

    watchers = [asyncio.create_task(watch(c)) for c in chats]
    while ready < len(chats):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)

    async def send(i: int) -> None:
        key = f"m{i}"
        await client.stub.SendMessage(
            pb.SendMessageRequest(chat_id=chats[i % len(chats)], text=f"live {key}"), metadata=client.agent
        )
        returned[key] = time.perf_counter()

    total = int(rate * seconds)
    began = time.perf_counter()
    sends = []
    for i in range(total):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sends.append(asyncio.create_task(send(i)))
    await asyncio.gather(*sends)
    achieved = total / (time.perf_counter() - began)
    deadline = time.perf_counter() + 10
    while len(arrived) < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    for w in watchers:
        w.cancel()
    delays = [max(0.0, arrived[k] - returned[k]) * 1000 for k in returned if k in arrived]
    early = sum(1 for k in returned if k in arrived and arrived[k] < returned[k])
    return {
        "rate": achieved,
        "sent": total,
        "received": len(delays),
        "early": early,
        "p50": percentile(delays, 50),
        "p99": percentile(delays, 99),
        "max": max(delays),
        "mean": statistics.fmean(delays),
    }


async def main() -> None:
    import nats

    print("(a)-(c): closed loop, server in its own process; (d): open loop, 500 msg/s over 10 watched chats")
    with server_process("serve-echo") as address:
        bare = await bench_echo(address)
    with server_process("serve-echo-db") as address:
        db = await bench_echo(address)
    nc = await nats.connect(os.environ["KAIWA_NATS_URL"])
    try:
        with server_process("serve-conversation") as address:
            send, latency = await bench_send(address, nc.jetstream())
    finally:
        await nc.drain()
    for inflight in (1, 64):
        print(row("(a) bare grpc.aio echo", inflight, bare[inflight]))
        print(row("(b) echo + one INSERT in a transaction", inflight, db[inflight]))
        print(row("(c) SendMessage (persist + outbox + notify)", inflight, send[inflight]))
        print(f"      (c)/(b) throughput: {send[inflight]['rps'] / db[inflight]['rps']:.0%}  (goal >= 60%)")
    print(
        f"  (d) SendMessage return -> StreamChat watcher: {latency['rate']:.0f} msg/s achieved, "
        f"{latency['received']}/{latency['sent']} received; p50 {latency['p50']:.2f} ms, "
        f"p99 {latency['p99']:.2f} ms, max {latency['max']:.2f} ms (goal p99 < 25 ms); "
        f"{latency['early']} arrived before SendMessage returned (counted as 0)"
    )


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "serve-conversation":
        run_on_service_loop(serve_conversation(port))
    else:
        run_on_service_loop(serve_echo(port, with_db=mode == "serve-echo-db"))
