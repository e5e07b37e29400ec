"""The rewrite use case (AI-01): a suggestion for the agent, never sent by itself."""

from __future__ import annotations

from dataclasses import dataclass

from kaiwa_common.errors import FailedPrecondition, Unavailable

from .domain import RewriteRequest, rewrite_messages
from .providers import LlmProvider, ProviderError


@dataclass(frozen=True)
class Rewrite:
    text: str
    provider: str
    model: str


class Rewriter:
    def __init__(self, provider: LlmProvider | None, problem: str | None):
        self.provider = provider
        self.problem = problem

    async def rewrite(self, request: RewriteRequest) -> Rewrite:
        if self.provider is None:
            raise FailedPrecondition(self.problem or "no LLM provider configured (set KAIWA_LLM_URL)")
        try:
            text = await self.provider.complete(rewrite_messages(request))
        except ProviderError as exc:
            raise Unavailable(f"rewrite failed: {exc}") from None
        return Rewrite(text=text, provider=self.provider.name, model=self.provider.model)
