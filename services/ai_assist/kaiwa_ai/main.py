"""Composition root of the AI assistant: `python -m kaiwa_ai.main`."""

from __future__ import annotations

from kaiwa.ai_assist.v1 import ai_assist_pb2_grpc

from kaiwa_common.auth import STAFF
from kaiwa_common.app import ServiceContext, ServiceSpec, run

from .api import AiAssistApi
from .handlers import Rewriter
from .providers import provider_from_env


def _add_servicers(server, ctx: ServiceContext) -> None:
    # The provider is configured from the environment when the service starts.
    rewriter = Rewriter(*provider_from_env())
    ai_assist_pb2_grpc.add_AiAssistServiceServicer_to_server(AiAssistApi(rewriter), server)


SPEC = ServiceSpec(
    name="ai_assist",
    schema="ai_assist",
    migrations=None,  # nothing stored yet: a rewrite is a suggestion, not a record
    grpc_services=["kaiwa.ai_assist.v1.AiAssistService"],
    policy={"Rewrite": STAFF},
    add_servicers=_add_servicers,
)


def main() -> None:
    run(SPEC)


if __name__ == "__main__":
    main()
