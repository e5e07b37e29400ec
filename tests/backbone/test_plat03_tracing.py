"""PLAT-03 (foundation item 3): one trace follows a gRPC call into the outbox event, the
relay's publish and on into the consumer's span and its database work; streaming calls
and timer firings are traced too."""

from __future__ import annotations

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kaiwa_common.app import ServiceRunner
from kaiwa_common.config import Settings
from kaiwa_common.db import unit_of_work
from kaiwa_common.telemetry import client_interceptors, setup_tracing, tracer
from kaiwa_common.timers import schedule
from tests.backbone.support import BackboneClient
from tests.backbone.worker import TIMER_KIND, build_spec
from tests.fixtures import auth, eventually

Kind = trace.SpanKind


async def test_plat03_trace_follows_grpc_call_through_outbox_into_consumer(names, tenant):
    exporter = InMemorySpanExporter()
    setup_tracing("backbone-trace-test", extra_processor=SimpleSpanProcessor(exporter))
    schema = names["producer"]
    runner = await ServiceRunner(
        build_spec(schema, consumer=names["durable"], timers=True), Settings(subject_prefix=names["prefix"]), port=0
    ).start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runner.port}", interceptors=client_interceptors()) as channel:
            client = BackboneClient(channel, auth(tenant, "agent", "a1"))
            with tracer("test").start_as_current_span("agent clicks send") as root:
                event_id = (await client.write("traced")).value
        trace_id = root.get_span_context().trace_id

        def consumer_spans():
            return [
                s
                for s in exporter.get_finished_spans()
                if s.kind == Kind.CONSUMER and s.attributes.get("messaging.message.id") == event_id
            ]

        async def consumed():
            return consumer_spans() and await runner.ctx.pool.fetchval(
                "SELECT count(*) FROM applied WHERE event_id = $1", event_id
            )

        await eventually(consumed, "the event to be consumed")
        spans = {s.context.span_id: s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id}

        def one(kind, name_part: str):
            found = [s for s in spans.values() if s.kind == kind and name_part in s.name]
            assert len(found) == 1, (kind, name_part, [(s.kind, s.name) for s in spans.values()])
            return found[0]

        client_span = one(Kind.CLIENT, "/kaiwa.backbone.v1.Backbone/Write")
        server_span = one(Kind.SERVER, "kaiwa.backbone.v1.Backbone/Write")
        publish_span = one(Kind.PRODUCER, "publish")
        consumer_span = one(Kind.CONSUMER, "consume agent_availability_changed")
        assert client_span.parent.span_id == root.get_span_context().span_id
        assert server_span.parent.span_id == client_span.context.span_id
        assert publish_span.parent.span_id == server_span.context.span_id
        assert consumer_span.parent.span_id == publish_span.context.span_id
        assert consumer_span.attributes["messaging.consumer"] == names["durable"]

        # asyncpg spans: the outbox insert under the server span, the effect under the consumer's.
        def db_children(parent, table: str):
            return [
                s
                for s in spans.values()
                if s.parent
                and s.parent.span_id == parent.context.span_id
                and table in str(s.attributes.get("db.statement", s.attributes.get("db.query.text", "")))
            ]

        assert db_children(server_span, "INSERT INTO outbox")
        assert db_children(server_span, "INSERT INTO notes")
        assert db_children(consumer_span, "INSERT INTO applied")

        # A server-streaming call through the instrumented client channel is one trace too.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runner.port}", interceptors=client_interceptors()) as channel:
            client = BackboneClient(channel, auth(tenant, "agent", "a1"))
            with tracer("test").start_as_current_span("agent watches") as watch_root:
                assert await client.count(3) == [0, 1, 2]
        streamed = [s for s in exporter.get_finished_spans() if s.context.trace_id == watch_root.get_span_context().trace_id]
        assert {(s.kind, s.name) for s in streamed} >= {
            (Kind.CLIENT, "/kaiwa.backbone.v1.Backbone/Count"),
            (Kind.SERVER, "kaiwa.backbone.v1.Backbone/Count"),
        }

        # A timer's firing is a span, so whatever its handler writes is traced from there.
        async with unit_of_work(runner.ctx.pool) as conn:
            await schedule(conn, tenant, TIMER_KIND, f"{tenant}-traced", delay=0)

        def timer_spans():
            return [
                s
                for s in exporter.get_finished_spans()
                if s.name == f"timer {TIMER_KIND}" and s.attributes.get("kaiwa.timer.key") == f"{tenant}-traced"
            ]

        async def timer_traced():
            return timer_spans()

        [timer_span] = await eventually(timer_traced, "the timer to fire")
        assert any(
            s.parent
            and s.parent.span_id == timer_span.context.span_id
            and "timer_fired" in str(s.attributes.get("db.statement", ""))
            for s in exporter.get_finished_spans()
        )
    finally:
        await runner.stop(grace=1)
        exporter.shutdown()  # the processor stays registered; it keeps nothing from now on
        exporter.clear()
