"""Routing service composition root: `python -m kaiwa_routing.main`."""

from __future__ import annotations

from pathlib import Path

from kaiwa.routing.v1 import routing_pb2
from kaiwa.routing.v1.routing_pb2_grpc import add_RoutingServiceServicer_to_server

from kaiwa_common.app import ServiceContext, ServiceSpec, run
from kaiwa_common.auth import ADMIN, AGENT, SERVICE, STAFF, VISITOR

from . import announcer, conversation_events, offers, queue, transfers
from .api import RoutingApi
from .config import RoutingSettings
from .context import Routing, build
from .domain.model import MAX_WAIT, OFFER_TIMEOUT, TRANSFER_TIMEOUT

SERVICE_NAME = routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name

MANAGERS = frozenset({ADMIN, SERVICE})

POLICY = {
    "UpsertDepartment": MANAGERS,
    "ListDepartments": STAFF,
    "GetDepartment": STAFF,  # conversation asks it (service token) before StartChat
    "UpsertAgent": MANAGERS,
    "GetAgent": STAFF,
    "ListAgents": STAFF,
    "SetAvailability": STAFF,
    "ListOffers": {AGENT},
    "StreamOffers": {AGENT},
    "AcceptChat": {AGENT},
    "DeclineChat": {AGENT},
    "GetAssignment": STAFF,
    "AssignChat": STAFF,
    "UpsertRule": MANAGERS,
    "ListRules": STAFF,
    "DeleteRule": MANAGERS,
    "GetQueuePosition": STAFF | {VISITOR},
    "ListQueue": STAFF,
    "ListMissedChats": STAFF,
    "TransferChat": STAFF,
    "AnswerTransfer": {AGENT},
    "ListTransfers": {AGENT},
    "InviteAgent": STAFF,
    "ListMembers": STAFF | {VISITOR},
    "CheckUserName": STAFF,
    "SetUserName": {AGENT, ADMIN},
    "SetAgentPassword": {AGENT, ADMIN},
    "GetAgentLogin": STAFF,
    "VerifyAgentLogin": {SERVICE},
    "SendTeamMessage": {AGENT},
    "ListTeamMessages": {AGENT},
    "StreamTeamMessages": {AGENT},
}


def _routing(ctx: ServiceContext) -> Routing:
    """The service's one dependency object, built on first use and kept on the context."""
    routing = getattr(ctx, "routing", None)
    if routing is None:
        routing = ctx.routing = build(ctx, RoutingSettings())
    return routing


def _workers(ctx: ServiceContext):
    r = _routing(ctx)

    async def sweep(stop):
        try:
            await r.router.sweep(stop)
        finally:
            await r.router.close()

    return [r.fanout.run, sweep, lambda stop: announcer.run(r, stop)]


def _timers(ctx: ServiceContext):
    r = _routing(ctx)
    return {
        OFFER_TIMEOUT: lambda timer, conn: offers.on_offer_timeout(r, timer, conn),
        MAX_WAIT: lambda timer, conn: queue.on_max_wait(r, timer, conn),
        TRANSFER_TIMEOUT: lambda timer, conn: transfers.on_transfer_timeout(r, timer, conn),
    }


SPEC = ServiceSpec(
    name="routing",
    schema="routing",
    migrations=Path(__file__).resolve().parent.parent / "migrations",
    grpc_services=[SERVICE_NAME],
    policy=POLICY,
    add_servicers=lambda server, ctx: add_RoutingServiceServicer_to_server(RoutingApi(_routing(ctx)), server),
    consumers=lambda ctx: [conversation_events.consumer(_routing(ctx))],
    workers=_workers,
    timers=_timers,
)


def main() -> None:
    run(SPEC)


if __name__ == "__main__":
    main()
