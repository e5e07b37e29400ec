"""Proactive triggers (VIS-06): "on a page matching P, with CRM condition C, after T
seconds on the page, do A".

    page view arrives ─▶ enabled trigger whose pattern matches the URL (and, if
       landing_only, it is the visit's first page) and whose conditions hold on the
       visitor's CRM facts ─▶ timer (trigger, visit) due in T seconds (a later matching
       page view moves it: T seconds on THAT page)
    timer due ─▶ the visit's current page is still the one that set it, and the
       trigger has not fired in this visit ─▶ fired (once per visit): event, and the
       widget (open_chat) or the agents (notify_agent) are told

Patterns: `*` matches anything, everything else literally, case-insensitively
("https://shop.example.com/pricing*"; "*" alone: any page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from kaiwa_common.errors import InvalidArgument

from kaiwa_common.crm_conditions import OPERATORS, Condition, matches

ACTIONS = ("open_chat", "notify_agent")
MAX_PATTERN = 500
MAX_MESSAGE = 1000
MAX_DELAY = 3600
_FIELD = re.compile(r"^((lead|contact)\.[A-Za-z0-9_ .\-]{1,100}|deals\.open_count|deals\.open_amount|visitor_type|owner)$")


@dataclass(frozen=True)
class Trigger:
    id: str
    name: str
    enabled: bool
    page_pattern: str
    landing_only: bool
    conditions: tuple[Condition, ...]
    delay_seconds: int
    action: str
    message: str = ""
    agent_id: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def applies(self, url: str, landing: bool, facts: dict | None) -> bool:
        if not self.enabled or (self.landing_only and not landing):
            return False
        if not pattern_regex(self.page_pattern).fullmatch(url):
            return False
        return not self.conditions or matches(self.conditions, facts)


@lru_cache(maxsize=4096)
def pattern_regex(pattern: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.IGNORECASE | re.DOTALL)


def validate_trigger(t: Trigger) -> Trigger:
    name = " ".join(t.name.split())
    if not name or len(name) > 100:
        raise InvalidArgument("name is required (at most 100 characters)", field="name")
    pattern = t.page_pattern.strip()
    if not pattern or len(pattern) > MAX_PATTERN or any(c.isspace() for c in pattern):
        raise InvalidArgument(f"page_pattern is required: a URL with * wildcards, at most {MAX_PATTERN} characters")
    if not 0 <= t.delay_seconds <= MAX_DELAY:
        raise InvalidArgument(f"delay_seconds must be between 0 and {MAX_DELAY}", field="delay_seconds")
    if t.action not in ACTIONS:
        raise InvalidArgument("action must be TRIGGER_ACTION_OPEN_CHAT or TRIGGER_ACTION_NOTIFY_AGENT", field="action")
    message = t.message.strip()
    if len(message) > MAX_MESSAGE:
        raise InvalidArgument(f"message is longer than {MAX_MESSAGE} characters", field="message")
    if t.action == "open_chat" and not message:
        raise InvalidArgument("an open_chat trigger needs the message the chat opens with", field="message")
    if len(t.conditions) > 20:
        raise InvalidArgument("at most 20 conditions")
    for c in t.conditions:
        if not _FIELD.match(c.field or ""):
            raise InvalidArgument(
                f"condition field {c.field!r} is not one of lead.<field>, contact.<field>, deals.open_count, "
                "deals.open_amount, visitor_type, owner"
            )
        if c.op not in OPERATORS:
            raise InvalidArgument(f"condition on {c.field!r} needs an operator")
        if c.op != "is_set" and not c.value.strip():
            raise InvalidArgument(f"condition on {c.field!r} needs a value")
    return Trigger(
        id=t.id,
        name=name,
        enabled=t.enabled,
        page_pattern=pattern,
        landing_only=t.landing_only,
        conditions=t.conditions,
        delay_seconds=t.delay_seconds,
        action=t.action,
        message=message,
        agent_id=t.agent_id.strip()[:128],
    )
