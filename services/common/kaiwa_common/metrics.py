"""Prometheus metrics of a service (PLAT-03), served over HTTP on its metrics port.

Counted as things happen (cheap: one dict lookup for the label children per call):
  kaiwa_rpc_handled_total{method,code}          calls finished, by full method and status
  kaiwa_rpc_duration_seconds{method,code}       their latency (histogram)
  kaiwa_outbox_published_total                  events the relay published
  kaiwa_consumer_redeliveries_total{consumer}   messages handled again (num_delivered > 1)
  kaiwa_consumer_dead_letters_total{consumer}   messages parked in dead_letters

Sampled at scrape time (a few indexed queries and JetStream consumer infos, each under a
timeout, label sets capped):
  kaiwa_outbox_backlog, kaiwa_outbox_oldest_age_seconds
  kaiwa_consumer_pending{consumer,stream}       JetStream num_pending (lag)
  kaiwa_consumer_ack_pending{consumer,stream}, kaiwa_consumer_redelivered{consumer,stream}
  kaiwa_dead_letters{consumer}                  rows parked and not yet replayed
  kaiwa_timers_due{kind}                        timers past their deadline, not yet fired
  kaiwa_routing_waiting_chats{tenant,department}, kaiwa_routing_oldest_wait_seconds{...}
                                                (routing only)
  kaiwa_metrics_sample_ok                       0 when the last sampling failed
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("kaiwa.metrics")

SAMPLE_TIMEOUT = 3.0  # seconds for all the scrape-time queries together
MAX_SERIES = 500  # label sets per sampled family
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def code_name(code) -> str:
    """A status code (grpc.StatusCode, its int, or None for a call that set none) by name."""
    if code is None:
        return "OK"
    if isinstance(code, grpc.StatusCode):
        return code.name
    return _CODE_NAMES.get(code, str(code))


@dataclass(frozen=True)
class SampledQuery:
    """A gauge read at scrape time: `sql` returns the label columns then the value column."""

    name: str
    help: str
    labels: tuple[str, ...]
    sql: str


# Service-specific gauges, by service name. A table that does not exist in the schema (a
# test service named like a real one) skips the gauge instead of failing the scrape.
SERVICE_QUERIES: dict[str, list[SampledQuery]] = {
    "routing": [
        SampledQuery(
            "kaiwa_routing_waiting_chats",
            "Chats waiting in the queue, by tenant and department.",
            ("tenant", "department"),
            "SELECT tenant, COALESCE(department_id::text, ''), count(*) FROM chats WHERE state = 'queued' "
            f"GROUP BY tenant, department_id ORDER BY count(*) DESC LIMIT {MAX_SERIES}",
        ),
        SampledQuery(
            "kaiwa_routing_oldest_wait_seconds",
            "Seconds the longest-waiting queued chat has waited, by tenant and department.",
            ("tenant", "department"),
            "SELECT tenant, COALESCE(department_id::text, ''), "
            "COALESCE(extract(epoch FROM now() - min(queued_at)), 0) FROM chats WHERE state = 'queued' "
            f"GROUP BY tenant, department_id ORDER BY 3 DESC LIMIT {MAX_SERIES}",
        ),
    ],
}


class Metrics:
    """One service's metrics, in a registry of its own (several services can share a
    process in tests)."""

    def __init__(self, service: str):
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rpc_handled = Counter(
            "kaiwa_rpc_handled", "RPCs finished, by method and status code.", ["method", "code"], registry=r
        )
        self.rpc_duration = Histogram(
            "kaiwa_rpc_duration_seconds",
            "RPC latency (whole stream for streaming calls), by method and status code.",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox_published = Counter("kaiwa_outbox_published", "Outbox events published to JetStream.", registry=r)
        self.redeliveries = Counter(
            "kaiwa_consumer_redeliveries", "Event deliveries after the first, by consumer.", ["consumer"], registry=r
        )
        self.dead_lettered = Counter(
            "kaiwa_consumer_dead_letters", "Events parked in dead_letters, by consumer.", ["consumer"], registry=r
        )
        self._rpc_children: dict[tuple[str, str], tuple] = {}
        self._server = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def rpc(self, method: str, code, seconds: float) -> None:
        key = (method, code_name(code))
        children = self._rpc_children.get(key)
        if children is None:
            children = self._rpc_children[key] = (self.rpc_handled.labels(*key), self.rpc_duration.labels(*key))
        children[0].inc()
        children[1].observe(seconds)

    def sample_state(self, pool, js, consumers: list[tuple[str, str]], loop: asyncio.AbstractEventLoop) -> None:
        """Adds the scrape-time gauges: the outbox, consumers, dead letters, timers."""
        self.registry.register(_StateCollector(self.service, pool, js, consumers, loop))

    def serve(self, host: str, port: int) -> int:
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = self._server.server_port
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _StateCollector(Collector):
    def __init__(self, service: str, pool, js, consumers: list[tuple[str, str]], loop: asyncio.AbstractEventLoop):
        self.pool = pool
        self.js = js
        self.consumers = consumers  # (stream, durable)
        self.loop = loop
        self.queries = SERVICE_QUERIES.get(service, [])

    def describe(self):
        return []  # sampled only when scraped

    def collect(self):
        ok = GaugeMetricFamily("kaiwa_metrics_sample_ok", "1 when the scrape-time sampling succeeded.")
        try:
            families = asyncio.run_coroutine_threadsafe(self._sample(), self.loop).result(SAMPLE_TIMEOUT + 1)
        except Exception as exc:  # the database or NATS away: say so, keep the counters
            log.warning("metrics sampling failed", extra={"fields": {"error": repr(exc)}})
            families = []
        ok.add_metric([], 1.0 if families else 0.0)
        yield from families
        yield ok

    async def _sample(self) -> list[GaugeMetricFamily]:
        return await asyncio.wait_for(self._gather(), SAMPLE_TIMEOUT)

    async def _gather(self) -> list[GaugeMetricFamily]:
        import asyncpg

        backlog = GaugeMetricFamily("kaiwa_outbox_backlog", "Outbox rows not yet published.")
        age = GaugeMetricFamily("kaiwa_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row (0 if none).")
        dead = GaugeMetricFamily("kaiwa_dead_letters", "Events parked in dead_letters, by consumer.", labels=["consumer"])
        due = GaugeMetricFamily("kaiwa_timers_due", "Timers past their deadline, not yet fired, by kind.", labels=["kind"])
        families = [backlog, age, dead, due]
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, COALESCE(extract(epoch FROM now() - min(created_at)), 0) AS age FROM outbox"
            )
            backlog.add_metric([], row["n"])
            age.add_metric([], float(row["age"]))
            for r in await conn.fetch(f"SELECT consumer, count(*) FROM dead_letters GROUP BY consumer LIMIT {MAX_SERIES}"):
                dead.add_metric([r[0]], r[1])
            for r in await conn.fetch(
                f"SELECT kind, count(*) FROM timers WHERE due_at <= now() GROUP BY kind LIMIT {MAX_SERIES}"
            ):
                due.add_metric([r[0]], r[1])
            for query in self.queries:
                family = GaugeMetricFamily(query.name, query.help, labels=list(query.labels))
                try:
                    rows = await conn.fetch(query.sql)
                except asyncpg.UndefinedTableError:
                    continue
                for r in rows:
                    family.add_metric([str(v) for v in list(r)[:-1]], float(r[-1]))
                families.append(family)
        labels = ["consumer", "stream"]
        pending = GaugeMetricFamily("kaiwa_consumer_pending", "JetStream messages not yet delivered (lag).", labels=labels)
        ack_pending = GaugeMetricFamily("kaiwa_consumer_ack_pending", "Messages delivered, not yet acked.", labels=labels)
        redelivered = GaugeMetricFamily("kaiwa_consumer_redelivered", "Messages now redelivered at least once.", labels=labels)
        for stream, durable in self.consumers:
            info = await self.js.consumer_info(stream, durable)
            pending.add_metric([durable, stream], info.num_pending or 0)
            ack_pending.add_metric([durable, stream], info.num_ack_pending or 0)
            redelivered.add_metric([durable, stream], info.num_redelivered or 0)
        families += [pending, ack_pending, redelivered]
        return families
