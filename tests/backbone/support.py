"""Helpers for the backbone tests: the test service as an OS process, and queries that count what the consumer applied."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kaiwa_common.devservers import free_port
from tests.fixtures import eventually

WORKER = Path(__file__).with_name("worker.py")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def unique(prefix: str) -> str:
    """A fresh name for a schema, subject prefix or durable consumer."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class WorkerProcess:
    """tests/backbone/worker.py as a separate process on a free port."""

    def __init__(
        self,
        log_dir: Path,
        *,
        label: str,
        schema: str,
        database_url: str,
        nats_url: str,
        prefix: str,
        consumer: str | None = None,
        ack_wait: float = 2.0,
        timers: bool = False,
    ):
        self.label = label
        self.log_path = Path(log_dir) / f"{label}.log"
        self.port = free_port()
        self.env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "KAIWA_", "BB_"))}
        self.env.update(
            {
                "KAIWA_DATABASE_URL": database_url,
                "KAIWA_NATS_URL": nats_url,
                "KAIWA_SUBJECT_PREFIX": prefix,
                "KAIWA_ROUTING_PORT": str(self.port),
                "KAIWA_JWT_SECRET": os.environ.get("KAIWA_JWT_SECRET", "kaiwa-test-secret"),
                "KAIWA_TIMER_POLL": "0.05",
                "KAIWA_SHUTDOWN_GRACE": "5",
                "KAIWA_DB_POOL_MIN": "1",
                "KAIWA_DB_POOL_MAX": "6",
                "BB_SCHEMA": schema,
                "BB_CONSUMER": consumer or "",
                "BB_ACK_WAIT": str(ack_wait),
                "BB_TIMERS": "1" if timers else "0",
            }
        )
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "WorkerProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], env=self.env, stdout=log, stderr=log, start_new_session=True)
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def health(self, service: str = "") -> int | None:
        """The health status, or None while the server does not answer."""
        async with grpc.aio.insecure_channel(self.address) as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
            except grpc.aio.AioRpcError:
                return None
        return reply.status

    async def wait_health(self, status: int, timeout: float = 30.0) -> None:
        async def probe():
            if not self.running:
                raise AssertionError(f"{self.label} exited ({self.proc.returncode}):\n{self.log_tail()}")
            return await self.health() == status

        try:
            await eventually(
                probe, f"{self.label} health {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}", timeout=timeout
            )
        except AssertionError:
            print(self.log_tail())
            raise

    async def start_serving(self, timeout: float = 30.0) -> "WorkerProcess":
        self.start()
        await self.wait_health(SERVING, timeout)
        return self

    def kill(self) -> None:
        """kill -9: no shutdown code of ours runs."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    async def wait_exit(self, timeout: float = 20.0) -> int:
        async def exited():
            return self.proc.poll() is not None

        await eventually(exited, f"{self.label} to exit", timeout=timeout)
        return self.proc.returncode

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


async def applied_counts(conn: asyncpg.Connection, schema: str, tenant: str | None = None) -> Counter[str]:
    """How many times the consumer applied each event id."""
    rows = await conn.fetch(
        f'SELECT event_id, count(*) AS n FROM "{schema}".applied WHERE $1::text IS NULL OR tenant = $1 GROUP BY event_id', tenant
    )
    return Counter({r["event_id"]: r["n"] for r in rows})


async def table_count(conn: asyncpg.Connection, schema: str, table: str) -> int:
    return await conn.fetchval(f'SELECT count(*) FROM "{schema}".{table}')


def assert_exactly_once(counts: Counter[str], expected_ids: list[str]) -> None:
    doubled = {event_id: n for event_id, n in counts.items() if n != 1}
    missing = set(expected_ids) - set(counts)
    unexpected = set(counts) - set(expected_ids)
    assert not doubled, f"{len(doubled)} events applied more than once, e.g. {list(doubled.items())[:3]}"
    assert not missing, f"{len(missing)} events never applied"
    assert not unexpected, f"{len(unexpected)} unknown events applied"
    assert len(expected_ids) == len(set(expected_ids))


async def wait_consumer_settled(nats_url: str, prefix: str, durable: str, source: str = "routing", timeout: float = 30.0) -> None:
    """Waits until the durable consumer has nothing pending and nothing unacknowledged,
    so no late redelivery can still change what was applied."""
    import nats

    from kaiwa_common.events import stream_name

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()

        async def settled() -> bool:
            info = await js.consumer_info(stream_name(prefix, source), durable)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await eventually(settled, f"consumer {durable} to settle", timeout=timeout)
    finally:
        await nc.close()


class BackboneClient:
    """Calls the test service's gRPC API (kaiwa.backbone.v1.Backbone) with a given identity."""

    def __init__(self, channel: grpc.aio.Channel, metadata=()):
        from google.protobuf import empty_pb2, wrappers_pb2

        def method(name: str, response):
            return channel.unary_unary(
                f"/kaiwa.backbone.v1.Backbone/{name}",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response.FromString,
            )

        self.metadata = tuple(metadata)
        self._wrappers, self._empty = wrappers_pb2, empty_pb2
        self._write = method("Write", wrappers_pb2.StringValue)
        self._whoami = method("Whoami", wrappers_pb2.StringValue)
        self._slow = method("Slow", empty_pb2.Empty)
        self._ping = method("Ping", empty_pb2.Empty)
        self._unlisted = method("Unlisted", empty_pb2.Empty)
        self._count, self._countdown = (
            channel.unary_stream(
                f"/kaiwa.backbone.v1.Backbone/{name}",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=wrappers_pb2.Int64Value.FromString,
            )
            for name in ("Count", "Countdown")
        )

    def write(self, note: str, timeout: float = 10.0, metadata=None):
        return self._write(
            self._wrappers.StringValue(value=note), timeout=timeout, metadata=self.metadata if metadata is None else metadata
        )

    def whoami(self, metadata=None, timeout: float = 5.0):
        return self._whoami(self._empty.Empty(), timeout=timeout, metadata=self.metadata if metadata is None else metadata)

    def slow(self, seconds: float, timeout: float = 30.0):
        return self._slow(self._wrappers.DoubleValue(value=seconds), timeout=timeout, metadata=self.metadata)

    def ping(self, timeout: float = 5.0):
        return self._ping(self._empty.Empty(), timeout=timeout)

    def unlisted(self, timeout: float = 5.0):
        return self._unlisted(self._empty.Empty(), timeout=timeout, metadata=self.metadata)

    async def count(self, n: int, countdown: bool = False, metadata=None) -> list[int]:
        """Reads a whole server stream (Count, or Countdown)."""
        method = self._countdown if countdown else self._count
        call = method(self._wrappers.Int64Value(value=n), timeout=5, metadata=self.metadata if metadata is None else metadata)
        return [reply.value async for reply in call]


async def rpc_code(call) -> grpc.StatusCode:
    """The status code of a call (OK when it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK
