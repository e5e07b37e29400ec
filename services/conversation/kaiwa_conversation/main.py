"""Composition root of the conversation service: `python -m kaiwa_conversation.main`."""

from __future__ import annotations

import logging
from pathlib import Path

from kaiwa.conversation.v1 import conversation_pb2_grpc as pb_grpc

from kaiwa_common.app import ServiceSpec, run
from kaiwa_common.errors import FailedPrecondition

from . import transcript
from .api import ConversationApi
from .assignment import SETTLE_SECONDS, AssignmentGate
from .consumers import routing_consumer
from .handlers import COUNTDOWN, INACTIVITY, Conversation
from .live import LiveHub
from .reads import Reads
from .routing_client import RoutingClient
from .start import ChatStarter

log = logging.getLogger("kaiwa.conversation")

SERVICE = "kaiwa.conversation.v1.ConversationService"
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

ANY = {"visitor", "agent", "admin", "service"}
STAFF = {"agent", "admin", "service"}
POLICY: dict[str, set[str]] = {
    "StartChat": {"visitor", "service"},
    "GetChat": ANY,
    "SendMessage": ANY,
    "StreamChat": ANY,
    "EndChat": ANY,
    "GetTranscript": ANY,
    "ListChannels": ANY,
    "CancelEndChat": {"agent", "admin"},
    "CompleteChat": {"agent", "admin"},
    "ReopenChat": {"agent", "admin"},
    "NotifyTyping": ANY,
    "UpdateMessageStatus": {"visitor", "service"},
    "ResendMessage": {"agent", "admin"},
    "PostSystemEvent": {"service"},
    "HandOverToHuman": {"service"},
    "AddNote": {"agent", "admin"},
    "ListNotes": {"agent", "admin", "service"},
    "ListMessages": ANY,
    "ListVisitorChats": ANY,
    "ListAgentChats": {"agent", "admin"},
    "PutCannedResponse": {"agent", "admin"},
    "ListCannedResponses": {"agent", "admin"},
    "DeleteCannedResponse": {"admin"},
    "GetSettings": {"agent", "admin"},
    "UpdateSettings": {"admin"},
}


def make_spec(schema: str = "conversation", countdown_scale: float = 1.0, settle_seconds: float = SETTLE_SECONDS) -> ServiceSpec:
    """countdown_scale < 1 compresses the 30-90 s countdowns (tests only); settle_seconds
    bounds the wait for a routing event routing says is on its way (ROUT-02)."""
    parts: dict[int, tuple[Conversation, Reads, LiveHub, ChatStarter, AssignmentGate]] = {}

    def build(ctx):
        if id(ctx) not in parts:
            routing = RoutingClient(ctx)
            conversation = Conversation(ctx, schema, countdown_scale, routing)
            hub = LiveHub(ctx, schema)
            parts[id(ctx)] = (
                conversation,
                Reads(ctx, conversation),
                hub,
                ChatStarter(conversation, routing),
                AssignmentGate(ctx, routing, hub, settle_seconds),
            )
        return parts[id(ctx)]

    def add_servicers(server, ctx) -> None:
        pb_grpc.add_ConversationServiceServicer_to_server(ConversationApi(ctx, *build(ctx)), server)
        try:
            transcript.font_path()
        except FailedPrecondition as exc:
            log.warning("transcript PDFs unavailable", extra={"fields": {"error": exc.message}})

    def timer_handlers(ctx):
        conversation = build(ctx)[0]
        return {COUNTDOWN: conversation.on_countdown, INACTIVITY: conversation.on_inactivity}

    return ServiceSpec(
        name="conversation",
        schema=schema,
        migrations=MIGRATIONS,
        grpc_services=[SERVICE],
        policy=POLICY,
        add_servicers=add_servicers,
        consumers=lambda ctx: [routing_consumer(build(ctx)[0], f"{schema}-routing")],
        timers=timer_handlers,
        workers=lambda ctx: [build(ctx)[2].run],
    )


SPEC = make_spec()


def main() -> None:
    run(SPEC)


if __name__ == "__main__":
    main()
