"""CRM-03/04/05: which visitors Kaiwa adds to the CRM, as what, owned by whom, with
which follow-up task. Pure rules; the callers bring the facts.

Auto-add by visitor kind (a row is a setting, a column the kind of visitor):

    setting \\ visitor         unattended  attended  accessed
    none                            -          -         -
    unattended                      x          -         -
    attended                        -          x         -
    accessed                        -          -         x
    attended_and_unattended         x          x         -
    all                             x          x         x

"unattended": a chat nobody took (missed); "attended": a chat an agent took; "accessed":
an identified visitor (an e-mail known from a chat) browsing the site. Only visitors
with an e-mail can be added. Unattended visitors added are labelled with the tenant's
label ("tracked_in_crm" or "unattended").

Owner (CRM-04): a chosen CRM user; or the next CRM user of a distribution pool; or the
CRM user of the agent who attended the chat, falling back to the CRM admin when that
agent has none (and for unattended chats).
"""

from __future__ import annotations

from datetime import date, timedelta

from .settings import CrmSettings

UNATTENDED, ATTENDED, ACCESSED = "unattended", "attended", "accessed"

_ADDS = {
    "none": set(),
    "unattended": {UNATTENDED},
    "attended": {ATTENDED},
    "accessed": {ACCESSED},
    "attended_and_unattended": {ATTENDED, UNATTENDED},
    "all": {ATTENDED, UNATTENDED, ACCESSED},
}

_FOLLOW_UP_DAYS = {"today": 0, "tomorrow": 1, "in_7_days": 7, "in_14_days": 14}

CHAT_SOURCE = "chat"


def should_add(settings: CrmSettings, visitor_kind: str) -> bool:
    return visitor_kind in _ADDS[settings.auto_add]


def label_for(settings: CrmSettings, visitor_kind: str) -> str:
    return settings.unattended_label if visitor_kind == UNATTENDED else ""


def follow_up_due(settings: CrmSettings, day: date) -> date | None:
    """The due date of the follow-up task on a record added on `day` (None: no task)."""
    days = _FOLLOW_UP_DAYS.get(settings.follow_up)
    return None if days is None else day + timedelta(days=days)


def due_from(rule: str, day: date) -> date:
    return day + timedelta(days=_FOLLOW_UP_DAYS[rule])


def owner_for(settings: CrmSettings, *, pool_turn: int, agent_user: str, crm_admin: str) -> str:
    """The owner's e-mail for a new record ("" when the CRM's own default applies)."""
    if settings.owner_rule == "user":
        return settings.owner_email
    if settings.owner_rule == "pool" and settings.owner_pool:
        return settings.owner_pool[pool_turn % len(settings.owner_pool)]
    return agent_user or crm_admin
