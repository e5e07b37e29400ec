"""Composition root of the conversation service: `python -m kaiwa_conversation.main`."""

from __future__ import annotations

import logging
from pathlib import Path

from kaiwa.conversation.v1 import conversation_pb2_grpc as pb_grpc

from kaiwa_common.app import ServiceContext, ServiceSpec, run
from kaiwa_common.auth import ADMIN, AGENT, ANYONE, SERVICE, STAFF, VISITOR
from kaiwa_common.errors import FailedPrecondition

from . import timers, transcript
from .api import ConversationApi
from .assignment import SETTLE_SECONDS, AssignmentGate
from .blocks import visitor_consumer
from .consumers import routing_consumer
from .live import LiveHub
from .routing_client import RoutingClient
from .unit_of_work import Deps

log = logging.getLogger("kaiwa.conversation")

SERVICE_NAME = "kaiwa.conversation.v1.ConversationService"
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

STAFF_USERS = {AGENT, ADMIN}  # people working in the console (no service tokens)
POLICY: dict[str, set[str]] = {
    "StartChat": {VISITOR, SERVICE},
    "GetChat": ANYONE,
    "SendMessage": ANYONE,
    "RunCommand": STAFF_USERS,
    "StreamChat": ANYONE,
    "EndChat": ANYONE,
    "GetTranscript": ANYONE,
    "ListChannels": ANYONE,
    "CancelEndChat": STAFF_USERS,
    "CompleteChat": STAFF_USERS,
    "ReopenChat": STAFF_USERS,
    "NotifyTyping": ANYONE,
    "UpdateMessageStatus": {VISITOR, SERVICE},
    "ResendMessage": STAFF_USERS,
    "PostSystemEvent": {SERVICE},
    "HandOverToHuman": {SERVICE},
    "AddNote": STAFF_USERS,
    "ListNotes": STAFF,
    "ListMessages": ANYONE,
    "ListVisitorChats": ANYONE,
    "ListAgentChats": STAFF_USERS,
    "PutCannedResponse": STAFF_USERS,
    "ListCannedResponses": STAFF_USERS,
    "DeleteCannedResponse": {ADMIN},
    "GetSettings": STAFF_USERS,
    "UpdateSettings": {ADMIN},
}


def make_spec(schema: str = "conversation", countdown_scale: float = 1.0, settle_seconds: float = SETTLE_SECONDS) -> ServiceSpec:
    """countdown_scale < 1 compresses the 30-90 s countdowns (tests only); settle_seconds
    bounds the wait for a routing event routing says is on its way (ROUT-02)."""
    built: dict[int, tuple[Deps, AssignmentGate]] = {}

    def parts(ctx: ServiceContext) -> tuple[Deps, AssignmentGate]:
        if id(ctx) not in built:
            deps = Deps(ctx, RoutingClient(ctx), LiveHub(ctx, schema), countdown_scale)
            built[id(ctx)] = deps, AssignmentGate(deps, settle_seconds)
        return built[id(ctx)]

    def add_servicers(server, ctx: ServiceContext) -> None:
        pb_grpc.add_ConversationServiceServicer_to_server(ConversationApi(*parts(ctx)), server)
        try:
            transcript.font_path()
        except FailedPrecondition as exc:
            log.warning("transcript PDFs unavailable", extra={"fields": {"error": exc.message}})

    return ServiceSpec(
        name="conversation",
        schema=schema,
        migrations=MIGRATIONS,
        grpc_services=[SERVICE_NAME],
        policy=POLICY,
        add_servicers=add_servicers,
        consumers=lambda ctx: [
            routing_consumer(parts(ctx)[0], f"{schema}-routing"),
            visitor_consumer(parts(ctx)[0], f"{schema}-visitor"),
        ],
        timers=lambda ctx: timers.handlers(parts(ctx)[0]),
        workers=lambda ctx: [parts(ctx)[0].hub.run],
    )


SPEC = make_spec()


def main() -> None:
    run(SPEC)


if __name__ == "__main__":
    main()
