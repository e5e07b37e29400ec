"""Settings of the AI assistant, from environment variables (read here only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from kaiwa_common.config import env_float, env_int, env_str


@dataclass(frozen=True)
class LlmSettings:
    """An OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp server,
    hosted APIs). Without KAIWA_LLM_URL the embedded rewriter answers every call."""

    url: str = field(default_factory=lambda: env_str("KAIWA_LLM_URL"))  # base URL, e.g. http://127.0.0.1:11434/v1
    api_key: str = field(default_factory=lambda: env_str("KAIWA_LLM_API_KEY"))
    model: str = field(default_factory=lambda: env_str("KAIWA_LLM_MODEL"))
    timeout: float = field(default_factory=lambda: env_float("KAIWA_LLM_TIMEOUT", 10))  # seconds per attempt
    max_attempts: int = field(default_factory=lambda: env_int("KAIWA_LLM_MAX_ATTEMPTS", 3))
    # All attempts together; past it the embedded rewriter answers (an agent is waiting).
    budget: float = field(default_factory=lambda: env_float("KAIWA_LLM_BUDGET", 15))
    # Left out of the request unless set: some models accept only their default.
    temperature: str = field(default_factory=lambda: env_str("KAIWA_LLM_TEMPERATURE"))
    # After this many failures in a row the endpoint is skipped for `cooldown` seconds.
    failures_to_skip: int = field(default_factory=lambda: env_int("KAIWA_LLM_FAILURES_TO_SKIP", 3))
    cooldown: float = field(default_factory=lambda: env_float("KAIWA_LLM_COOLDOWN", 30))
    # "embedded" (default): a failed or refused LLM answer falls back to the embedded
    # rewriter, with the reason in the response; "none": the call fails (UNAVAILABLE).
    fallback: str = field(default_factory=lambda: env_str("KAIWA_LLM_FALLBACK", "embedded"))

    def problem(self) -> str | None:
        """What keeps the endpoint from being used, in words; None if usable or not set."""
        if not self.url:
            return None
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"KAIWA_LLM_URL {self.url!r} is not an http(s) base URL (e.g. https://api.openai.com/v1)"
        if not self.model:
            return "no LLM model configured (set KAIWA_LLM_MODEL)"
        if self.temperature:
            try:
                float(self.temperature)
            except ValueError:
                return f"KAIWA_LLM_TEMPERATURE {self.temperature!r} is not a number"
        if self.fallback not in ("embedded", "none"):
            return f"KAIWA_LLM_FALLBACK {self.fallback!r} must be embedded or none"
        return None


@dataclass(frozen=True)
class AiSettings:
    llm: LlmSettings = field(default_factory=LlmSettings)
    # Reads from the conversation service (AI-02, and context for the LLM).
    conversation_deadline: float = field(default_factory=lambda: env_float("KAIWA_AI_CONVERSATION_DEADLINE", 2.0))
    context_messages: int = field(default_factory=lambda: env_int("KAIWA_AI_CONTEXT_MESSAGES", 5))
