"""Every RPC of every service, read from the compiled contracts and the services' access
policies, and one way to call any of them by descriptor (the PLAT-02 suites walk them all,
so a new RPC is covered the day it is added)."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf import message_factory
from kaiwa.ai_assist.v1 import ai_assist_pb2
from kaiwa.conversation.v1 import conversation_pb2
from kaiwa.crm_bridge.v1 import crm_bridge_pb2
from kaiwa.routing.v1 import routing_pb2
from kaiwa.visitor.v1 import visitor_pb2

from kaiwa_ai.main import SPEC as AI_SPEC
from kaiwa_conversation.main import POLICY as CONVERSATION_POLICY
from kaiwa_crm.main import POLICY as CRM_POLICY
from kaiwa_routing.main import POLICY as ROUTING_POLICY
from kaiwa_visitor.main import POLICY as VISITOR_POLICY

SERVICES = {
    "routing": routing_pb2.DESCRIPTOR.services_by_name["RoutingService"],
    "conversation": conversation_pb2.DESCRIPTOR.services_by_name["ConversationService"],
    "visitor": visitor_pb2.DESCRIPTOR.services_by_name["VisitorService"],
    "crm_bridge": crm_bridge_pb2.DESCRIPTOR.services_by_name["CrmBridgeService"],
    "ai_assist": ai_assist_pb2.DESCRIPTOR.services_by_name["AiAssistService"],
}
POLICIES = {
    "routing": ROUTING_POLICY,
    "conversation": CONVERSATION_POLICY,
    "visitor": VISITOR_POLICY,
    "crm_bridge": CRM_POLICY,
    "ai_assist": AI_SPEC.policy,
}
NEVER = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
STREAM_WAIT = 1.0  # seconds a server stream may take for its first reply before it is cancelled


def methods(client_streaming: bool = False):
    """(service, service descriptor, method) of every RPC; client-streaming ones on request."""
    for service, descriptor in SERVICES.items():
        for method in descriptor.methods:
            if client_streaming or not method.client_streaming:
                yield service, descriptor, method


def allowed_roles(service: str, method) -> set[str] | str:
    return POLICIES[service][method.name]


def request_class(method):
    return message_factory.GetMessageClass(method.input_type)


async def call(
    channel: grpc.aio.Channel, descriptor, method, request, metadata, timeout: float = 10, stream_wait: float = STREAM_WAIT
):
    """(reply, None) or (None, the error). A server stream's reply is its first message (or
    None when it sent none within `stream_wait` seconds); it is cancelled then. A client stream sends
    `request` (a message or a list of them)."""
    path = f"/{descriptor.full_name}/{method.name}"
    response_class = message_factory.GetMessageClass(method.output_type)
    kwargs = dict(request_serializer=lambda m: m.SerializeToString(), response_deserializer=response_class.FromString)
    try:
        if method.client_streaming:
            requests = request if isinstance(request, list) else [request]
            return await channel.stream_unary(path, **kwargs)(iter(requests), metadata=metadata, timeout=timeout), None
        if method.server_streaming:
            stream = channel.unary_stream(path, **kwargs)(request, metadata=metadata, timeout=stream_wait)
            return await _first_of_stream(stream), None
        return await channel.unary_unary(path, **kwargs)(request, metadata=metadata, timeout=timeout), None
    except grpc.aio.AioRpcError as err:
        return None, err


async def _first_of_stream(stream):
    try:
        async for reply in stream:
            return reply
    except grpc.aio.AioRpcError as err:
        if err.code() != grpc.StatusCode.DEADLINE_EXCEEDED:  # no reply yet: the stream was open
            raise
    finally:
        stream.cancel()
    return None


def refused_by_policy(err) -> bool:
    """The interceptor's refusal of a role the method does not admit."""
    return err is not None and err.code() == grpc.StatusCode.PERMISSION_DENIED and "may not call" in err.details()


async def gather_bounded(calls, limit: int = 16) -> list:
    """Await the coroutines `calls`, at most `limit` at a time, in order of the results."""
    slots = asyncio.Semaphore(limit)

    async def one(coroutine):
        async with slots:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in calls))
