"""The LLM backend's client: any OpenAI-compatible chat-completions endpoint (OpenAI,
gateways, vLLM, Ollama, llama.cpp server, ...), configured by KAIWA_LLM_URL (base URL,
e.g. https://api.openai.com/v1), KAIWA_LLM_API_KEY and KAIWA_LLM_MODEL (config.py).

Retries (429 and 5xx, honouring Retry-After, capped), a time budget for all attempts
together, and a breaker: after `failures_to_skip` failures in a row the endpoint is not
asked for `cooldown` seconds, so agents get the embedded rewrite at once instead of
waiting for timeouts. The breaker is a per-process cache of the endpoint's health, not
state: a replica that restarts simply asks again."""

from __future__ import annotations

import logging
import asyncio
import time
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from .config import LlmSettings

log = logging.getLogger("kaiwa.ai.llm")

RETRY_AFTER_CAP = 5.0  # seconds; a longer wait is better answered by UNAVAILABLE


class ProviderError(Exception):
    """The provider could not give an answer (unreachable, refused, malformed reply)."""


class _Retryable(ProviderError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class OpenAICompatible:
    def __init__(self, settings: LlmSettings):
        self.settings = settings
        self.endpoint = settings.url.rstrip("/") + "/chat/completions"
        self.name = urlsplit(settings.url).hostname or "openai-compatible"
        self.model = settings.model
        self.headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self._failures = 0
        self._skip_until = 0.0

    def skipped(self) -> str | None:
        """Why the endpoint is not asked right now (the breaker is open), or None."""
        left = self._skip_until - time.monotonic()
        if left > 0:
            return f"LLM provider {self.name} failed {self._failures} times in a row; not asked for another {left:.0f}s"
        return None

    async def complete(self, messages: list[dict[str, str]], budget: float) -> str:
        """The model's reply within `budget` seconds (all attempts); raises ProviderError."""
        try:
            async with asyncio.timeout(max(0.05, min(budget, self.settings.budget))):
                reply = await self._complete(messages)
        except TimeoutError:
            self._failed()
            raise ProviderError(
                f"LLM provider {self.name} gave no answer within {min(budget, self.settings.budget):g}s"
            ) from None
        except ProviderError:
            self._failed()
            raise
        self._failures = 0
        return reply

    def _failed(self) -> None:
        self._failures += 1
        if self._failures >= max(1, self.settings.failures_to_skip):
            self._skip_until = time.monotonic() + self.settings.cooldown

    async def _complete(self, messages: list[dict[str, str]]) -> str:
        body: dict = {"model": self.model, "messages": messages}
        if self.settings.temperature:
            body["temperature"] = float(self.settings.temperature)
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, _Retryable)),
            stop=stop_after_attempt(max(1, self.settings.max_attempts)),
            wait=_wait,
            reraise=True,
        )
        try:
            # A client per rewrite: made inside the running loop, nothing left open between calls.
            async with httpx.AsyncClient(timeout=self.settings.timeout, headers=self.headers) as client:
                async for attempt in retrying:
                    with attempt:
                        return await self._post(client, body)
        except _Retryable as exc:
            raise ProviderError(f"{exc} (after {self.settings.max_attempts} attempts)") from None

    async def _post(self, client: httpx.AsyncClient, body: dict) -> str:
        try:
            response = await client.post(self.endpoint, json=body)
        except httpx.TimeoutException:
            raise _Retryable(f"LLM provider {self.name} did not answer within {self.settings.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"LLM provider {self.name} is unreachable: {exc!r}") from None
        if response.status_code == 429 or response.status_code >= 500:
            log.warning(
                "LLM provider busy or failing, retrying",
                extra={"fields": {"status": response.status_code, "provider": self.name}},
            )
            raise _Retryable(
                f"LLM provider {self.name} answered HTTP {response.status_code}: {_error_text(response)}", _retry_after(response)
            )
        if response.status_code != 200:
            raise ProviderError(
                f"LLM provider {self.name} refused the request with HTTP {response.status_code}: {_error_text(response)}"
            )
        return _rewrite_from(response, self.name)


def _rewrite_from(response: httpx.Response, name: str) -> str:
    try:
        choice = response.json()["choices"][0]
        content = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ProviderError(f"LLM provider {name} sent a reply that is not a chat completion") from None
    if choice.get("finish_reason") == "length":
        raise ProviderError(f"LLM provider {name} cut the rewrite off (finish_reason=length)")
    if not isinstance(content, str) or not content.strip():
        raise ProviderError(f"LLM provider {name} returned an empty rewrite")
    return content.strip()


def _error_text(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
        if isinstance(message, str) and message:
            return message[:300]
    except (ValueError, KeyError, TypeError):
        pass
    return response.text[:300] or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


_backoff = wait_exponential(multiplier=0.25, max=RETRY_AFTER_CAP)


def _wait(state: RetryCallState) -> float:
    """The provider's Retry-After when it sends one (capped), else exponential back-off."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _Retryable) and exc.retry_after is not None:
        return min(exc.retry_after, RETRY_AFTER_CAP)
    return _backoff(state)


def provider_from(settings: LlmSettings) -> OpenAICompatible | None:
    """The configured endpoint, or None when there is none (or it is misconfigured)."""
    return OpenAICompatible(settings) if settings.url and settings.problem() is None else None
