"""asyncpg queries of the visitor schema, one module per thing they touch; every function
takes the tenant and every statement filters by it, except the one of `background`:

    keys        widget keys, visitor sessions and secrets (PLAT-02)
    tracking    locking a batch's visitors, writing a batch, leaves (VIS-01)
    visits      reading visitors, visits, page views and actions (VIS-01, VIS-03)
    profiles    identity, merging, CRM facts, scores, chats, priorities (VIS-03, ROUT-04)
    lists       visit lists and visitors online (VIS-04, VIS-07)
    blocks      blocks (VIS-05)
    triggers    proactive triggers and firings (VIS-06)
    settings    the tenant's tracking settings
    background  identified visitors whose CRM facts are stale, across tenants

Use cases call them as `store.<function>`."""

from .background import stale_crm_visitors
from .blocks import insert_block, last_ip, list_blocks, unblock
from .keys import (
    get_widget_key,
    insert_widget_key,
    lock_secret,
    revoke_session,
    revoke_session_of_secret,
    revoke_visitor_sessions,
    revoke_widget_key,
    rotate_secret,
    start_session,
)
from .lists import list_visits, online, visit_with_visitor
from .profiles import (
    forget_crm_of_email,
    lock_identity,
    merge,
    priorities_to_compute,
    record_chat,
    score_inputs,
    set_crm,
    set_identity,
    set_priorities,
    set_score,
)
from .settings import get_settings, save_settings
from .tracking import leave_pages, lock_visitors, write_batch
from .triggers import delete_trigger, firing, get_trigger, list_triggers, record_firing, save_trigger, still_on_page
from .visits import get_visit, get_visitor, page_view, resolve, visit_of

__all__ = [
    "stale_crm_visitors",
    "insert_block",
    "last_ip",
    "list_blocks",
    "unblock",
    "get_widget_key",
    "insert_widget_key",
    "lock_secret",
    "revoke_session",
    "revoke_session_of_secret",
    "revoke_visitor_sessions",
    "revoke_widget_key",
    "rotate_secret",
    "start_session",
    "list_visits",
    "online",
    "visit_with_visitor",
    "forget_crm_of_email",
    "lock_identity",
    "merge",
    "priorities_to_compute",
    "record_chat",
    "score_inputs",
    "set_crm",
    "set_identity",
    "set_priorities",
    "set_score",
    "get_settings",
    "save_settings",
    "leave_pages",
    "lock_visitors",
    "write_batch",
    "delete_trigger",
    "firing",
    "get_trigger",
    "list_triggers",
    "record_firing",
    "save_trigger",
    "still_on_page",
    "get_visit",
    "get_visitor",
    "page_view",
    "resolve",
    "visit_of",
]
