"""Service bootstrap: pool, bus, migrations, gRPC server with health and reflection,
background workers (outbox relay, consumers, timers), graceful shutdown.

A service describes itself with a ServiceSpec; ServiceRunner does the rest. Health is
NOT_SERVING until PostgreSQL and NATS are ready; on SIGTERM it goes NOT_SERVING, stops
accepting, lets in-flight calls finish, stops the workers and drains NATS.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Coroutine

import asyncpg
import grpc
import nats
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .auth import mint_token
from .config import Settings
from .consumer import ConsumerSpec, EventConsumer
from .db import connect_with_retry
from .events import ensure_streams
from .interceptor import KaiwaInterceptor
from .logs import setup_logging
from .metrics import Metrics
from .migrations import migrate
from .outbox import Outbox, OutboxRelay
from .retention import retention_period, run_pruning
from .telemetry import client_interceptors, setup_tracing
from .timers import TimerHandler, TimerRunner

log = logging.getLogger("kaiwa.app")


@dataclass
class ServiceContext:
    """What a service's handlers get: the pool, the bus, its outbox, clients to peers."""

    name: str
    settings: Settings
    # Filled in once PostgreSQL and NATS are up; the interceptor admits no call before.
    pool: asyncpg.Pool | None = None
    nc: nats.NATS | None = None
    js: object = None
    outbox: Outbox | None = None
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            self._channels[service] = grpc.aio.insecure_channel(
                self.settings.address(service), interceptors=client_interceptors()
            )
        return self._channels[service]

    def service_metadata(self, tenant: str) -> tuple[tuple[str, str]]:
        """Credentials for calling another service on behalf of a tenant."""
        token = mint_token(self.settings, tenant, "service", self.name, ttl_seconds=300)
        return (("authorization", f"Bearer {token}"),)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


@dataclass
class ServiceSpec:
    name: str  # e.g. "conversation"
    schema: str  # PostgreSQL schema it owns
    migrations: Path | None
    grpc_services: list[str]  # full names, for health and reflection
    policy: dict[str, set[str] | str]  # method -> roles allowed (or PUBLIC)
    add_servicers: Callable[[grpc.aio.Server, ServiceContext], None]
    consumers: Callable[[ServiceContext], list[ConsumerSpec]] = lambda ctx: []
    timers: Callable[[ServiceContext], dict[str, TimerHandler]] = lambda ctx: {}
    workers: Callable[[ServiceContext], list[Callable[[asyncio.Event], object]]] = lambda ctx: []


async def _nats_error(exc: Exception) -> None:
    # One line instead of nats-py's traceback on every reconnect attempt.
    log.warning("NATS connection error", extra={"fields": {"error": repr(exc)}})


async def _nats_disconnected() -> None:
    log.warning("NATS disconnected; reconnecting")


async def _nats_reconnected() -> None:
    log.info("NATS reconnected")


class ServiceRunner:
    def __init__(
        self,
        spec: ServiceSpec,
        settings: Settings | None = None,
        port: int | None = None,
        schema: str | None = None,
        metrics_port: int | None = None,
    ):
        self.spec = spec
        self.settings = settings or Settings()
        self.requested_port = self.settings.port(spec.name) if port is None else port
        # Prometheus endpoint: KAIWA_<SVC>_METRICS_PORT / KAIWA_METRICS_PORT; 0 = none.
        self.metrics_port = self.settings.metrics_port(spec.name) if metrics_port is None else metrics_port
        self.metrics = Metrics(spec.name)
        self.schema = schema or spec.schema
        self.port: int | None = None
        self.ctx: ServiceContext | None = None
        self.ready = False
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()

    async def start(self) -> "ServiceRunner":
        setup_tracing(self.spec.name, settings=self.settings)
        # so_reuseport=0: a port already taken by another copy fails here instead of being
        # silently shared (gRPC's default would spread calls across both processes).
        self._server = grpc.aio.server(
            interceptors=[KaiwaInterceptor(self.settings, self.spec.policy, lambda: self.ready, self.metrics)],
            options=[("grpc.so_reuseport", 0)],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            [*self.spec.grpc_services, reflection.SERVICE_NAME, health.SERVICE_NAME], self._server
        )
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self.port = self._server.add_insecure_port(f"{self.settings.host}:{self.requested_port}")
        if not self.port:
            raise RuntimeError(f"{self.spec.name}: cannot listen on port {self.requested_port}")

        self.ctx = ServiceContext(self.spec.name, self.settings)
        self.spec.add_servicers(self._server, self.ctx)
        await self._server.start()  # health answers NOT_SERVING while we connect
        await self._connect(self.ctx)
        await self._start_workers(self.ctx)
        if self.metrics_port:
            self.metrics.serve(self.settings.host, self.metrics_port)
        self.ready = True
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("serving", extra={"fields": {"service": self.spec.name, "port": self.port}})
        return self

    async def _connect(self, ctx: ServiceContext) -> None:
        s = self.settings
        ctx.pool = await connect_with_retry(
            s.database_url,
            self.schema,
            self._stop,
            min_size=s.pool_min,
            max_size=s.pool_max,
            application_name=f"kaiwa-{self.spec.name}",
        )
        await migrate(ctx.pool, self.schema, self.spec.migrations)
        ctx.nc = await self._connect_nats()
        ctx.js = ctx.nc.jetstream()
        await ensure_streams(ctx.js, s.subject_prefix, s.stream_replicas)
        ctx.outbox = Outbox(self.spec.name, s.subject_prefix, self.schema)

    async def _connect_nats(self) -> nats.NATS:
        delay = 0.2
        while True:
            try:
                return await nats.connect(
                    self.settings.nats_url,
                    name=f"kaiwa-{self.spec.name}",
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    error_cb=_nats_error,
                    disconnected_cb=_nats_disconnected,
                    reconnected_cb=_nats_reconnected,
                )
            except Exception as exc:
                log.warning("NATS not reachable yet, retrying", extra={"fields": {"error": repr(exc)}})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)

    async def _start_workers(self, ctx: ServiceContext) -> None:
        relay = OutboxRelay(ctx.pool, ctx.js, ctx.outbox.channel, self.settings.database_url, metrics=self.metrics)
        loops = [relay.run]
        consumers = []
        for spec in self.spec.consumers(ctx):
            consumer = EventConsumer(ctx.pool, ctx.js, self.settings.subject_prefix, spec, metrics=self.metrics)
            await consumer.ensure()
            loops.append(consumer.run)
            consumers.append((consumer.stream, spec.name))
        self.metrics.sample_state(ctx.pool, ctx.js, consumers, asyncio.get_running_loop())
        timer_handlers = self.spec.timers(ctx)
        if timer_handlers:
            loops.append(TimerRunner(ctx.pool, timer_handlers, self.settings.timer_poll_interval).run)
        loops.append(
            partial(run_pruning, ctx.pool, retention_period(self.settings.retention_days), self.settings.retention_interval)
        )
        loops.extend(self.spec.workers(ctx))
        self._tasks = [asyncio.create_task(loop(self._stop)) for loop in loops]

    async def _set_health(self, status) -> None:
        for name in ["", *self.spec.grpc_services]:
            await self._health.set(name, status)

    async def stop(self, grace: float | None = None) -> None:
        self.ready = False
        await self._health.enter_graceful_shutdown()  # NOT_SERVING for good
        self._stop.set()
        self.metrics.close()
        if self._server is not None:
            await self._server.stop(self.settings.shutdown_grace if grace is None else grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ctx is not None:
            await self.ctx.close()
            if self.ctx.nc is not None:
                try:
                    await asyncio.wait_for(self.ctx.nc.drain(), 5)
                except Exception:
                    pass
            if self.ctx.pool is not None:
                try:
                    await asyncio.wait_for(self.ctx.pool.close(), 10)
                except Exception:  # a connection never came back: do not hang the shutdown
                    self.ctx.pool.terminate()
        log.info("stopped", extra={"fields": {"service": self.spec.name}})

    async def serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        starting = asyncio.create_task(self.start())
        stop_requested = asyncio.create_task(stopping.wait())
        await asyncio.wait({starting, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a failed start-up ends the process with its error
            await stop_requested
        else:  # SIGTERM while PostgreSQL or NATS is still out of reach: give up waiting
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        log.info("shutting down", extra={"fields": {"service": self.spec.name}})
        await self.stop()


def run(spec: ServiceSpec) -> None:
    """Entry point of a service process (its main.py)."""
    settings = Settings()
    setup_logging(spec.name, settings.log_level)
    if settings.uses_dev_secret:
        log.warning("KAIWA_JWT_SECRET is not set: using the development secret; never do this in production")
    run_on_service_loop(ServiceRunner(spec, settings).serve_forever(), settings)


def run_on_service_loop(main: Coroutine, settings: Settings | None = None) -> None:
    """Run `main` on the event loop the services use (KAIWA_EVENT_LOOP); benchmarks run
    their servers and baselines this way too, so both are measured on the same loop."""
    with asyncio.Runner(loop_factory=_loop_factory((settings or Settings()).event_loop)) as runner:
        runner.run(main)


def _loop_factory(name: str):
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if name != "asyncio":
        raise SystemExit(f"KAIWA_EVENT_LOOP must be asyncio or uvloop, not {name!r}")
    return None
