"""Routing service composition root: `python -m kaiwa_routing.main`."""

from __future__ import annotations

from pathlib import Path

from kaiwa.routing.v1 import routing_pb2
from kaiwa.routing.v1.routing_pb2_grpc import add_RoutingServiceServicer_to_server

from kaiwa_common.app import ServiceSpec, run
from kaiwa_common.consumer import ConsumerSpec

from .api import RoutingApi

from .announcer import Announcer
from .handlers import MAX_WAIT, TRANSFER_TIMEOUT, Routing
from .router import OFFER_TIMEOUT

SERVICE = routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name

ADMIN, AGENT, VISITOR, SERVICE_ROLE = "admin", "agent", "visitor", "service"
STAFF = {ADMIN, AGENT, SERVICE_ROLE}
MANAGERS = {ADMIN, SERVICE_ROLE}

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
    "SendTeamMessage": {AGENT},
    "ListTeamMessages": {AGENT},
    "StreamTeamMessages": {AGENT},
}

CONVERSATION_EVENTS = ["chat_started", "bot_handed_over", "chat_ended", "chat_completed", "chat_reopened"]


def _routing(ctx) -> Routing:
    routing = getattr(ctx, "routing", None)
    if routing is None:
        routing = Routing(ctx)
        ctx.routing = routing
    return routing


def _add_servicers(server, ctx) -> None:
    add_RoutingServiceServicer_to_server(RoutingApi(_routing(ctx)), server)


def _consumers(ctx) -> list[ConsumerSpec]:
    routing = _routing(ctx)
    handlers = {
        "chat_started": routing.on_chat_started,
        "bot_handed_over": routing.on_bot_handed_over,
        "chat_ended": routing.on_chat_ended,
        "chat_completed": routing.on_chat_ended,
        "chat_reopened": routing.on_chat_reopened,
    }

    async def on_event(event, conn):
        await handlers[event.type](event, conn)

    return [ConsumerSpec("routing-conversation", "conversation", CONVERSATION_EVENTS, on_event)]


def _workers(ctx):
    routing = _routing(ctx)

    async def sweep(stop):
        try:
            await routing.router.sweep(stop)
        finally:
            await routing.router.close()

    return [routing.notifier.run, sweep, Announcer(routing).run]


def _timers(ctx):
    routing = _routing(ctx)
    return {OFFER_TIMEOUT: routing.on_offer_timeout, MAX_WAIT: routing.on_max_wait,
            TRANSFER_TIMEOUT: routing.on_transfer_timeout}


SPEC = ServiceSpec(
    name="routing",
    schema="routing",
    migrations=Path(__file__).resolve().parent.parent / "migrations",
    grpc_services=[SERVICE],
    policy=POLICY,
    add_servicers=_add_servicers,
    consumers=_consumers,
    workers=_workers,
    timers=_timers,
)


def main() -> None:
    run(SPEC)


if __name__ == "__main__":
    main()
