"""gRPC servicer: protobuf <-> domain. Identity and errors are handled by the interceptor."""

from __future__ import annotations

from kaiwa.ai_assist.v1 import ai_assist_pb2 as pb
from kaiwa.ai_assist.v1 import ai_assist_pb2_grpc

from kaiwa_common.auth import current_identity
from kaiwa_common.errors import InvalidArgument, parse_uuid
from kaiwa_common.protobuf import enum_name, enum_value

from .domain import RewriteResult, ToneSuggestion, validate_rewrite
from .handlers import Assistant

DEFAULT_MESSAGES, MAX_MESSAGES = 10, 50
_BACKENDS = {"embedded": pb.BACKEND_EMBEDDED, "llm": pb.BACKEND_LLM}
_MOODS = {"": pb.MOOD_UNSPECIFIED, "upset": pb.MOOD_UPSET, "dissatisfied": pb.MOOD_DISSATISFIED}
_MOODS |= {"neutral": pb.MOOD_NEUTRAL, "pleased": pb.MOOD_PLEASED, "playful": pb.MOOD_PLAYFUL}


class AiAssistApi(ai_assist_pb2_grpc.AiAssistServiceServicer):
    def __init__(self, assistant: Assistant):
        self.assistant = assistant

    async def Rewrite(self, request: pb.RewriteRequest, context) -> pb.RewriteResponse:
        span = (request.span.start, request.span.end) if request.HasField("span") else None
        rewrite = validate_rewrite(
            request.text,
            enum_name(pb.Tone, request.tone, "tone", default="keep"),
            enum_name(pb.Length, request.length, "length", default="keep"),
            request.language,
            span,
            request.chat_id,
        )
        result = await self.assistant.rewrite(current_identity(), rewrite, context.time_remaining())
        return _rewrite_to_pb(result, rewrite.language, rewrite.language_detected)

    async def SuggestTone(self, request: pb.SuggestToneRequest, context) -> pb.SuggestToneResponse:
        chat_id = parse_uuid(request.chat_id.strip(), "chat_id")
        limit = request.message_limit or DEFAULT_MESSAGES
        if not 1 <= limit <= MAX_MESSAGES:
            raise InvalidArgument(f"message_limit must be 1..{MAX_MESSAGES} (0: {DEFAULT_MESSAGES})", field="message_limit")
        locale = request.locale.strip().lower().split("-", 1)[0] or "en"
        if locale not in ("ja", "en"):
            raise InvalidArgument(f"locale {request.locale!r} is not supported: use ja or en", field="locale")
        found = await self.assistant.suggest_tone(current_identity(), chat_id, limit, locale)
        return _suggestion_to_pb(found)


def _rewrite_to_pb(result: RewriteResult, language: str, detected: bool) -> pb.RewriteResponse:
    return pb.RewriteResponse(
        text=result.text,
        provider=result.provider,
        model=result.model,
        backend=_BACKENDS[result.backend],
        language=language,
        language_detected=detected,
        rewritten=pb.TextRange(start=result.start, end=result.end),
        changes=[pb.Change(rule=c.rule, description=c.description, before=c.before, after=c.after) for c in result.changes],
        fallback_reason=result.fallback_reason,
        protected_tokens=result.protected,
    )


def _suggestion_to_pb(found: ToneSuggestion) -> pb.SuggestToneResponse:
    return pb.SuggestToneResponse(
        suggested_tone=enum_value(pb.Tone, "" if found.tone == "keep" else found.tone),
        sentiment=found.sentiment,
        mood=_MOODS[found.mood],
        reason=found.reason,
        messages_considered=len(found.messages),
        messages=[pb.MessageSentiment(seq=m.seq, score=round(m.score, 4), language=m.language) for m in found.messages],
        language=found.language,
    )
