"""OpenTelemetry: one tracer provider per process; gRPC, asyncpg and NATS carry the trace.

Spans are exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise they are
still created (so trace ids appear in logs and propagate) but not exported.
"""

from __future__ import annotations

import functools

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanProcessor

from .config import Settings

_configured = False


def setup_tracing(service: str, extra_processor: SpanProcessor | None = None, settings: Settings | None = None) -> None:
    """Idempotent: several services may share one process in tests."""
    global _configured
    if _configured:
        if extra_processor is not None:
            trace.get_tracer_provider().add_span_processor(extra_processor)
        return
    settings = settings or Settings()
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name or service}))
    if settings.otel_exporter_endpoint:  # the exporter reads OTEL_EXPORTER_OTLP_* itself
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if extra_processor is not None:
        provider.add_span_processor(extra_processor)
    trace.set_tracer_provider(provider)
    if settings.trace_sql:  # a span per query costs ~10% at load
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument()
    _configured = True


@functools.cache
def tracer(name: str = "kaiwa") -> trace.Tracer:
    """One tracer per name for the process (getting one per call cost ~3% of an RPC). Safe
    to keep from before setup_tracing: a tracer got early forwards to the provider set later."""
    return trace.get_tracer(name)


def client_interceptors():
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return aio_client_interceptors()


def current_trace_context() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: dict[str, str]) -> context.Context:
    return propagate.extract(dict(carrier))
