"""Who gets offered a waiting chat: the department's strategy, pure.

Ring-all offers the chat to every eligible agent at once; the other strategies offer it
to one agent at a time and move on to the next one when the offer times out or is
declined. Eligibility (online, free capacity, not already asked) is decided before.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .model import Candidate

_EPOCH = datetime.min.replace(tzinfo=timezone.utc)


def choose(strategy: str, candidates: list[Candidate]) -> list[Candidate]:
    if not candidates:
        return []
    if strategy == "ring_all":
        return list(candidates)
    if strategy == "least_loaded":
        # Fewest open chats; ties: the one idle the longest (never assigned = idle longest).
        return [min(candidates, key=lambda c: (c.active_chats, c.last_assigned_at or _EPOCH, c.agent_id))]
    # round_robin: the agent offered a chat longest ago goes next.
    return [min(candidates, key=lambda c: (c.last_offered_at or _EPOCH, c.agent_id))]


def fallback_strategy(strategy: str) -> str:
    """CRM owner first rings the department (ring-all) when the owner cannot take the chat."""
    return "ring_all" if strategy == "crm_owner" else strategy
