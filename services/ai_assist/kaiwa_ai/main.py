"""Composition root of the AI assistant: `python -m kaiwa_ai.main`."""

from __future__ import annotations

import logging

from kaiwa.ai_assist.v1 import ai_assist_pb2_grpc

from kaiwa_common.app import ServiceContext, ServiceSpec, run
from kaiwa_common.auth import STAFF

from .api import AiAssistApi
from .config import AiSettings
from .conversation import ConversationReader
from .domain.ja_morph import warm_up
from .handlers import Assistant
from .llm import provider_from
from .sentiment import Sentiment

log = logging.getLogger("kaiwa.ai")


def _add_servicers(server, ctx: ServiceContext) -> None:
    settings = AiSettings()  # read when the service starts
    if settings.llm.problem():
        log.warning("LLM endpoint not used; the embedded rewriter answers", extra={"fields": {"problem": settings.llm.problem()}})
    warm_up()
    sentiment = Sentiment()
    sentiment.warm_up()
    assistant = Assistant(
        settings, provider_from(settings.llm), ConversationReader(ctx, settings.conversation_deadline), sentiment
    )
    ai_assist_pb2_grpc.add_AiAssistServiceServicer_to_server(AiAssistApi(assistant), server)


SPEC = ServiceSpec(
    name="ai_assist",
    schema="ai_assist",
    migrations=None,  # nothing stored: a rewrite is a suggestion, not a record
    grpc_services=["kaiwa.ai_assist.v1.AiAssistService"],
    policy={"Rewrite": STAFF, "SuggestTone": STAFF},
    add_servicers=_add_servicers,
)


def main() -> None:
    run(SPEC)


if __name__ == "__main__":
    main()
