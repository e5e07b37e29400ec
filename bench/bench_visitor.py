"""Issue 9 benchmark: visitor tracking throughput and latency.

(a) baseline: asyncpg `copy_records_to_table` of the same page-view rows into a table of
    the same shape (no enrichment, no visits, no events): what PostgreSQL takes here;
(b) TrackEvents (client streaming): page views validated, enriched (user agent, GeoIP,
    referrer, campaign) once per visit, placed into visits, persisted with their visit
    and visitor updates and one page_viewed outbox event each, one statement per stream
    message (1,000 events), 4 streams at once; and how long the outbox relay then takes
    to publish the events to JetStream;
(c) TrackPageView at 64 calls in flight: throughput, p50, p99.

The traffic: 10,000 visitors, about 10 page views each (so about 1 in 10 starts a visit
and is enriched), 60 user agents, 5,000 public addresses, search referrers on landing
pages, utm tags on a third of them. The service runs in a process of its own; this
process is only the client. Needs KAIWA_DATABASE_URL and KAIWA_NATS_URL (`make bench`).
Goals on this 2-core machine: (b) at least 20,000 page views/s; (c) p99 under 30 ms.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid

import grpc

from kaiwa_common.app import run_on_service_loop

from bench.bench_conversation import closed_loop, server_process

SCHEMA = "bench_visitor"
VISITORS = 10_000
VIEWS = 100_000
BATCH = 1000
STREAMS = 4
UNARY_CALLS = 6000

SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{v} Mobile/15E148 Safari/604.1"
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.{v} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) " + SAFARI,
    "Mozilla/5.0 (Linux; Android 14; Pixel {v}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:1{v}.0) Gecko/20100101 Firefox/1{v}.0",
    "Mozilla/5.0 (iPad; CPU OS 17_{v} like Mac OS X) " + SAFARI,
]
REFERRERS = [
    "https://www.google.co.jp/search?q=%E9%9D%B4+%E9%80%9A%E8%B2%A9",
    "https://search.yahoo.co.jp/search?p=sneakers",
    "https://www.bing.com/search?q=running+shoes",
    "https://news.example.org/article/42",
    "",
]


def traffic(seed: int = 9) -> list[tuple]:
    """(visitor_id, url, title, referrer, user_agent, ip) in arrival order."""
    rng = random.Random(seed)
    agents = [b.format(v=v) for b in BROWSERS for v in range(10)]
    firsts = [1, 8, 24, 41, 58, 81, 103, 126, 133, 150, 180, 203, 210, 220]
    ips = [f"{rng.choice(firsts)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(5000)]
    people = [(str(uuid.uuid4()), rng.choice(agents), rng.choice(ips)) for _ in range(VISITORS)]
    views, seen = [], set()
    for _ in range(VIEWS):
        visitor_id, agent, ip = rng.choice(people)
        first = visitor_id not in seen
        seen.add(visitor_id)
        url = f"https://shop.example.co.jp/item/{rng.randrange(500)}"
        if first and rng.random() < 0.33:
            url += "?utm_source=newsletter&utm_medium=email&utm_campaign=autumn"
        referrer = rng.choice(REFERRERS) if first else "https://shop.example.co.jp/"
        views.append((visitor_id, url, f"Item {rng.randrange(500)}", referrer, agent, ip))
    return views


# --- the service (a subprocess) ---------------------------------------------------------


async def serve_visitor(port: int) -> None:
    from kaiwa_common.app import ServiceRunner
    from kaiwa_common.config import Settings
    from kaiwa_visitor.main import make_spec

    runner = await ServiceRunner(make_spec(schema=SCHEMA), Settings(), port=port, schema=SCHEMA).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.stop()


# --- (a) baseline -----------------------------------------------------------------------


async def bench_copy(views: list[tuple]) -> float:
    import asyncpg

    conn = await asyncpg.connect(os.environ["KAIWA_DATABASE_URL"])
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS bench_copy_page_views; CREATE TABLE bench_copy_page_views (tenant text NOT NULL, "
            "id uuid NOT NULL, visitor_id uuid NOT NULL, visit_id uuid NOT NULL, url text NOT NULL, title text NOT NULL, "
            "referrer text NOT NULL, user_agent text NOT NULL, ip inet, landing boolean NOT NULL, "
            "viewed_at timestamptz NOT NULL, PRIMARY KEY (tenant, id))"
        )
        from datetime import datetime, timezone
        from ipaddress import ip_address

        now = datetime.now(timezone.utc)
        rows = [
            ("bench", uuid.uuid4(), uuid.UUID(v), uuid.UUID(v), url, title, ref, ua, ip_address(ip), False, now)
            for v, url, title, ref, ua, ip in views
        ]
        began = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            await conn.copy_records_to_table("bench_copy_page_views", records=rows[i : i + BATCH])
        elapsed = time.perf_counter() - began
        await conn.execute("DROP TABLE bench_copy_page_views")
        return len(rows) / elapsed
    finally:
        await conn.close()


# --- (b), (c) through the service -------------------------------------------------------


def _metadata(tenant: str, role: str, sub: str):
    from kaiwa_common.auth import mint_token
    from kaiwa_common.config import Settings

    return (("authorization", f"Bearer {mint_token(Settings(), tenant, role, sub)}"),)


async def bench_stream(address: str, views: list[tuple]) -> dict:
    from kaiwa.visitor.v1 import visitor_pb2 as pb
    from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    gateway = _metadata(tenant, "service", "gateway")
    messages = [
        pb.TrackEventsRequest(
            events=[
                pb.TrackedEvent(
                    page_view=pb.TrackPageViewRequest(
                        visitor_id=v, url=u, title=t, referrer=r, user_agent=a, ip=ip, language="ja-JP"
                    )
                )
                for v, u, t, r, a, ip in views[i : i + BATCH]
            ]
        )
        for i in range(0, len(views), BATCH)
    ]
    per_stream = [messages[i::STREAMS] for i in range(STREAMS)]
    async with grpc.aio.insecure_channel(address) as channel:
        stub = VisitorServiceStub(channel)

        async def one_stream(chunk):
            async def requests():
                for m in chunk:
                    yield m

            return await stub.TrackEvents(requests(), metadata=gateway)

        warm = views[:1]
        await stub.TrackPageView(pb.TrackPageViewRequest(visitor_id=warm[0][0], url=warm[0][1]), metadata=gateway)
        began = time.perf_counter()
        replies = await asyncio.gather(*(one_stream(c) for c in per_stream))
        elapsed = time.perf_counter() - began
    accepted = sum(r.accepted for r in replies)
    drained = await wait_for_outbox(began)
    return {
        "rate": accepted / elapsed,
        "accepted": accepted,
        "errors": sum(len(r.errors) for r in replies),
        "seconds": elapsed,
        "drained": drained,
    }


async def wait_for_outbox(began: float) -> float:
    """Seconds from the start of the run until the relay has published every event."""
    import asyncpg

    conn = await asyncpg.connect(os.environ["KAIWA_DATABASE_URL"])
    try:
        while await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox"):
            await asyncio.sleep(0.1)
        return time.perf_counter() - began
    finally:
        await conn.close()


async def bench_unary(address: str, views: list[tuple]) -> dict:
    from kaiwa.visitor.v1 import visitor_pb2 as pb
    from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    gateway = _metadata(tenant, "service", "gateway")
    visitors = [str(uuid.uuid4()) for _ in range(64)]
    async with grpc.aio.insecure_channel(address) as channel:
        stub = VisitorServiceStub(channel)

        def call(w: int):
            _, url, title, referrer, agent, ip = views[random.randrange(len(views))]
            request = pb.TrackPageViewRequest(
                visitor_id=visitors[w], url=url, title=title, referrer=referrer, user_agent=agent, ip=ip
            )
            return stub.TrackPageView(request, metadata=gateway)

        return await closed_loop(call, 64, UNARY_CALLS)


async def main() -> None:
    views = traffic()
    landings = len({v[0] for v in views})
    print(f"{len(views):,} page views of {VISITORS:,} visitors ({landings:,} visits enriched), {BATCH} per stream message")
    copy_rate = await bench_copy(views)
    with server_process_visitor() as address:
        stream = await bench_stream(address, views)
        unary = await bench_unary(address, views)
    print(f"  (a) baseline copy_records_to_table, same rows       {copy_rate:>9,.0f} rows/s")
    print(
        f"  (b) TrackEvents, {STREAMS} streams                          {stream['rate']:>9,.0f} page views/s "
        f"({stream['accepted']:,} accepted, {stream['errors']} refused, {stream['seconds']:.2f} s; "
        f"{stream['rate'] / copy_rate:.0%} of (a); goal >= 20,000/s)"
    )
    print(f"      outbox relay published all {stream['accepted']:,} page_viewed events {stream['drained']:.2f} s after the start")
    print(
        f"  (c) TrackPageView, 64 in flight                     {unary['rps']:>9,.0f} calls/s      "
        f"p50 {unary['p50']:.2f} ms   p99 {unary['p99']:.2f} ms (goal p99 < 30 ms)"
    )


def server_process_visitor():
    return server_process("serve-visitor", "bench.bench_visitor")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve-visitor":
        run_on_service_loop(serve_visitor(int(sys.argv[2])))
    else:
        asyncio.run(main())
