"""gRPC servicer: protobuf <-> domain. Identity and errors are handled by the interceptor."""

from __future__ import annotations

from kaiwa.ai_assist.v1 import ai_assist_pb2 as pb
from kaiwa.ai_assist.v1 import ai_assist_pb2_grpc

from kaiwa_common.errors import InvalidArgument

from .domain import validate_rewrite
from .handlers import Rewriter

_TONES = {
    pb.TONE_UNSPECIFIED: "keep",
    pb.TONE_FORMAL: "formal",
    pb.TONE_CASUAL: "casual",
    pb.TONE_POLITE: "polite",
    pb.TONE_ASSERTIVE: "assertive",
    pb.TONE_HUMOROUS: "humorous",
}
_LENGTHS = {pb.LENGTH_UNSPECIFIED: "keep", pb.LENGTH_SHORTER: "shorter", pb.LENGTH_LONGER: "longer"}


class AiAssistApi(ai_assist_pb2_grpc.AiAssistServiceServicer):
    def __init__(self, rewriter: Rewriter):
        self.rewriter = rewriter

    async def Rewrite(self, request: pb.RewriteRequest, context) -> pb.RewriteResponse:
        if request.tone not in _TONES:
            raise InvalidArgument(
                f"tone {request.tone} is not a known tone (formal, casual, polite, assertive, "
                "humorous, or unspecified to keep it)"
            )
        if request.length not in _LENGTHS:
            raise InvalidArgument(f"length {request.length} is not a known length (shorter, longer, or unspecified to keep it)")
        result = await self.rewriter.rewrite(validate_rewrite(request.text, _TONES[request.tone], _LENGTHS[request.length]))
        return pb.RewriteResponse(text=result.text, provider=result.provider, model=result.model)
