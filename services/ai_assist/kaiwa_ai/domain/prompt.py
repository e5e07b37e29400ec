"""The LLM backend's prompt (AI-01), from data/prompts.toml. The draft is data, never
instructions: it goes only in the user message, between fence lines that carry a random
nonce the draft cannot know, and the system prompt says so. No I/O beyond reading the
template file once."""

from __future__ import annotations

import secrets
import tomllib
from functools import lru_cache

from .text import DATA


@lru_cache(maxsize=1)
def templates() -> dict:
    with open(DATA / "prompts.toml", "rb") as f:
        return tomllib.load(f)


def new_fence() -> str:
    return f"<<<KAIWA-{secrets.token_hex(6)}-"


def messages(draft: str, tone: str, length: str, language: str, context: list[str], fence: str) -> list[dict[str, str]]:
    t = templates()
    system = t["system"].format(tone=t["tone"][tone], length=t["length"][length], language=t["language"][language], fence=fence)
    user = f"{fence}BEGIN\n{draft}\n{fence}END"
    if context:
        quoted = "\n".join(f"- {line}" for line in context)
        user = f"Recent customer messages:\n{fence}CONTEXT\n{quoted}\n{fence}CONTEXT-END\n\nDraft:\n{user}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def unfenced(reply: str, fence: str) -> str:
    """The model's answer without any fence lines it echoed."""
    lines = [line for line in reply.strip().split("\n") if not line.strip().startswith(fence)]
    return "\n".join(lines).strip()
