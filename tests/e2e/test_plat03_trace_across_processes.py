"""PLAT-03 across processes: one trace follows a chat from the gateway through
conversation, the outbox relay, NATS and the consumers in routing and crm_bridge.

The five services and Envoy run as their own processes (tests/e2e/suite.py), each
exporting spans over OTLP/gRPC (OTEL_EXPORTER_OTLP_ENDPOINT) to a small OTLP
TraceService this test runs itself. Envoy emits no span of its own (no tracer is
configured); it passes the W3C `traceparent` header through, so the trace starts at the
client (a browser or an edge tracer would set it the same way) and the span Envoy
forwards to is conversation's SERVER span.
"""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.e2e.suite import Suite
from tests.fixtures import eventually, token

pytestmark = pytest.mark.asyncio(loop_scope="session")

SERVER, PRODUCER, CONSUMER = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_PRODUCER, Span.SPAN_KIND_CONSUMER


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver keeping (service.name, span) for every span exported.

    A synchronous server on its own threads: it answers the services' exporters at once
    even while the test's event loop is busy (an export that times out loses its spans)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []
        self._lock = threading.Lock()

    def Export(self, request, context):  # noqa: N802 (the generated name)
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), "")
            with self._lock:
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend((service, span) for span in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: bytes) -> list[tuple[str, Span]]:
        with self._lock:
            return [(service, span) for service, span in self.spans if span.trace_id == trace_id]


def _attribute(span: Span, key: str) -> str:
    return next((a.value.string_value for a in span.attributes if a.key == key), "")


@pytest.fixture(scope="module")
async def traced():
    """The receiver, then the suite (services and gateway) exporting to it."""
    receiver = Receiver()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
            env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            env.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # ms: spans arrive while we wait
            env.delenv("OTEL_SERVICE_NAME", raising=False)  # each process names itself
            env.setenv("KAIWA_TRACE_SQL", "0")  # fewer spans; SQL spans are covered in-process
            async with Suite.start(gateway=True) as suite:
                env.undo()
                yield suite, receiver
    finally:
        server.stop(grace=None)


def _traceparent(trace_id: bytes) -> dict[str, str]:
    """A fresh client span in `trace_id`, as a browser's tracer would send it."""
    return {"traceparent": f"00-{trace_id.hex()}-{secrets.token_hex(8)}-01"}


async def _ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


async def test_plat03_one_trace_follows_a_chat_across_processes(traced, tenant):
    suite, receiver = traced
    trace_id = secrets.token_bytes(16)
    admin = {"authorization": f"Bearer {token(tenant, 'admin', 'admin@example.com')}"}
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=30) as http:
        sales = await _ok(await http.post("/v1/departments", json={"name": "Sales"}, headers=admin))
        key = await _ok(await http.post("/v1/widgetKeys", json={"label": "site"}, headers=admin))
        issued = await _ok(await http.post("/v1/visitorTokens", json={"widgetKey": key["key"]}))
        as_visitor = {"authorization": f"Bearer {issued['token']}"}

        start_headers = {**as_visitor, **_traceparent(trace_id)}
        chat = await _ok(
            await http.post(
                "/v1/chats",
                json={"channel": "CHANNEL_WEB", "departmentId": sales["id"], "question": "Do you ship to Osaka?"},
                headers=start_headers,
            )
        )
        start_parent = bytes.fromhex(start_headers["traceparent"].split("-")[2])

        def one(service: str, kind, name_part: str, attribute: tuple[str, str] | None = None) -> Span | None:
            found = [
                span
                for who, span in receiver.trace(trace_id)
                if who == service
                and span.kind == kind
                and name_part in span.name
                and (attribute is None or _attribute(span, attribute[0]) == attribute[1])
            ]
            assert len(found) <= 1, [(who, s.name) for who, s in receiver.trace(trace_id)]
            return found[0] if found else None

        def published_by_conversation(child: Span | None) -> bool:
            return child is not None and any(
                s.span_id == child.parent_span_id for who, s in receiver.trace(trace_id) if who == "conversation"
            )

        async def chat_started_exported():
            # Each process exports on its own schedule: wait for every span the checks read.
            routing_span = one("routing", CONSUMER, "consume chat_started")
            return (
                one("conversation", SERVER, "kaiwa.conversation.v1.ConversationService/StartChat")
                and published_by_conversation(routing_span)
                and one("crm_bridge", CONSUMER, "consume chat_started")
            )

        await eventually(chat_started_exported, "StartChat, its publish and both consumers' spans exported", timeout=30)
        started = one("conversation", SERVER, "kaiwa.conversation.v1.ConversationService/StartChat")
        assert started is not None, [(who, s.name) for who, s in receiver.trace(trace_id)]
        assert started.parent_span_id == start_parent  # the gateway forwarded the caller's context
        publishes = [s for who, s in receiver.trace(trace_id) if who == "conversation" and s.kind == PRODUCER]
        routing_consume = one("routing", CONSUMER, "consume chat_started")
        crm_consume = one("crm_bridge", CONSUMER, "consume chat_started")
        # The relay's publish of chat_started is a child of StartChat; each consumer's span
        # is a child of that publish (its context came in the NATS headers).
        [publish] = [p for p in publishes if p.span_id == routing_consume.parent_span_id]
        assert publish.parent_span_id == started.span_id
        assert crm_consume.parent_span_id == publish.span_id
        assert _attribute(publish, "messaging.message.id") == _attribute(routing_consume, "messaging.message.id")

        # The visitor leaves: EndChat in the same trace, on to crm_bridge's chat_ended play.
        end_headers = {**as_visitor, **_traceparent(trace_id)}
        await _ok(await http.post(f"/v1/chats/{chat['id']}:end", json={}, headers=end_headers))
        end_parent = bytes.fromhex(end_headers["traceparent"].split("-")[2])

        async def chat_ended_exported():
            consumed = one("crm_bridge", CONSUMER, "consume chat_ended")
            ended_span = one("conversation", SERVER, "kaiwa.conversation.v1.ConversationService/EndChat")
            return consumed if ended_span is not None and published_by_conversation(consumed) else None

        crm_ended = await eventually(chat_ended_exported, "EndChat, its publish and crm_bridge's span exported", timeout=30)
        ended = one("conversation", SERVER, "kaiwa.conversation.v1.ConversationService/EndChat")
        assert ended is not None and ended.parent_span_id == end_parent
        [end_publish] = [
            s for who, s in receiver.trace(trace_id) if who == "conversation" and s.span_id == crm_ended.parent_span_id
        ]
        assert end_publish.kind == PRODUCER and end_publish.parent_span_id == ended.span_id
    # Every process that took part is in the one trace.
    assert {who for who, _ in receiver.trace(trace_id)} >= {"conversation", "routing", "crm_bridge"}
