"""Same-run baselines for the whole-suite benchmark (issue 14).

- echo: a bare grpc.aio echo server;
- echo + INSERT: the same echo doing one asyncpg INSERT in a transaction;
- echo + assignment SQL: the same echo replaying, in one transaction and one round trip,
  the statements routing's accept_offer() runs for AcceptChat (002_accept_offer.sql: lock
  the chat, read the agent, check the offer, take a slot, withdraw the chat's offers and
  timers, mark the chat assigned, record the assignment, drop a membership), on copies of
  routing's own tables (same columns, constraints and indexes) in a schema of its own;
- copy_records_to_table: rows per second into a copy of conversation.chats;
- JetStream publish, acknowledged, at a given number in flight.

Every echo server runs in a process of its own (bench.bench_conversation.server_process);
the caller measures at the concurrency of the figure each is compared with.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

import asyncpg
import grpc

from kaiwa_common.app import run_on_service_loop

from bench.bench_conversation import closed_loop, percentile, serve_bytes, serve_echo, server_process

ECHO = "/bench.Echo/Echo"
SCHEMA = "bench_baseline"
ROUTING_TABLES = ("chats", "agents", "offers", "assignments", "chat_members", "timers")
AGENTS = 200
TIMER_KINDS = "ARRAY['offer_timeout','max_wait']"


def assignment_sql(tenant: str, chat_id: str, agent_id: str) -> str:
    """accept_offer()'s statements for one chat, as literals (all generated here)."""
    t, c, a = f"'{tenant}'", f"'{chat_id}'::uuid", f"'{agent_id}'::uuid"
    return f"""BEGIN;
SELECT * FROM chats WHERE tenant = {t} AND id = {c} FOR UPDATE;
SELECT * FROM agents WHERE tenant = {t} AND id = {a};
SELECT 1 FROM offers WHERE chat_id = {c} AND agent_id = {a};
UPDATE agents SET active_chats = active_chats + 1, last_assigned_at = now()
 WHERE tenant = {t} AND id = {a} AND availability = 'online' AND active_chats < max_chats RETURNING active_chats;
DELETE FROM offers WHERE chat_id = {c};
DELETE FROM timers WHERE key = {c}::text AND kind = ANY ({TIMER_KINDS});
UPDATE chats SET state = 'assigned', agent_id = {a}, assigned_at = now() WHERE id = {c};
INSERT INTO assignments (tenant, chat_id, department_id, agent_id, how, queued_at, assigned_at)
 SELECT tenant, id, department_id, {a}, 'accepted', queued_at, clock_timestamp() FROM chats WHERE id = {c};
DELETE FROM chat_members WHERE chat_id = {c} AND agent_id = {a};
COMMIT;"""


async def prepare_assignment_schema(conn, chats: int) -> tuple[str, list[tuple[str, str]]]:
    """Copies of routing's tables with `chats` queued chats, each offered to one of 200
    online agents; returns the tenant and (chat, agent) pairs."""
    await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    for table in ROUTING_TABLES:
        await conn.execute(f"CREATE TABLE {SCHEMA}.{table} (LIKE routing.{table} INCLUDING ALL)")
    tenant = f"baseline-{uuid.uuid4().hex[:8]}"
    agents = [uuid.uuid4() for _ in range(AGENTS)]
    await conn.copy_records_to_table(
        "agents",
        schema_name=SCHEMA,
        columns=["id", "tenant", "email", "name", "availability", "max_chats"],
        records=[(a, tenant, f"a{i}@bench.example", f"Agent {i}", "online", 100) for i, a in enumerate(agents)],
    )
    pairs = [(uuid.uuid4(), agents[i % AGENTS]) for i in range(chats)]
    await conn.copy_records_to_table(
        "chats",
        schema_name=SCHEMA,
        columns=["id", "tenant", "state", "queued_at"],
        records=[(c, tenant, "queued", None) for c, _ in pairs],
    )
    await conn.copy_records_to_table(
        "offers", schema_name=SCHEMA, columns=["tenant", "chat_id", "agent_id"], records=[(tenant, c, a) for c, a in pairs]
    )
    return tenant, [(str(c), str(a)) for c, a in pairs]


async def serve_assignment(port: int) -> None:
    """Echo whose handler runs one assignment's SQL; the request is b"<tenant> <chat> <agent>"."""
    pool = await asyncpg.create_pool(
        os.environ["KAIWA_DATABASE_URL"], min_size=20, max_size=20, server_settings={"search_path": SCHEMA}
    )

    async def assign(request: bytes, context) -> bytes:
        tenant, chat_id, agent_id = request.decode().split()
        async with pool.acquire() as conn:
            await conn.execute(assignment_sql(tenant, chat_id, agent_id))
        return request

    await serve_bytes(port, assign)


async def echo(kind: str, inflight: int, calls: int) -> dict:
    """kind: "echo" or "echo-insert"; closed loop at `inflight`."""
    mode = "serve-echo" if kind == "echo" else "serve-echo-db"
    with server_process(mode, "bench.baselines") as address:
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.unary_unary(ECHO)
            return await closed_loop(lambda _w: call(b"x" * 64), inflight, calls)


async def echo_assignment(inflight: int, calls: int) -> dict:
    from bench.bench_conversation import WARMUP

    conn = await asyncpg.connect(os.environ["KAIWA_DATABASE_URL"])
    try:
        tenant, pairs = await prepare_assignment_schema(conn, calls + WARMUP)
        work = iter(pairs)
        with server_process("serve-assignment", "bench.baselines") as address:
            async with grpc.aio.insecure_channel(address) as channel:
                call = channel.unary_unary(ECHO)

                def assign_next(_w):
                    chat_id, agent_id = next(work)
                    return call(f"{tenant} {chat_id} {agent_id}".encode())

                return await closed_loop(assign_next, inflight, calls)
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.close()


async def copy_rate(rows: int) -> dict:
    """Rows per second copy_records_to_table writes into a copy of conversation.chats."""
    conn = await asyncpg.connect(os.environ["KAIWA_DATABASE_URL"])
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}_copy CASCADE; CREATE SCHEMA {SCHEMA}_copy")
        await conn.execute(f"CREATE TABLE {SCHEMA}_copy.chats (LIKE conversation.chats INCLUDING ALL)")
        records = [("baseline", uuid.uuid4(), "web", "ended", f"v{i}") for i in range(rows)]
        began = time.perf_counter()
        await conn.copy_records_to_table(
            "chats", schema_name=f"{SCHEMA}_copy", columns=["tenant", "id", "channel", "state", "visitor_id"], records=records
        )
        return {"rows_per_s": rows / (time.perf_counter() - began), "rows": rows}
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}_copy CASCADE")
        await conn.close()


async def jetstream_publish(inflight: int, messages: int) -> dict:
    """Acknowledged publishes of a 200-byte event to a stream of its own."""
    import nats

    nc = await nats.connect(os.environ["KAIWA_NATS_URL"])
    js = nc.jetstream()
    stream = f"BENCH_BASELINE_{uuid.uuid4().hex[:6].upper()}"
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    latencies: list[float] = []
    counter = iter(range(messages))

    async def worker() -> None:
        for i in counter:
            began = time.perf_counter()
            await js.publish(f"{stream.lower()}.event", b"e" * 200, headers={"Nats-Msg-Id": f"m{i}"})
            latencies.append(time.perf_counter() - began)

    try:
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        elapsed = time.perf_counter() - began
    finally:
        await js.delete_stream(stream)
        await nc.drain()
    return {"rps": messages / elapsed, "p50": percentile(latencies, 50) * 1000, "p99": percentile(latencies, 99) * 1000}


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "serve-assignment":
        run_on_service_loop(serve_assignment(port))
    else:
        run_on_service_loop(serve_echo(port, with_db=mode == "serve-echo-db"))
