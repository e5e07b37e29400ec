"""CMD-01: calls to the services that own what a command does (routing, visitor,
crm_bridge), each with a deadline. A peer's answer becomes one of three outcomes the
command dispatcher turns into the agent's reply (commands.py); nothing here retries:

    Refused      the service said no (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION,
                 PERMISSION_DENIED, ALREADY_EXISTS, OUT_OF_RANGE): its reason is shown
    Down         it could not answer (UNAVAILABLE, DEADLINE_EXCEEDED, or an error of its own)
    Unsupported  it has no such call (UNIMPLEMENTED)

Who calls: `service` metadata (this service's token for the tenant) for reads done on the
chat's behalf; `own` metadata (the calling agent's own bearer token, forwarded) for what
the agent does, so the owning service authorises and records it as the agent's act.
"""

from __future__ import annotations

import logging

import grpc
from kaiwa.crm_bridge.v1.crm_bridge_pb2_grpc import CrmBridgeServiceStub
from kaiwa.routing.v1.routing_pb2_grpc import RoutingServiceStub
from kaiwa.visitor.v1.visitor_pb2_grpc import VisitorServiceStub

log = logging.getLogger("kaiwa.conversation.peers")

DEADLINE = 2.0
# Routing and crm_bridge wait up to 2.5 s for an event about a chat they have not seen yet.
CHAT_DEADLINE = 4.0

STUBS = {"routing": RoutingServiceStub, "visitor": VisitorServiceStub, "crm_bridge": CrmBridgeServiceStub}
REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.OUT_OF_RANGE,
}


class PeerError(Exception):
    def __init__(self, service: str, code: str, details: str):
        super().__init__(f"{service}: {code}: {details}")
        self.service = service
        self.code = code
        self.details = details


class Refused(PeerError):
    pass


class Down(PeerError):
    pass


class Unsupported(PeerError):
    pass


class Peers:
    def __init__(self, ctx):
        self.ctx = ctx

    def service(self, tenant: str):
        return self.ctx.service_metadata(tenant)

    async def call(self, service: str, method: str, request, metadata, timeout: float = DEADLINE):
        stub = STUBS[service](self.ctx.channel(service))
        try:
            return await getattr(stub, method)(request, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            code, details = err.code(), err.details() or ""
            if code in REFUSALS:
                raise Refused(service, code.name, details) from None
            if code == grpc.StatusCode.UNIMPLEMENTED:
                raise Unsupported(service, code.name, details) from None
            log.warning("peer did not answer", extra={"fields": {"service": service, "call": method, "code": code.name}})
            raise Down(service, code.name, details) from None
