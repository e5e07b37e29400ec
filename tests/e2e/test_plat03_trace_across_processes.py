"""PLAT-03 across processes: one trace follows a chat from the gateway through
conversation, the outbox relay, NATS and the consumers in routing and crm_bridge.

The five services and Envoy run as their own processes (tests/e2e/suite.py), each
exporting spans over OTLP/gRPC to a small OTLP TraceService this test runs itself: the
services because OTEL_EXPORTER_OTLP_ENDPOINT points at it, Envoy because
kaiwa_common.devgateway.render_gateway then configures its OpenTelemetry tracer for the same
endpoint. A request arriving without trace context starts its trace at the gateway's
span; one arriving with a W3C `traceparent` (a browser's tracer) continues that trace.
The gateway's span is found by the x-request-id Envoy returns with every response.
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
START_CHAT = "kaiwa.conversation.v1.ConversationService/StartChat"
END_CHAT = "kaiwa.conversation.v1.ConversationService/EndChat"


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver keeping (service.name, span) for every span exported.

    A synchronous server on its own threads: it answers the exporters at once even while
    the test's event loop is busy (an export that times out loses its spans)."""

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

    def gateway_span(self, request_id: str) -> Span | None:
        """Envoy's span of the request it answered with this x-request-id."""
        with self._lock:
            found = [s for who, s in self.spans if who == "gateway" and _attribute(s, "guid:x-request-id") == request_id]
        assert len(found) <= 1, found
        return found[0] if found else None

    def one(self, trace_id: bytes, service: str, kind, name_part: str) -> Span | None:
        """The span of `service` in the trace of that kind whose name contains `name_part`."""
        found = [s for who, s in self.trace(trace_id) if who == service and s.kind == kind and name_part in s.name]
        assert len(found) <= 1, self.names(trace_id)
        return found[0] if found else None

    def child_of(self, parent: Span, service: str, kind, name_part: str) -> Span | None:
        child = self.one(parent.trace_id, service, kind, name_part)
        return child if child is not None and child.parent_span_id == parent.span_id else None

    def parent_of(self, span: Span | None) -> Span | None:
        if span is None:
            return None
        return next((s for _, s in self.trace(span.trace_id) if s.span_id == span.parent_span_id), None)

    def names(self, trace_id: bytes) -> list[tuple[str, str]]:
        return [(who, s.name) for who, s in self.trace(trace_id)]


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


async def _ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


async def _gateway_span(receiver: Receiver, response: httpx.Response) -> Span:
    request_id = response.headers["x-request-id"]
    return await eventually(lambda: receiver.gateway_span(request_id), f"the gateway's span of request {request_id}")


async def _published_and_consumed(receiver: Receiver, rpc: Span, consumers: dict[str, str]) -> dict[str, Span]:
    """Each consumer's CONSUMER span (by service: the event name) under the relay's
    PRODUCER span of that event, which is a child of `rpc` (the consumers' context came in
    the NATS headers). Waits for every span: each process exports on its own schedule."""

    def found() -> dict[str, Span] | None:
        spans = {}
        for service, event in consumers.items():
            consumed = receiver.one(rpc.trace_id, service, CONSUMER, f"consume {event}")
            publish = receiver.parent_of(consumed)
            if publish is None or publish.kind != PRODUCER or publish.parent_span_id != rpc.span_id:
                return None
            assert _attribute(publish, "messaging.message.id") == _attribute(consumed, "messaging.message.id")
            spans[service] = consumed
        return spans

    return await eventually(found, f"{sorted(consumers.items())} consumed under {rpc.name}'s publish", timeout=30)


async def test_plat03_the_gateway_starts_the_trace_that_follows_a_chat_across_processes(traced, tenant):
    suite, receiver = traced
    admin = {"authorization": f"Bearer {token(tenant, 'admin', 'admin@example.com')}"}
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=30) as http:
        sales = await _ok(await http.post("/v1/departments", json={"name": "Sales"}, headers=admin))
        key = await _ok(await http.post("/v1/widgetKeys", json={"label": "site"}, headers=admin))
        issued = await _ok(await http.post("/v1/visitorTokens", json={"widgetKey": key["key"]}))
        as_visitor = {"authorization": f"Bearer {issued['token']}"}
        question = {"channel": "CHANNEL_WEB", "departmentId": sales["id"], "question": "Do you ship to Osaka?"}
        started = await http.post("/v1/chats", json=question, headers=as_visitor)  # no trace context
        chat = await _ok(started)

        # The trace starts at the gateway: its SERVER span has no parent, and conversation's
        # StartChat is its direct child.
        gateway = await _gateway_span(receiver, started)
        assert gateway.parent_span_id == b"" and gateway.kind == SERVER, gateway
        assert gateway.name == f"/{START_CHAT}"  # named after the method the REST call became
        assert _attribute(gateway, "upstream_cluster") == "conversation"
        start_chat = await eventually(
            lambda: receiver.child_of(gateway, "conversation", SERVER, START_CHAT), "StartChat under the gateway's span"
        )
        await _published_and_consumed(receiver, start_chat, {"routing": "chat_started", "crm_bridge": "chat_started"})
        assert {who for who, _ in receiver.trace(gateway.trace_id)} >= {"gateway", "conversation", "routing", "crm_bridge"}

        # A caller that brings its own trace context (a browser's tracer): the gateway's
        # span continues it, and so does everything after, on to crm_bridge's chat_ended.
        trace_id, client_span = secrets.token_bytes(16), secrets.token_bytes(8)
        traceparent = {"traceparent": f"00-{trace_id.hex()}-{client_span.hex()}-01"}
        ended = await http.post(f"/v1/chats/{chat['id']}:end", json={}, headers={**as_visitor, **traceparent})
        await _ok(ended)
        gateway = await _gateway_span(receiver, ended)
        assert gateway.trace_id == trace_id and gateway.parent_span_id == client_span
        assert gateway.name == f"/{END_CHAT}"
        end_chat = await eventually(
            lambda: receiver.child_of(gateway, "conversation", SERVER, END_CHAT), "EndChat under the gateway's span"
        )
        await _published_and_consumed(receiver, end_chat, {"crm_bridge": "chat_ended"})
